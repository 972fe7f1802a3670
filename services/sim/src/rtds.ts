import type { Logger } from '@polybot/core';
import type { WebSocket } from 'ws';
import { Rng } from './rng.js';

/**
 * Reference prices of the crypto up/down rounds and the RTDS channel that streams them
 * (PROTOCOL.md §6: `{topic, type, timestamp, payload:{symbol, timestamp, value}}` on topics
 * `crypto_prices` (Binance symbols `btcusdt`…) and `crypto_prices_chainlink` (`btc/usd`…)).
 *
 * One seeded random walk per asset, stepped once per unix second, so the price at a given second
 * depends only on the seed and the second the walk started: rounds resolve from exact values.
 */

export interface RefAsset {
  /** Upper-case ticker, e.g. "BTC". */
  asset: string;
  /** Lower-case slug prefix, e.g. "btc". */
  slug: string;
  /** Long name used in questions, e.g. "Bitcoin". */
  name: string;
  /** RTDS `crypto_prices` symbol. */
  binance: string;
  /** RTDS `crypto_prices_chainlink` symbol. */
  chainlink: string;
  /** Typical price level (the walk starts within ±5 % of it). */
  level: number;
  /** Decimals of the Binance price. */
  decimals: number;
  /** Annualised volatility of the walk. */
  vol: number;
}

export const REF_ASSETS: readonly RefAsset[] = [
  { asset: 'BTC', slug: 'btc', name: 'Bitcoin', binance: 'btcusdt', chainlink: 'btc/usd', level: 90_000, decimals: 2, vol: 0.5 },
  { asset: 'ETH', slug: 'eth', name: 'Ethereum', binance: 'ethusdt', chainlink: 'eth/usd', level: 3_000, decimals: 2, vol: 0.65 },
  { asset: 'SOL', slug: 'sol', name: 'Solana', binance: 'solusdt', chainlink: 'sol/usd', level: 140, decimals: 2, vol: 0.8 },
  { asset: 'XRP', slug: 'xrp', name: 'XRP', binance: 'xrpusdt', chainlink: 'xrp/usd', level: 2.1, decimals: 4, vol: 0.8 },
];

const SECONDS_PER_YEAR = 365 * 86_400;
/** A clock jump longer than this is not replayed second by second (the walk resumes from where it was). */
const MAX_CATCHUP_S = 2 * 86_400;
/** Seconds of history kept per asset (the RTDS `subscribe` snapshot). */
export const HISTORY_S = 60;

/** Per-second volatility of an asset's walk (log returns). */
export const sigmaPerSecond = (a: RefAsset): number => a.vol / Math.sqrt(SECONDS_PER_YEAR);

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

/** One asset's prices at one second. */
export interface PricePoint {
  asset: RefAsset;
  /** Unix seconds. */
  second: number;
  /** Binance-style price (`decimals` places). */
  binance: number;
  /** Chainlink-style price (8 decimals): the resolution source of the rounds. */
  chainlink: number;
}

export type PriceListener = (p: PricePoint) => void;

/** Serializable state of the reference-price walks (assets by ticker). */
export interface ReferencePricesSnapshot {
  rng: number[];
  /** Unix seconds of the walk. */
  second: number;
  /** Per asset ticker: the raw (unrounded) price and the recent points `[second, binance, chainlink]`. */
  assets: Record<string, { raw: number; history: Array<[number, number, number]> }>;
}

export class ReferencePrices {
  readonly assets: readonly RefAsset[];
  private readonly raw: number[];
  private readonly rng: Rng;
  private sec: number;
  private readonly history: PricePoint[][];
  private readonly listeners = new Set<PriceListener>();

  constructor(seed: number, startMs: number, assets: readonly RefAsset[] = REF_ASSETS) {
    this.assets = assets;
    this.rng = new Rng((seed ^ 0x0ac1e5) >>> 0);
    this.raw = assets.map((a) => a.level * (0.95 + 0.1 * this.rng.next()));
    this.sec = Math.floor(startMs / 1000);
    this.history = assets.map((a, i) => [this.point(a, i)]);
  }

  /** The current second (unix seconds) of the walk. */
  get second(): number {
    return this.sec;
  }

  find(symbolOrAsset: string): RefAsset | undefined {
    const s = symbolOrAsset.toLowerCase();
    return this.assets.find((a) => a.slug === s || a.binance === s || a.chainlink === s || a.asset.toLowerCase() === s);
  }

  /** The current point of an asset. */
  current(asset: RefAsset): PricePoint {
    const h = this.history[this.assets.indexOf(asset)] as PricePoint[];
    return h[h.length - 1] as PricePoint;
  }

  /** The last `HISTORY_S` seconds of an asset, oldest first. */
  recent(asset: RefAsset): PricePoint[] {
    return [...(this.history[this.assets.indexOf(asset)] ?? [])];
  }

  on(listener: PriceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Steps every walk once per second up to `ms`; listeners get each new point (the last HISTORY_S seconds of a long jump). */
  advanceTo(ms: number): void {
    const target = Math.floor(ms / 1000);
    if (target <= this.sec) return;
    if (target - this.sec > MAX_CATCHUP_S) this.sec = target - MAX_CATCHUP_S;
    const quietUntil = target - HISTORY_S;
    while (this.sec < target) {
      this.sec++;
      for (let i = 0; i < this.assets.length; i++) {
        const a = this.assets[i] as RefAsset;
        this.raw[i] = (this.raw[i] as number) * Math.exp(sigmaPerSecond(a) * this.gauss());
        const p = this.point(a, i);
        const h = this.history[i] as PricePoint[];
        h.push(p);
        if (h.length > HISTORY_S) h.shift();
        if (this.sec > quietUntil) for (const l of this.listeners) l(p);
      }
    }
  }

  /** Everything needed to continue the walks exactly where they are. */
  toSnapshot(): ReferencePricesSnapshot {
    const assets: ReferencePricesSnapshot['assets'] = {};
    this.assets.forEach((a, i) => {
      assets[a.asset] = {
        raw: this.raw[i] as number,
        history: (this.history[i] as PricePoint[]).map((p) => [p.second, p.binance, p.chainlink]),
      };
    });
    return { rng: this.rng.getState(), second: this.sec, assets };
  }

  /** Continues from a snapshot (listeners are kept); assets missing from it keep their current walk. */
  restore(s: ReferencePricesSnapshot): void {
    this.rng.setState(s.rng);
    if (!Number.isInteger(s.second)) throw new RangeError('reference prices: bad second');
    this.sec = s.second;
    this.assets.forEach((a, i) => {
      const x = s.assets[a.asset];
      if (!x) {
        this.history[i] = [this.point(a, i)];
        return;
      }
      if (!(typeof x.raw === 'number' && x.raw > 0)) throw new RangeError(`reference prices: bad raw price of ${a.asset}`);
      this.raw[i] = x.raw;
      const h = x.history.map(([second, binance, chainlink]) => ({ asset: a, second, binance, chainlink }));
      this.history[i] = h.length > 0 ? h.slice(-HISTORY_S) : [this.point(a, i)];
    });
  }

  private point(a: RefAsset, i: number): PricePoint {
    const v = this.raw[i] as number;
    return { asset: a, second: this.sec, binance: round(v, a.decimals), chainlink: round(v, 8) };
  }

  /** Standard normal draw (Box-Muller) from the walk's own generator. */
  private gauss(): number {
    const u = 1 - this.rng.next();
    const v = this.rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

// ---------------------------------------------------------------- the RTDS WebSocket

export const TOPIC_BINANCE = 'crypto_prices';
export const TOPIC_CHAINLINK = 'crypto_prices_chainlink';
type Topic = typeof TOPIC_BINANCE | typeof TOPIC_CHAINLINK;

export interface RtdsUpdate {
  topic: Topic;
  type: 'update';
  timestamp: number;
  payload: { symbol: string; timestamp: number; value: number; full_accuracy_value?: string };
}

export interface RtdsSnapshot {
  topic: Topic;
  type: 'subscribe';
  timestamp: number;
  payload: { symbol: string; data: Array<{ timestamp: number; value: number }> };
}

const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** Where the hub gets prices: the exchange (its `onPrice` also starts the per-second clock). */
export interface RtdsSource {
  readonly prices: ReferencePrices;
  onPrice(listener: PriceListener): () => void;
  /** The exchange clock, ms. */
  nowMs(): number;
}

interface Client {
  socket: WebSocket;
  /** topic → symbols (empty set = every symbol of the topic). */
  subs: Map<Topic, Set<string>>;
}

const symbolOf = (topic: Topic, a: RefAsset) => (topic === TOPIC_BINANCE ? a.binance : a.chainlink);
const valueOf = (topic: Topic, p: PricePoint) => (topic === TOPIC_BINANCE ? p.binance : p.chainlink);

/**
 * Parses RTDS `filters`: Binance topics take a comma list ("btcusdt,ethusdt"), Chainlink topics a
 * JSON object `{"symbol":"btc/usd"}`; empty or absent = every symbol. Unknown symbols are kept
 * (they simply never match).
 */
export function parseFilters(filters: unknown): string[] {
  if (filters === undefined || filters === null || filters === '') return [];
  if (typeof filters !== 'string') throw new Error('filters must be a string');
  const t = filters.trim();
  if (t.startsWith('{')) {
    const v = JSON.parse(t) as { symbol?: unknown };
    if (typeof v.symbol !== 'string') throw new Error('filters.symbol must be a string');
    return [v.symbol.toLowerCase()];
  }
  return t.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
}

/**
 * RTDS (`/ws/rtds`): `{"action":"subscribe"|"unsubscribe","subscriptions":[{"topic","type","filters"}]}`.
 * A subscription gets one `subscribe` message per symbol with the last minute of prices, then an
 * `update` per symbol and second. Text `ping` → `pong` (also `PING` → `PONG`).
 */
export class RtdsHub {
  private readonly clients = new Set<Client>();
  private unsubscribe: (() => void) | undefined;
  readonly stats = { framesSent: 0, invalidFrames: 0, slowDropped: 0 };

  private readonly prices: ReferencePrices;

  constructor(
    private readonly source: RtdsSource,
    private readonly log: Logger,
  ) {
    this.prices = source.prices;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  accept(socket: WebSocket): void {
    const client: Client = { socket, subs: new Map() };
    this.clients.add(client);
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      try {
        this.onFrame(client, isBinary ? '' : Buffer.isBuffer(data) ? data.toString('utf8') : String(data));
      } catch (err) {
        this.stats.invalidFrames++;
        this.log.debug({ err }, 'rtds frame rejected');
      }
    });
    const drop = () => this.clients.delete(client);
    socket.on('close', drop);
    socket.on('error', drop);
  }

  private onFrame(client: Client, text: string): void {
    const t = text.trim();
    if (t === 'ping' || t === 'PING') {
      this.send(client, t === 'ping' ? 'pong' : 'PONG');
      return;
    }
    const msg = JSON.parse(t) as { action?: unknown; subscriptions?: unknown };
    if ((msg.action !== 'subscribe' && msg.action !== 'unsubscribe') || !Array.isArray(msg.subscriptions)) {
      throw new Error('expected {"action":"subscribe"|"unsubscribe","subscriptions":[...]}');
    }
    for (const s of msg.subscriptions as Array<{ topic?: unknown; filters?: unknown }>) {
      if (s.topic !== TOPIC_BINANCE && s.topic !== TOPIC_CHAINLINK) {
        this.stats.invalidFrames++;
        continue;
      }
      const topic: Topic = s.topic;
      const symbols = parseFilters(s.filters);
      if (msg.action === 'unsubscribe') {
        const cur = client.subs.get(topic);
        if (!cur || symbols.length === 0) client.subs.delete(topic);
        else {
          for (const x of symbols) cur.delete(x);
          if (cur.size === 0) client.subs.delete(topic);
        }
        continue;
      }
      const cur = client.subs.get(topic);
      if (symbols.length === 0) client.subs.set(topic, new Set());
      else if (!cur) client.subs.set(topic, new Set(symbols));
      else if (cur.size > 0) for (const x of symbols) cur.add(x);
      this.snapshot(client, topic, symbols);
    }
    this.ensureListening();
  }

  private ensureListening(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.source.onPrice((p) => this.publish(p));
  }

  private snapshot(client: Client, topic: Topic, symbols: string[]): void {
    for (const a of this.prices.assets) {
      const sym = symbolOf(topic, a);
      if (symbols.length > 0 && !symbols.includes(sym)) continue;
      const msg: RtdsSnapshot = {
        topic,
        type: 'subscribe',
        timestamp: this.source.nowMs(),
        payload: { symbol: sym, data: this.prices.recent(a).map((p) => ({ timestamp: p.second * 1000, value: valueOf(topic, p) })) },
      };
      this.send(client, JSON.stringify(msg));
    }
  }

  /** One price point to every client subscribed to its symbol, on each subscribed topic. */
  publish(p: PricePoint): void {
    const frames = new Map<Topic, string>();
    for (const c of this.clients) {
      for (const [topic, syms] of c.subs) {
        const sym = symbolOf(topic, p.asset);
        if (syms.size > 0 && !syms.has(sym)) continue;
        let f = frames.get(topic);
        if (f === undefined) {
          const value = valueOf(topic, p);
          const msg: RtdsUpdate = {
            topic,
            type: 'update',
            timestamp: this.source.nowMs(),
            payload: {
              symbol: sym,
              timestamp: p.second * 1000,
              value,
              ...(topic === TOPIC_BINANCE ? { full_accuracy_value: value.toFixed(8) } : {}),
            },
          };
          f = JSON.stringify(msg);
          frames.set(topic, f);
        }
        this.send(c, f);
      }
    }
  }

  private send(c: Client, frame: string): void {
    const s = c.socket;
    if (s.readyState !== s.OPEN) return;
    if (s.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.stats.slowDropped++;
      this.clients.delete(c);
      s.close(1013, 'slow consumer');
      return;
    }
    s.send(frame);
    this.stats.framesSent++;
  }

  closeAll(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const c of this.clients) c.socket.close(1001, 'server stopping');
    this.clients.clear();
  }
}
