import { Subscriber } from 'zeromq';
import { Codec, type BusMessage, type CodecLimits } from '@polybot/protocol';
import { InvalidFrameTracker, type InvalidFrame } from './invalid.js';
import { silentLogger, type BusLogger } from './log.js';

export interface SubscriberOptions {
  endpoints: string[];
  /** Topic prefixes; `['']` receives everything. */
  topics: string[];
  onMessage: (msg: BusMessage, topic: string) => void | Promise<void>;
  onInvalid?: (frame: InvalidFrame) => void;
  /** Called when a publisher's sequence jumps (messages lost to HWM or a slow join). */
  onGap?: (src: string, missing: number) => void;
  limits?: Partial<CodecLimits>;
  receiveHighWaterMark?: number;
  log?: BusLogger;
  name?: string;
}

/** SUB socket that decodes, validates and sequence-checks every frame. */
export class BusSubscriber {
  private readonly sock: Subscriber;
  private readonly codec: Codec;
  private readonly lastSeq = new Map<string, number>();
  private readonly tracker: InvalidFrameTracker;
  private readonly log: BusLogger;
  private loop?: Promise<void>;
  received = 0;
  gaps = 0;
  restarts = 0;
  handlerErrors = 0;

  constructor(private readonly opts: SubscriberOptions) {
    this.log = opts.log ?? silentLogger;
    this.codec = new Codec(opts.limits);
    this.sock = new Subscriber({
      receiveHighWaterMark: opts.receiveHighWaterMark ?? 10_000,
      maxMessageSize: this.codec.limits.maxPayloadBytes + 1024,
      linger: 0,
    });
    this.tracker = new InvalidFrameTracker(opts.name ?? opts.endpoints.join(','), this.log);
  }

  start(): void {
    for (const ep of this.opts.endpoints) this.sock.connect(ep);
    for (const t of this.opts.topics) this.sock.subscribe(t);
    this.loop = this.run();
  }

  /** Adds topic prefixes at run time (e.g. a strategy following a new market). */
  subscribe(...prefixes: string[]): void {
    for (const p of prefixes) this.sock.subscribe(p);
  }

  unsubscribe(...prefixes: string[]): void {
    for (const p of prefixes) this.sock.unsubscribe(p);
  }

  private async run(): Promise<void> {
    try {
      // `receive` straight, not the socket's async iterator: one promise per message instead of three.
      for (;;) {
        const frames = await this.sock.receive();
        const res = this.codec.decode(frames);
        if (!res.ok) {
          const frame: InvalidFrame = { code: res.code, reason: res.reason, topic: res.topic, frames };
          this.tracker.record(frame);
          this.opts.onInvalid?.(frame);
          continue;
        }
        this.received++;
        this.checkSequence(res.msg);
        try {
          const r = this.opts.onMessage(res.msg, res.topic);
          if (r) await r;
        } catch (err) {
          this.handlerErrors++;
          if (this.handlerErrors <= 5) this.log.error({ err, topic: res.topic }, 'message handler failed');
        }
      }
    } catch (err) {
      // Closing the socket ends a pending receive with EAGAIN: that is the loop's normal end.
      if (!this.sock.closed) this.log.error({ err }, 'subscriber loop ended');
    }
  }

  private checkSequence(msg: BusMessage): void {
    const last = this.lastSeq.get(msg.src);
    this.lastSeq.set(msg.src, msg.seq);
    if (last === undefined) return;
    if (msg.seq === last + 1) return;
    if (msg.seq <= last) {
      // A publisher restarted and began again at 1.
      this.restarts++;
      return;
    }
    const missing = msg.seq - last - 1;
    this.gaps += missing;
    this.opts.onGap?.(msg.src, missing);
  }

  get stats() {
    return {
      received: this.received,
      invalid: this.tracker.total,
      invalid_by_code: this.tracker.snapshot(),
      gaps: this.gaps,
      publisher_restarts: this.restarts,
      handler_errors: this.handlerErrors,
    };
  }

  async close(): Promise<void> {
    this.sock.close();
    await this.loop;
  }
}
