import { Publisher } from 'zeromq';
import { Codec, FlatEncoder, PROTOCOL_VERSION, type BusMessage, type MapWriter, type Unstamped } from '@polybot/protocol';
import { prepareEndpoint } from './endpoints.js';
import { silentLogger, type BusLogger } from './log.js';
import { SendQueue } from './send-queue.js';
import { ThreadSender } from './thread-sender.js';

export interface PublisherOptions {
  endpoint: string;
  /** `bind` for an owned stream (prices.pub), `connect` for the shared events forwarder (events.in). */
  mode: 'bind' | 'connect';
  /** Publisher id stamped on every message (`src`). */
  src: string;
  /** Messages held for a slow subscriber; past this ZeroMQ drops that subscriber's messages. */
  sendHighWaterMark?: number;
  /** Validate outbound messages against their schema (a failing one is a bug and is not sent). */
  validate?: boolean;
  /**
   * Own the socket from a thread of its own (ThreadSender): publishing then costs a copy into shared
   * memory instead of zeromq.js's send, which matters to a publisher of tens of thousands of
   * messages a second on a busy event loop (the scanner).
   */
  sendThread?: boolean;
  /** Bytes of the sender thread's ring (default 8 MiB); past it messages wait in memory. */
  sendRingBytes?: number;
  log?: BusLogger;
}

/** A topic resolved by `BusPublisher.topic`. */
export interface PublishTopic {
  readonly name: string;
  readonly frame: Buffer;
  readonly owner: BusPublisher;
  /** The sender thread's id for it, valid while `senderGen` is the thread's table generation. */
  senderId: number;
  senderGen: number;
}

const SEQ_KEY = FlatEncoder.key('seq');
const TS_KEY = FlatEncoder.key('ts');

/** PUB socket stamping the envelope with a per-publisher sequence number for gap detection. */
export class BusPublisher {
  /** The socket, unless a sender thread owns it. */
  private readonly sock: Publisher | undefined;
  private readonly codec = new Codec();
  private readonly queue: SendQueue | ThreadSender;
  private readonly log: BusLogger;
  private seq = 0;
  private readonly envelope: { v: number; src: string; seq: number; ts: number };
  /** The envelope for written messages: its fixed entries (v, src) encoded once. */
  private readonly writeEnvelope: (w: MapWriter) => void;
  invalid = 0;
  /** Envelope time source; a replay sets it to the recording's clock so its output is reproducible. */
  clock: () => number = Date.now;
  /** Sees every message as sent (topic and msgpack payload), e.g. for a recorder. Must not throw. */
  tap: ((topic: string, payload: Uint8Array, ts: number) => void) | undefined;

  constructor(private readonly opts: PublisherOptions) {
    this.log = opts.log ?? silentLogger;
    this.envelope = { v: PROTOCOL_VERSION, src: opts.src, seq: 0, ts: 0 };
    const head = FlatEncoder.entries({ v: PROTOCOL_VERSION, src: opts.src });
    this.writeEnvelope = (w) => void w.entries(head).field(SEQ_KEY).number(this.envelope.seq).field(TS_KEY).number(this.envelope.ts);
    // sendTimeout 0: a PUB socket never waits to send, so every send completes on the call and the
    // queue can hand messages over as they are published (see SendQueue).
    const onError = (err: unknown) => this.log.warn({ err, endpoint: opts.endpoint }, 'publish failed');
    const sendHighWaterMark = opts.sendHighWaterMark ?? 10_000;
    if (opts.sendThread) {
      this.queue = new ThreadSender({ endpoint: opts.endpoint, mode: opts.mode, sendHighWaterMark, ringBytes: opts.sendRingBytes, onError });
    } else {
      this.sock = new Publisher({ sendHighWaterMark, linger: 500, sendTimeout: 0 });
      this.queue = new SendQueue(this.sock, 0, onError, true);
    }
  }

  async start(): Promise<void> {
    if (this.opts.mode === 'bind') prepareEndpoint(this.opts.endpoint);
    if (!this.sock) return (this.queue as ThreadSender).start();
    if (this.opts.mode === 'bind') await this.sock.bind(this.opts.endpoint);
    else this.sock.connect(this.opts.endpoint);
  }

  /** Stamps and queues a message; returns false if it was invalid or the queue was full. */
  publish<M extends BusMessage>(topic: string, msg: Unstamped<M>): boolean {
    const ts = this.clock();
    // One envelope object, refilled per message: the encoder reads it at once and keeps nothing.
    const envelope = this.envelope;
    envelope.seq = this.seq + 1;
    envelope.ts = ts;
    if (this.opts.validate !== false) {
      const problem = this.codec.check({ ...msg, ...envelope } as BusMessage);
      if (problem) return this.refuse(topic, problem);
    }
    this.seq++;
    return this.send(topic, this.codec.encodeWith(topic, msg as Record<string, unknown>, envelope), ts);
  }

  /**
   * A topic resolved once, for a publisher that sends on it again and again (`publishWritten`):
   * its frame, and its id in the sender thread, are then not looked up per message.
   */
  topic(name: string): PublishTopic {
    return { name, frame: Buffer.from(name, 'utf8'), owner: this, senderId: -1, senderGen: -1 };
  }

  /**
   * `publish` for a message written entry by entry (`Codec.encodeWritten`): a hot publisher that
   * knows its messages' fields skips building them as objects. A validating publisher decodes
   * and checks the result as `publish` checks an object. `handle`: this publisher's `topic(topic)`.
   */
  publishWritten(topic: string, write: (w: MapWriter) => void, handle?: PublishTopic): boolean {
    const ts = this.clock();
    const envelope = this.envelope;
    envelope.seq = this.seq + 1;
    envelope.ts = ts;
    // With a sender thread and no tap, the payload is copied straight into the ring from the
    // encoder's buffer: no bytes of its own are kept for it.
    const transient = this.sock === undefined && this.tap === undefined && this.opts.validate === false;
    const ref = handle !== undefined && handle.owner === this && handle.name === topic ? handle : undefined;
    const frames: [Buffer, Uint8Array] = ref
      ? [ref.frame, this.codec.writePayload(write, this.writeEnvelope, transient)]
      : this.codec.encodeWritten(topic, write, this.writeEnvelope, transient);
    if (this.opts.validate !== false) {
      const res = this.codec.decodePayload(frames[1], topic);
      if (!res.ok) return this.refuse(topic, res.reason);
    }
    this.seq++;
    if (transient) return (this.queue as ThreadSender).enqueue(topic, frames, true, ref);
    return this.send(topic, frames, ts);
  }

  /** Counts (and logs the first few of) messages that fail their schema: a bug, never sent. */
  private refuse(topic: string, problem: string): false {
    this.invalid++;
    if (this.invalid <= 5) this.log.error({ topic, problem }, 'refusing to publish an invalid message');
    return false;
  }

  private send(topic: string, frames: [Buffer, Uint8Array], ts: number): boolean {
    if (this.tap) {
      try {
        this.tap(topic, frames[1], ts);
      } catch (err) {
        this.log.warn({ err }, 'publisher tap failed');
      }
    }
    return this.sock ? (this.queue as SendQueue).enqueue(frames) : (this.queue as ThreadSender).enqueue(topic, frames);
  }

  get stats() {
    return { seq: this.seq, sent: this.queue.sent, dropped: this.queue.dropped, queued: this.queue.length, invalid: this.invalid };
  }

  /** Resolves true once every queued message was handed to ZeroMQ (false after `timeoutMs`). */
  drain(timeoutMs = 1000): Promise<boolean> {
    return this.queue.drain(timeoutMs);
  }

  async close(drainMs = 1000): Promise<void> {
    await this.queue.drain(drainMs);
    if (!this.sock) return (this.queue as ThreadSender).close();
    (this.queue as SendQueue).close();
    this.sock.close();
  }
}
