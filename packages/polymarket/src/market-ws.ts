import Compile from 'typebox/compile';
import WebSocket from 'ws';
import {
  WsBestBidAsk,
  WsBook,
  WsLastTradePrice,
  WsMarketResolved,
  WsNewMarket,
  WsPriceChange,
  WsTickSizeChange,
  type WsMarketEvent,
} from './schemas.js';
import { reconnectDelay } from './backoff.js';

// ---------------------------------------------------------------- frame parsing (pure)

const checkBook = Compile(WsBook);
const checkPriceChange = Compile(WsPriceChange);
const checkLastTrade = Compile(WsLastTradePrice);
const checkTickSize = Compile(WsTickSizeChange);
const checkBestBidAsk = Compile(WsBestBidAsk);
const checkNewMarket = Compile(WsNewMarket);
const checkResolved = Compile(WsMarketResolved);

export interface ParsedFrame {
  events: WsMarketEvent[];
  /** Objects (or whole frames) that were not valid JSON or failed their schema. */
  invalid: number;
  /** Objects with an event type we do not consume (or none at all). */
  unknown: number;
  /** The frame was the heartbeat answer `PONG`. */
  pong: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Rewrites the two older `price_change` shapes into the current `price_changes[]` form:
 * legacy (pre 2025-09-15) `{asset_id, changes:[{price,side,size}], hash}` and the oldest flat
 * `{asset_id, price, side, size, hash}` (2024 recordings).
 */
function normalizePriceChange(o: Obj): Obj {
  if (Array.isArray(o.price_changes)) return o;
  const base = { event_type: 'price_change', market: o.market, timestamp: o.timestamp };
  if (Array.isArray(o.changes)) {
    return {
      ...base,
      price_changes: o.changes.map((c: unknown) =>
        isObj(c) ? { asset_id: o.asset_id, price: c.price, size: c.size, side: c.side, ...(typeof o.hash === 'string' ? { hash: o.hash } : {}) } : c,
      ),
    };
  }
  if (o.price !== undefined && o.side !== undefined) {
    return {
      ...base,
      price_changes: [
        { asset_id: o.asset_id, price: o.price, size: o.size, side: o.side, ...(typeof o.hash === 'string' ? { hash: o.hash } : {}) },
      ],
    };
  }
  return o;
}

type Checker = { Check(v: unknown): boolean };
const checked = (c: Checker) => (o: Obj): WsMarketEvent | undefined => (c.Check(o) ? (o as unknown as WsMarketEvent) : undefined);

/**
 * One validator per market-channel event type: the object if it is valid (price_change rewritten
 * to the current form), undefined if not. Types missing here are not consumed.
 */
export const MARKET_EVENT_PARSERS: Readonly<Record<string, (o: Obj) => WsMarketEvent | undefined>> = {
  book: checked(checkBook),
  price_change: (o) => {
    const n = normalizePriceChange({ ...o, event_type: 'price_change' });
    return checkPriceChange.Check(n) ? (n as unknown as WsMarketEvent) : undefined;
  },
  last_trade_price: checked(checkLastTrade),
  tick_size_change: checked(checkTickSize),
  best_bid_ask: checked(checkBestBidAsk),
  new_market: checked(checkNewMarket),
  market_resolved: checked(checkResolved),
};

/** The event type of a market-channel object; some captures omit it on price_change batches. */
export function marketEventType(o: Obj): unknown {
  const type = o.event_type;
  if (type === undefined && Array.isArray(o.price_changes)) return 'price_change';
  return type;
}

function parseOne(o: unknown, out: ParsedFrame): void {
  if (!isObj(o)) {
    out.invalid++;
    return;
  }
  const type = marketEventType(o);
  const parse = typeof type === 'string' && Object.hasOwn(MARKET_EVENT_PARSERS, type) ? MARKET_EVENT_PARSERS[type] : undefined;
  if (!parse) {
    out.unknown++;
    return;
  }
  const ev = parse(o);
  if (ev) out.events.push(ev);
  else out.invalid++;
}

/** Parses one market-channel text frame (an object, an array of objects, or `PONG`); never throws. */
export function parseMarketFrame(text: string): ParsedFrame {
  const out: ParsedFrame = { events: [], invalid: 0, unknown: 0, pong: false };
  const trimmed = text.trim();
  if (trimmed === 'PONG') {
    out.pong = true;
    return out;
  }
  let data: unknown;
  try {
    data = JSON.parse(trimmed);
  } catch {
    out.invalid++;
    return out;
  }
  if (Array.isArray(data)) for (const item of data) parseOne(item, out);
  else parseOne(data, out);
  return out;
}

// ---------------------------------------------------------------- client

export interface MarketWsLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export type MarketWsState = 'connecting' | 'open' | 'closed' | 'stopped';

export interface MarketWsStatus {
  state: MarketWsState;
  /** Why the socket closed (close code/reason, error, stale watchdog). */
  reason?: string;
  /** Connection attempt number since the last successful message (for backoff). */
  attempt: number;
}

export interface MarketWsOptions {
  /** Base URL; `/ws/market` is appended (e.g. `wss://ws-subscriptions-clob.polymarket.com`). */
  url: string;
  /** Parsed, validated events (frames are parsed only when this is set). */
  onEvent?: (event: WsMarketEvent) => void;
  /** Every inbound frame except `PONG`, verbatim, with our receive time (for pipelines and recorders). */
  onFrame?: (text: string, recvTs: number) => void;
  onStatus?: (status: MarketWsStatus) => void;
  log?: MarketWsLogger;
  /** Text `PING` interval; the venue drops quiet clients (rs-clob-client uses 10 s). */
  pingIntervalMs?: number;
  /**
   * No data frame for this long → the link is dead; reconnect. PONGs do not count: a socket that
   * answers heartbeats but has stopped sending data is exactly the failure this catches.
   */
  staleMs?: number;
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs`, with jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Give up on a handshake after this long. */
  connectTimeoutMs?: number;
  customFeatureEnabled?: boolean;
  /** Largest frame accepted (initial book dumps for many assets can be big). */
  maxPayloadBytes?: number;
}

const silent: MarketWsLogger = { debug() {}, info() {}, warn() {} };

/**
 * Market-channel client: one socket, the subscription replayed once per connection, text
 * heartbeats, a data-based staleness watchdog and reconnects with exponential backoff + jitter.
 * Parsing problems are counted, never thrown.
 */
export class MarketWsClient {
  private readonly url: string;
  private readonly log: MarketWsLogger;
  private readonly assets = new Set<string>();
  private ws?: WebSocket;
  private state: MarketWsState = 'closed';
  /** Whether this connection already got its initial subscribe frame. */
  private subscribedOnSocket = false;
  private attempt = 0;
  private started = false;
  private reconnectTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  private connectTimer?: NodeJS.Timeout;
  private lastFrameAt = 0;
  private lastDataAt = 0;
  private closeWaiters: Array<() => void> = [];
  private readonly counters = {
    connects: 0,
    reconnects: 0,
    frames: 0,
    events: 0,
    invalid: 0,
    unknown: 0,
    pongs: 0,
    pings: 0,
    stale: 0,
    handlerErrors: 0,
    subscribeFrames: 0,
  };

  constructor(private readonly opts: MarketWsOptions) {
    this.url = `${opts.url.replace(/\/+$/, '')}/ws/market`;
    this.log = opts.log ?? silent;
  }

  /** Starts connecting (and keeps reconnecting until `close`). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  /** Adds assets; sent at once on an open socket, otherwise part of the next connection's replay. */
  subscribe(assetIds: Iterable<string>): void {
    const added = [...assetIds].filter((a) => !this.assets.has(a));
    for (const a of added) this.assets.add(a);
    if (added.length === 0 || this.state !== 'open') return;
    // Before the initial frame of this socket went out, the initial frame carries everything.
    if (!this.subscribedOnSocket) this.sendInitialSubscribe();
    else this.send({ operation: 'subscribe', assets_ids: added, custom_feature_enabled: this.opts.customFeatureEnabled ?? false });
  }

  unsubscribe(assetIds: Iterable<string>): void {
    const removed = [...assetIds].filter((a) => this.assets.delete(a));
    if (removed.length === 0 || this.state !== 'open' || !this.subscribedOnSocket) return;
    this.send({ operation: 'unsubscribe', assets_ids: removed });
  }

  get subscriptions(): string[] {
    return [...this.assets];
  }

  get connected(): boolean {
    return this.state === 'open';
  }

  /** Milliseconds since the last inbound frame of the current connection, PONG included (Infinity if none yet). */
  get lastFrameAgeMs(): number {
    return this.lastFrameAt === 0 ? Infinity : Date.now() - this.lastFrameAt;
  }

  /** Milliseconds since the last data frame (not PONG) of the current connection, or since it opened. */
  get lastDataAgeMs(): number {
    return this.lastDataAt === 0 ? Infinity : Date.now() - this.lastDataAt;
  }

  get stats() {
    return {
      ...this.counters,
      state: this.state,
      assets: this.assets.size,
      last_frame_age_ms: this.lastFrameAgeMs,
      last_data_age_ms: this.lastDataAgeMs,
    };
  }

  /** Stops for good: no reconnects, socket closed. */
  async close(): Promise<void> {
    this.started = false;
    this.clearTimers();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      const closed = new Promise<void>((r) => this.closeWaiters.push(r));
      ws.close(1000, 'client stop');
      // A peer that never answers the close handshake must not hold up shutdown.
      const t = setTimeout(() => ws.terminate(), 1000);
      await closed;
      clearTimeout(t);
    }
    this.setState('stopped');
  }

  // ------------------------------------------------------------ internals

  private setState(state: MarketWsState, reason?: string): void {
    this.state = state;
    try {
      this.opts.onStatus?.({ state, attempt: this.attempt, ...(reason ? { reason } : {}) });
    } catch (err) {
      this.log.warn({ err }, 'market ws status handler failed');
    }
  }

  private connect(): void {
    if (!this.started) return;
    this.subscribedOnSocket = false;
    this.setState('connecting');
    const ws = new WebSocket(this.url, {
      maxPayload: this.opts.maxPayloadBytes ?? 64 * 1024 * 1024,
      handshakeTimeout: this.opts.connectTimeoutMs ?? 10_000,
      perMessageDeflate: false,
    });
    this.ws = ws;
    this.connectTimer = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    }, (this.opts.connectTimeoutMs ?? 10_000) + 1000);

    ws.on('open', () => {
      if (this.ws !== ws) return;
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.counters.connects++;
      this.lastFrameAt = this.lastDataAt = Date.now();
      this.setState('open');
      this.log.info({ url: this.url, assets: this.assets.size }, 'market ws connected');
      if (this.assets.size > 0) this.sendInitialSubscribe();
      this.startWatchdog();
    });
    ws.on('message', (data, isBinary) => {
      if (this.ws !== ws) return;
      this.onFrame(isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString());
    });
    ws.on('error', (err) => {
      // 'close' follows every 'error'; reconnecting happens there.
      this.log.debug({ err: err.message, url: this.url }, 'market ws error');
    });
    ws.on('close', (code, reason) => {
      const waiters = this.closeWaiters;
      this.closeWaiters = [];
      for (const w of waiters) w();
      if (this.ws !== ws) return;
      this.clearTimers();
      this.ws = undefined;
      if (!this.started) return;
      const why = `closed ${code}${reason.length ? ` ${reason.toString()}` : ''}`;
      this.setState('closed', why);
      this.scheduleReconnect(why);
    });
  }

  private onFrame(text: string): void {
    const now = Date.now();
    this.lastFrameAt = now;
    this.counters.frames++;
    if (text.length <= 6 && text.trim() === 'PONG') {
      this.counters.pongs++;
      return;
    }
    this.lastDataAt = now;
    if (this.opts.onFrame) {
      try {
        this.opts.onFrame(text, now);
      } catch (err) {
        this.counters.handlerErrors++;
        if (this.counters.handlerErrors <= 5) this.log.warn({ err }, 'market ws frame handler failed');
      }
      // A frame reaching the pipeline proves the link works: the next outage backs off from scratch.
      this.attempt = 0;
    }
    const onEvent = this.opts.onEvent;
    if (!onEvent) return;
    const parsed = parseMarketFrame(text);
    this.counters.invalid += parsed.invalid;
    this.counters.unknown += parsed.unknown;
    if (parsed.invalid > 0 && this.counters.invalid <= 5) {
      this.log.warn({ sample: text.slice(0, 200) }, 'market ws frame skipped (invalid)');
    }
    // A healthy frame proves the link works: the next outage starts backing off from scratch.
    if (parsed.events.length > 0) this.attempt = 0;
    for (const ev of parsed.events) {
      this.counters.events++;
      try {
        onEvent(ev);
      } catch (err) {
        this.counters.handlerErrors++;
        if (this.counters.handlerErrors <= 5) this.log.warn({ err, event_type: ev.event_type }, 'market ws event handler failed');
      }
    }
  }

  private sendInitialSubscribe(): void {
    this.subscribedOnSocket = true;
    // The stale clock starts when there is something to hear about.
    this.lastDataAt = Date.now();
    this.send({ assets_ids: [...this.assets], type: 'market', custom_feature_enabled: this.opts.customFeatureEnabled ?? false });
    this.startPing();
  }

  private send(frame: object): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    this.counters.subscribeFrames++;
    ws.send(JSON.stringify(frame));
  }

  private startPing(): void {
    if (this.pingTimer) return;
    this.pingTimer = setInterval(() => {
      const ws = this.ws;
      if (ws && ws.readyState === WebSocket.OPEN) {
        this.counters.pings++;
        ws.send('PING');
      }
    }, this.opts.pingIntervalMs ?? 10_000);
  }

  private startWatchdog(): void {
    const staleMs = this.opts.staleMs ?? 30_000;
    this.watchdog = setInterval(
      () => {
        const ws = this.ws;
        if (!ws || ws.readyState !== WebSocket.OPEN) return;
        if (this.assets.size > 0 && Date.now() - this.lastDataAt > staleMs) {
          this.counters.stale++;
          this.log.warn({ staleMs, url: this.url, assets: this.assets.size }, 'market ws stale: no data received; reconnecting');
          ws.terminate();
        }
      },
      Math.max(50, Math.min(1000, Math.floor(staleMs / 4))),
    );
  }

  private clearTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.pingTimer = this.watchdog = this.connectTimer = undefined;
  }

  private scheduleReconnect(why: string): void {
    const delay = reconnectDelay(this.attempt, this.opts.initialBackoffMs ?? 500, this.opts.maxBackoffMs ?? 30_000);
    this.attempt++;
    this.counters.reconnects++;
    this.log.info({ why, delayMs: delay, attempt: this.attempt }, 'market ws reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
  }
}
