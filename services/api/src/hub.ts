import type { WebSocket } from '@fastify/websocket';
import type { BusMessage } from '@polybot/protocol';
import Type, { type Static } from 'typebox';
import Compile from 'typebox/compile';

/** Topic roots a client may subscribe to, and the bus stream each comes from. */
export const PRICE_ROOTS = ['price.', 'book.', 'trade.'] as const;
export const EVENT_ROOTS = ['event.', 'status.'] as const;
const ALL_ROOTS: readonly string[] = [...PRICE_ROOTS, ...EVENT_ROOTS];

const ClientFrame = Type.Object({
  op: Type.Union([Type.Literal('subscribe'), Type.Literal('unsubscribe')]),
  topics: Type.Array(Type.String({ maxLength: 256 }), { maxItems: 100 }),
});
type ClientFrame = Static<typeof ClientFrame>;
const checkFrame = Compile(ClientFrame);

export interface HubOptions {
  /** Minimum spacing of `price.<token>` messages per client (250 ms = at most 4 per second). */
  conflateMs?: number;
  /** A client whose unsent data exceeds this is too slow and is dropped. */
  maxBufferedBytes?: number;
  maxPrefixesPerClient?: number;
  heartbeatMs?: number;
  /** How many recent `event.*` messages a new subscriber is sent first (default 200). */
  recentEvents?: number;
  /** Called when the first client wants a prices.pub prefix (true) or the last one leaves it (false). */
  onInterest?: (busPrefix: string, wanted: boolean) => void;
  log?: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

interface Client {
  socket: WebSocket;
  prefixes: Set<string>;
  lastSent: Map<string, number>;
  pending: Map<string, string>;
  timer?: NodeJS.Timeout;
  alive: boolean;
}

/** The bus prefixes on prices.pub a client prefix needs ('' or 'pr' widen to whole roots). */
function pricePrefixes(prefix: string): string[] {
  if (PRICE_ROOTS.some((r) => prefix.startsWith(r))) return [prefix];
  return PRICE_ROOTS.filter((r) => r.startsWith(prefix));
}

function validPrefix(prefix: string): boolean {
  return ALL_ROOTS.some((r) => prefix.startsWith(r) || r.startsWith(prefix));
}

/** Fans bus messages out to WebSocket clients by topic prefix, conflating prices per client. */
export class WsHub {
  private readonly clients = new Set<Client>();
  private readonly interest = new Map<string, number>();
  /** Latest `price.<token>` frame per token: a new subscriber gets the current state at once (snapshot, then updates). */
  private readonly latestPrices = new Map<string, string>();
  /** The last executor events, oldest first, replayed to a new subscriber so "recent events" means recent, not "since you opened the page". */
  private recentEvents: Array<[string, string]> = [];
  private readonly maxRecentEvents: number;
  private readonly conflateMs: number;
  private readonly maxBuffered: number;
  private readonly maxPrefixes: number;
  private heartbeat?: NodeJS.Timeout;
  forwarded = 0;
  conflated = 0;
  dropped = 0;
  badFrames = 0;

  constructor(private readonly opts: HubOptions = {}) {
    this.conflateMs = opts.conflateMs ?? 250;
    this.maxBuffered = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
    this.maxPrefixes = opts.maxPrefixesPerClient ?? 256;
    this.maxRecentEvents = opts.recentEvents ?? 200;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  start(): void {
    // Pings find half-open connections that would otherwise hold buffers forever.
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) {
        if (!c.alive) {
          this.drop(c, 'no pong');
          continue;
        }
        c.alive = false;
        c.socket.ping();
      }
    }, this.opts.heartbeatMs ?? 30_000);
    this.heartbeat.unref();
  }

  add(socket: WebSocket): void {
    const c: Client = { socket, prefixes: new Set(), lastSent: new Map(), pending: new Map(), alive: true };
    this.clients.add(c);
    socket.on('pong', () => {
      c.alive = true;
    });
    socket.on('message', (data, isBinary) => this.onFrame(c, data, isBinary));
    socket.on('close', () => this.remove(c));
    socket.on('error', () => this.remove(c));
  }

  private remove(c: Client): void {
    if (!this.clients.delete(c)) return;
    if (c.timer) clearTimeout(c.timer);
    for (const p of c.prefixes) this.release(p);
    c.prefixes.clear();
    c.pending.clear();
  }

  private drop(c: Client, reason: string): void {
    this.dropped++;
    this.opts.log?.warn({ reason, buffered: c.socket.bufferedAmount }, 'dropping websocket client');
    this.remove(c);
    c.socket.terminate();
  }

  private retain(prefix: string): void {
    for (const bp of pricePrefixes(prefix)) {
      const n = (this.interest.get(bp) ?? 0) + 1;
      this.interest.set(bp, n);
      if (n === 1) this.opts.onInterest?.(bp, true);
    }
  }

  private release(prefix: string): void {
    for (const bp of pricePrefixes(prefix)) {
      const n = (this.interest.get(bp) ?? 0) - 1;
      if (n <= 0) {
        this.interest.delete(bp);
        this.opts.onInterest?.(bp, false);
      } else this.interest.set(bp, n);
    }
  }

  private reply(c: Client, body: Record<string, unknown>): void {
    this.sendText(c, JSON.stringify(body));
  }

  private error(c: Client, error: string): void {
    this.badFrames++;
    this.reply(c, { op: 'error', error });
  }

  private onFrame(c: Client, data: unknown, isBinary: boolean): void {
    if (isBinary) return this.error(c, 'binary frames are not supported; send JSON text');
    let frame: unknown;
    try {
      frame = JSON.parse(String(data));
    } catch {
      return this.error(c, 'frame is not valid JSON');
    }
    if (!checkFrame.Check(frame)) {
      const e = checkFrame.Errors(frame)[0];
      return this.error(c, `expected {"op":"subscribe"|"unsubscribe","topics":[...]}: ${e ? `${e.instancePath || '/'} ${e.message}` : 'invalid frame'}`);
    }
    const f = frame as ClientFrame;
    const topics = [...new Set(f.topics)];
    if (f.op === 'subscribe') {
      const bad = topics.filter((t) => !validPrefix(t));
      if (bad.length > 0) return this.error(c, `unknown topic prefix ${JSON.stringify(bad[0])}; use one of ${ALL_ROOTS.join(' ')}`);
      if (c.prefixes.size + topics.length > this.maxPrefixes) return this.error(c, `at most ${this.maxPrefixes} subscriptions per connection`);
      const added: string[] = [];
      for (const t of topics) {
        if (c.prefixes.has(t)) continue;
        c.prefixes.add(t);
        this.retain(t);
        added.push(t);
      }
      this.reply(c, { op: 'subscribed', topics });
      this.sendSnapshot(c, added);
    } else {
      for (const t of topics) {
        if (!c.prefixes.delete(t)) continue;
        this.release(t);
      }
      this.reply(c, { op: 'unsubscribed', topics });
    }
  }

  private sendSnapshot(c: Client, prefixes: string[]): void {
    if (prefixes.length === 0) return;
    const now = Date.now();
    for (const [topic, text] of this.latestPrices) {
      if (!prefixes.some((p) => topic.startsWith(p))) continue;
      c.lastSent.set(topic, now);
      this.forward(c, text);
    }
    for (const [topic, text] of this.recentEvents.slice(-this.maxRecentEvents)) {
      if (prefixes.some((p) => topic.startsWith(p))) this.forward(c, text);
    }
  }

  /** Forwards one bus message to every client subscribed to a prefix of its topic. */
  publish(topic: string, msg: BusMessage): void {
    const conflate = topic.startsWith('price.');
    let text: string | undefined;
    if (conflate) {
      text = JSON.stringify({ topic, data: msg });
      this.latestPrices.set(topic, text);
    } else if (topic.startsWith('event.')) {
      text = JSON.stringify({ topic, data: msg });
      this.recentEvents.push([topic, text]);
      if (this.recentEvents.length > this.maxRecentEvents * 2) this.recentEvents = this.recentEvents.slice(-this.maxRecentEvents);
    }
    if (this.clients.size === 0) return;
    const now = Date.now();
    for (const c of this.clients) {
      let match = false;
      for (const p of c.prefixes) {
        if (topic.startsWith(p)) {
          match = true;
          break;
        }
      }
      if (!match) continue;
      text ??= JSON.stringify({ topic, data: msg });
      if (!conflate) {
        this.forward(c, text);
        continue;
      }
      const last = c.lastSent.get(topic);
      if (last === undefined || now - last >= this.conflateMs) {
        c.pending.delete(topic);
        c.lastSent.set(topic, now);
        this.forward(c, text);
      } else {
        // Latest wins: a waiting price is replaced, and sent once the spacing allows.
        if (c.pending.has(topic)) this.conflated++;
        c.pending.set(topic, text);
        this.schedule(c, last + this.conflateMs - now);
      }
    }
  }

  private schedule(c: Client, delayMs: number): void {
    if (c.timer) return;
    c.timer = setTimeout(() => this.flushPending(c), Math.max(1, delayMs));
    c.timer.unref();
  }

  private flushPending(c: Client): void {
    c.timer = undefined;
    if (!this.clients.has(c)) return;
    const now = Date.now();
    let next = Infinity;
    for (const [topic, text] of c.pending) {
      const last = c.lastSent.get(topic) ?? 0;
      const due = last + this.conflateMs;
      if (now >= due) {
        c.pending.delete(topic);
        c.lastSent.set(topic, now);
        this.forward(c, text);
      } else next = Math.min(next, due - now);
    }
    if (next !== Infinity) this.schedule(c, next);
  }

  private forward(c: Client, text: string): void {
    if (this.sendText(c, text)) this.forwarded++;
  }

  private sendText(c: Client, text: string): boolean {
    const s = c.socket;
    if (s.readyState !== s.OPEN) return false;
    if (s.bufferedAmount > this.maxBuffered) {
      this.drop(c, 'send buffer full');
      return false;
    }
    s.send(text);
    return true;
  }

  stop(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const c of [...this.clients]) {
      this.remove(c);
      c.socket.close(1001, 'server stopping');
    }
  }

  get stats() {
    return { ws_clients: this.clients.size, ws_forwarded: this.forwarded, ws_conflated: this.conflated, ws_dropped: this.dropped, ws_bad_frames: this.badFrames };
  }
}
