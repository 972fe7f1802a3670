import Type from 'typebox';
import Compile from 'typebox/compile';
import WebSocket from 'ws';
import { WsUserOrder, WsUserTrade, type ApiCreds } from './schemas.js';
import { reconnectDelay } from './backoff.js';

// ---------------------------------------------------------------- normalized events

/** Order statuses the venue is known to send (PROTOCOL.md §2); anything else is passed on flagged. */
export const USER_ORDER_STATUSES = ['LIVE', 'MATCHED', 'CANCELED', 'INVALID', 'DELAYED', 'UNMATCHED'] as const;
export type KnownUserOrderStatus = (typeof USER_ORDER_STATUSES)[number];

/**
 * Trade statuses: MATCHED → MINED → CONFIRMED, RETRYING while the settlement transaction is
 * resubmitted, terminal FAILED. MATCHED_NOT_BROADCASTED is only documented for REST listings
 * (py-sdk) but would mean the same thing here, so it is not treated as unknown.
 */
export const USER_TRADE_STATUSES = ['MATCHED', 'MINED', 'CONFIRMED', 'RETRYING', 'FAILED', 'MATCHED_NOT_BROADCASTED'] as const;
export type KnownUserTradeStatus = (typeof USER_TRADE_STATUSES)[number];

/**
 * A user-channel `order` event, validated and normalized. Decimals stay the venue's exact strings;
 * every time is unix milliseconds whatever unit the wire used.
 */
export interface UserOrderEvent {
  event_type: 'order';
  /** Order hash (the venue's order id). */
  id: string;
  /** API key of the event's owner. */
  owner: string;
  order_owner?: string;
  /** Condition id. */
  market: string;
  asset_id: string;
  side: 'BUY' | 'SELL';
  price: string;
  original_size: string;
  /** `""` on the wire (killed FOK orders) becomes `"0"`. */
  size_matched: string;
  /** Absent when the wire had `""`. */
  outcome?: string;
  type: 'PLACEMENT' | 'UPDATE' | 'CANCELLATION';
  /** A known status in upper case (`CANCELED_<reason>` → `CANCELED`), or the raw text when unknown. */
  status: string;
  /** The `<reason>` of `CANCELED_<reason>` style statuses, e.g. `MARKET_RESOLVED`. */
  status_reason?: string;
  /** False when the status is not one of `USER_ORDER_STATUSES`; the consumer must not guess. */
  status_known: boolean;
  /** The status exactly as received. */
  raw_status: string;
  /** `null` on the wire becomes `[]`. */
  associate_trades: string[];
  maker_address?: string;
  order_type?: 'GTC' | 'GTD' | 'FOK' | 'FAK';
  /** Absent for `"0"`, `null` or `""` (no expiry). */
  expiration_ms?: number;
  /** From `created_at` (unix seconds on the venue; some fixtures use ms); absent when empty. */
  created_at_ms?: number;
  timestamp_ms: number;
}

export interface UserMakerOrderFill {
  order_id: string;
  owner: string;
  maker_address: string;
  matched_amount: string;
  price: string;
  fee_rate_bps: string;
  asset_id: string;
  outcome: string;
  side?: 'BUY' | 'SELL';
}

/** A user-channel `trade` event, validated and normalized (see `UserOrderEvent` for the conventions). */
export interface UserTradeEvent {
  event_type: 'trade';
  /** Trade id; with `status` it identifies one lifecycle step (see `TradeDeduper`). */
  id: string;
  taker_order_id: string;
  market: string;
  asset_id: string;
  side: 'BUY' | 'SELL';
  size: string;
  price: string;
  fee_rate_bps: string;
  /** A known status in upper case (`TRADE_STATUS_CONFIRMED` → `CONFIRMED`), or the raw text. */
  status: string;
  status_known: boolean;
  raw_status: string;
  /** CONFIRMED or FAILED: nothing more will happen to this trade. */
  terminal: boolean;
  match_time_ms?: number;
  last_update_ms?: number;
  timestamp_ms: number;
  outcome?: string;
  owner: string;
  trade_owner?: string;
  maker_address: string;
  transaction_hash?: string;
  bucket_index?: number;
  trader_side: 'TAKER' | 'MAKER';
  maker_orders: UserMakerOrderFill[];
}

export type UserWsEvent = UserOrderEvent | UserTradeEvent;

// ---------------------------------------------------------------- frame parsing (pure)

const checkOrder = Compile(WsUserOrder);
// The shared schema lists the known trade statuses only; an unknown one must still get through, flagged.
const checkTrade = Compile(Type.Intersect([Type.Omit(WsUserTrade, ['status']), Type.Object({ status: Type.String({ minLength: 1 }) })]));

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * A venue time as unix milliseconds. The venue mixes units (order `created_at` in seconds, its
 * `timestamp` in ms, trade `timestamp` either), so the magnitude decides: below 1e11 is seconds
 * (1e11 s is the year 5138, 1e11 ms is 1973), then ms, µs and ns. Strict ISO-8601 text is
 * accepted too because hand-written fixtures use it. `undefined` for empty, zero or junk.
 */
export function toEpochMs(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string') {
    const s = v.trim();
    if (/^\d{1,19}(\.\d{1,9})?$/.test(s)) n = Number(s);
    else if (ISO_RE.test(s)) {
      const t = Date.parse(s);
      return Number.isFinite(t) && t > 0 ? t : undefined;
    } else return undefined;
  } else return undefined;
  if (!Number.isFinite(n) || n <= 0) return undefined;
  if (n < 1e11) return Math.round(n * 1000);
  if (n < 1e14) return Math.round(n);
  if (n < 1e17) return Math.round(n / 1e3);
  return Math.round(n / 1e6);
}

/** Splits `CANCELED_<reason>`-style statuses by their known prefix, case-insensitively. */
function splitStatus(raw: string, known: readonly string[]): { status: string; reason?: string; known: boolean } {
  const upper = raw.toUpperCase();
  if (known.includes(upper)) return { status: upper, known: true };
  // Longest prefix first so e.g. MATCHED_NOT_BROADCASTED is not read as MATCHED + reason.
  for (const k of [...known].sort((a, b) => b.length - a.length)) {
    if (upper.startsWith(`${k}_`) && raw.length > k.length + 1) return { status: k, reason: raw.slice(k.length + 1), known: true };
  }
  return { status: raw, known: false };
}

const ORDER_TYPES = new Set(['PLACEMENT', 'UPDATE', 'CANCELLATION']);

function firstError(check: { Errors(v: unknown): Iterable<{ instancePath: string; message: string }> }, v: unknown): string {
  for (const e of check.Errors(v)) return `${e.instancePath || '/'} ${e.message}`;
  return 'schema mismatch';
}

type Normalized<T> = { ok: true; event: T } | { ok: false; reason: string };

/** Validates and normalizes one `order` object (event_type may be missing, as in some fixtures). */
export function normalizeUserOrder(raw: unknown): Normalized<UserOrderEvent> {
  if (!isObj(raw)) return { ok: false, reason: 'order: not an object' };
  // A killed FOK reports `size_matched: ""`; nothing matched, and "" is no decimal.
  const o: Obj = { ...raw, event_type: 'order', ...(raw.size_matched === '' ? { size_matched: '0' } : {}) };
  if (!checkOrder.Check(o)) return { ok: false, reason: `order: ${firstError(checkOrder, o)}` };
  const timestamp_ms = toEpochMs(o.timestamp);
  if (timestamp_ms === undefined) return { ok: false, reason: 'order: /timestamp is not a unix time' };
  const st = splitStatus(o.status, USER_ORDER_STATUSES);
  const created_at_ms = toEpochMs(o.created_at);
  const expiration_ms = toEpochMs(o.expiration);
  const event: UserOrderEvent = {
    event_type: 'order',
    id: o.id,
    owner: o.owner,
    ...(o.order_owner ? { order_owner: o.order_owner } : {}),
    market: o.market,
    asset_id: o.asset_id,
    side: o.side,
    price: o.price,
    original_size: o.original_size,
    size_matched: o.size_matched,
    ...(o.outcome ? { outcome: o.outcome } : {}),
    type: o.type,
    status: st.status,
    ...(st.reason !== undefined ? { status_reason: st.reason } : {}),
    status_known: st.known,
    raw_status: o.status,
    associate_trades: o.associate_trades ?? [],
    ...(o.maker_address ? { maker_address: o.maker_address } : {}),
    ...(o.order_type ? { order_type: o.order_type } : {}),
    ...(expiration_ms !== undefined ? { expiration_ms } : {}),
    ...(created_at_ms !== undefined ? { created_at_ms } : {}),
    timestamp_ms,
  };
  return { ok: true, event };
}

/** Validates and normalizes one `trade` object. */
export function normalizeUserTrade(raw: unknown): Normalized<UserTradeEvent> {
  if (!isObj(raw)) return { ok: false, reason: 'trade: not an object' };
  const o: Obj = { ...raw, event_type: 'trade' };
  if (!checkTrade.Check(o)) return { ok: false, reason: `trade: ${firstError(checkTrade, o)}` };
  const timestamp_ms = toEpochMs(o.timestamp);
  if (timestamp_ms === undefined) return { ok: false, reason: 'trade: /timestamp is not a unix time' };
  // Strip the REST listings' prefix so both spellings compare equal.
  const rawStatus = o.status;
  const st = splitStatus(rawStatus.replace(/^TRADE_STATUS_/i, ''), USER_TRADE_STATUSES);
  // A suffix on a trade status has no documented meaning; keep it verbatim rather than drop it.
  const known = st.known && st.reason === undefined;
  const status = known ? st.status : rawStatus;
  const match_time_ms = toEpochMs(o.match_time);
  const last_update_ms = toEpochMs(o.last_update);
  const event: UserTradeEvent = {
    event_type: 'trade',
    id: o.id,
    taker_order_id: o.taker_order_id,
    market: o.market,
    asset_id: o.asset_id,
    side: o.side,
    size: o.size,
    price: o.price,
    fee_rate_bps: o.fee_rate_bps,
    status,
    status_known: known,
    raw_status: rawStatus,
    terminal: known && (status === 'CONFIRMED' || status === 'FAILED'),
    ...(match_time_ms !== undefined ? { match_time_ms } : {}),
    ...(last_update_ms !== undefined ? { last_update_ms } : {}),
    timestamp_ms,
    ...(o.outcome ? { outcome: o.outcome } : {}),
    owner: o.owner,
    ...(o.trade_owner ? { trade_owner: o.trade_owner } : {}),
    maker_address: o.maker_address,
    ...(o.transaction_hash ? { transaction_hash: o.transaction_hash } : {}),
    ...(o.bucket_index !== undefined ? { bucket_index: o.bucket_index } : {}),
    trader_side: o.trader_side,
    maker_orders: o.maker_orders.map((m) => ({
      order_id: m.order_id,
      owner: m.owner,
      maker_address: m.maker_address,
      matched_amount: m.matched_amount,
      price: m.price,
      fee_rate_bps: m.fee_rate_bps,
      asset_id: m.asset_id,
      outcome: m.outcome,
      ...(m.side ? { side: m.side } : {}),
    })),
  };
  return { ok: true, event };
}

export interface ParsedUserFrame {
  events: UserWsEvent[];
  /** Objects (or whole frames) that were not JSON, too big, or failed validation. */
  invalid: number;
  /** Objects with an event type this channel does not define. */
  unknown: number;
  /** Events passed on with `status_known: false`. */
  unknownStatus: number;
  /** The frame was the heartbeat answer `PONG`. */
  pong: boolean;
  /** Why objects were rejected or skipped (the first few), for logs; never contains whole frames. */
  reasons: string[];
}

export interface ParseUserFrameOptions {
  /** Frames longer than this (in UTF-16 units) are rejected unparsed. */
  maxChars?: number;
}

export const DEFAULT_MAX_USER_FRAME = 8 * 1024 * 1024;
const MAX_REASONS = 5;

function note(out: ParsedUserFrame, reason: string): void {
  if (out.reasons.length < MAX_REASONS) out.reasons.push(reason.slice(0, 200));
}

function parseOne(o: unknown, out: ParsedUserFrame): void {
  if (!isObj(o)) {
    out.invalid++;
    note(out, 'not an object');
    return;
  }
  let type = o.event_type;
  // Several fixtures omit event_type; `type` alone tells the two kinds apart.
  if (type === undefined) {
    if (o.type === 'TRADE') type = 'trade';
    else if (typeof o.type === 'string' && ORDER_TYPES.has(o.type)) type = 'order';
  }
  const r = type === 'order' ? normalizeUserOrder(o) : type === 'trade' ? normalizeUserTrade(o) : undefined;
  if (!r) {
    out.unknown++;
    note(out, `unknown event_type ${JSON.stringify(type)}`);
    return;
  }
  if (!r.ok) {
    out.invalid++;
    note(out, r.reason);
    return;
  }
  if (!r.event.status_known) {
    out.unknownStatus++;
    note(out, `${r.event.event_type} ${r.event.id}: unknown status ${JSON.stringify(r.event.raw_status)}`);
  }
  out.events.push(r.event);
}

/** Parses one user-channel text frame (an object, an array of objects, or `PONG`); never throws. */
export function parseUserFrame(text: string, opts: ParseUserFrameOptions = {}): ParsedUserFrame {
  const out: ParsedUserFrame = { events: [], invalid: 0, unknown: 0, unknownStatus: 0, pong: false, reasons: [] };
  if (text.length > (opts.maxChars ?? DEFAULT_MAX_USER_FRAME)) {
    out.invalid++;
    note(out, `frame of ${text.length} chars exceeds the limit`);
    return out;
  }
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
    note(out, 'not JSON');
    return out;
  }
  if (Array.isArray(data)) for (const item of data) parseOne(item, out);
  else parseOne(data, out);
  return out;
}

// ---------------------------------------------------------------- dedup helper

const TERMINAL_TRADE = new Set(['CONFIRMED', 'FAILED']);

/**
 * Drops repeated trade events (reconnects and REST refreshes replay them). A trade legitimately
 * moves MATCHED → MINED → CONFIRMED, so the key is trade id + status: the same status twice is a
 * duplicate. Two refinements: after a terminal status (CONFIRMED/FAILED) everything else for that
 * trade is stale, and RETRYING/MINED forget each other because a failed settlement is mined again.
 * Memory is bounded: the least recently touched trades are forgotten beyond `maxTrades`.
 */
export class TradeDeduper {
  private readonly seen = new Map<string, string[]>();
  private dropped = 0;

  constructor(private readonly maxTrades = 50_000) {
    if (!Number.isSafeInteger(maxTrades) || maxTrades < 1) throw new RangeError('maxTrades must be a positive integer');
  }

  /** True the first time this trade id + status is seen (the event should be applied), false otherwise. */
  accept(ev: { id: string; status: string }): boolean {
    const statuses = this.seen.get(ev.id);
    if (statuses && (statuses.includes(ev.status) || statuses.some((s) => TERMINAL_TRADE.has(s)))) {
      this.dropped++;
      return false;
    }
    const next = (statuses ?? []).filter((s) => !(ev.status === 'RETRYING' && s === 'MINED') && !(ev.status === 'MINED' && s === 'RETRYING'));
    next.push(ev.status);
    // Delete + set moves the trade to the young end of the Map's insertion order.
    this.seen.delete(ev.id);
    this.seen.set(ev.id, next);
    if (this.seen.size > this.maxTrades) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return true;
  }

  /** Statuses accepted so far for a trade (empty if unknown or forgotten). */
  statuses(tradeId: string): readonly string[] {
    return this.seen.get(tradeId) ?? [];
  }

  get size(): number {
    return this.seen.size;
  }

  /** Events refused so far. */
  get duplicates(): number {
    return this.dropped;
  }
}

// ---------------------------------------------------------------- client

/** What the client needs of a logger (a pino logger fits). Credentials never reach it. */
export interface UserWsLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/**
 * `connecting` → `open` (socket up, auth sent) → `ready` (the venue answered after the auth frame,
 * so it took it) → `closed` → … ; `stopped` after `close()`.
 */
export type UserWsState = 'connecting' | 'open' | 'ready' | 'closed' | 'stopped';

export interface UserWsStatus {
  /**
   * The new state, or `reconnected`: emitted once per connection that becomes ready after an
   * earlier one was ready. The user channel does not replay what happened in between, so the
   * consumer must then refresh open orders and recent trades over REST.
   */
  state: UserWsState | 'reconnected';
  reason?: string;
  /** Reconnect attempt number since the last ready connection (for backoff). */
  attempt: number;
  /** Connections opened so far, this one included. */
  connection: number;
  /** With `reconnected`: how long there was no ready connection. */
  downMs?: number;
}

export interface UserWsOptions {
  /** Base URL; `/ws/user` is appended (e.g. `wss://ws-subscriptions-clob.polymarket.com`). */
  url: string;
  /** Raw L2 credentials: the venue wants them in the clear in the first frame. Never logged. */
  creds: ApiCreds;
  /**
   * Condition ids to filter on. Empty means every market of the account (simulator and docs:
   * the filter is optional) — so a later `subscribe` narrows the stream to the listed markets.
   */
  markets?: Iterable<string>;
  onEvent: (event: UserWsEvent) => void;
  onStatus?: (status: UserWsStatus) => void;
  log?: UserWsLogger;
  /** Text `PING` interval (the venue closes quiet sockets; rs-clob-client uses 10 s). */
  pingIntervalMs?: number;
  /** No frame at all (event or PONG) for this long → the link is dead; reconnect. */
  staleMs?: number;
  /**
   * After `expectEvent()`, no order/trade event for this long → the socket is frozen (PONGs can
   * keep flowing while data does not, py-clob-client#292); reconnect.
   */
  eventTimeoutMs?: number;
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs`, with jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  connectTimeoutMs?: number;
  /** Largest frame accepted; a bigger one closes the socket (and counts as invalid). */
  maxPayloadBytes?: number;
}

const silent: UserWsLogger = { debug() {}, info() {}, warn() {} };

/**
 * User-channel client: authenticates with raw L2 credentials on every connection, keeps the
 * market filter across reconnects, heartbeats with text `PING`, watches for dead and for frozen
 * sockets, reconnects with exponential backoff + jitter and says `reconnected` when the consumer
 * has to refill the gap over REST. Events arrive validated and normalized; bad input is counted,
 * never thrown. Duplicates are passed on — see `TradeDeduper`.
 */
export class UserWsClient {
  private readonly url: string;
  private readonly log: UserWsLogger;
  private readonly creds: ApiCreds;
  private readonly markets = new Set<string>();
  private ws?: WebSocket;
  private state: UserWsState = 'closed';
  private readyOnSocket = false;
  private everReady = false;
  /** When the last ready connection ended (0 while one is up or before the first). */
  private downSince = 0;
  private attempt = 0;
  private started = false;
  private reconnectTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  private connectTimer?: NodeJS.Timeout;
  private lastFrameAt = 0;
  private readyAt = 0;
  /** Set by `expectEvent()`, cleared by any event or by a reconnect. */
  private awaitingSince = 0;
  private closeWaiters: Array<() => void> = [];
  private readonly counters = {
    connects: 0,
    reconnects: 0,
    reconnected: 0,
    frames: 0,
    events: 0,
    orders: 0,
    trades: 0,
    invalid: 0,
    unknown: 0,
    unknownStatus: 0,
    oversize: 0,
    pongs: 0,
    pings: 0,
    stale: 0,
    staleEvents: 0,
    authRejects: 0,
    handlerErrors: 0,
    subscribeFrames: 0,
  };

  constructor(private readonly opts: UserWsOptions) {
    const c = opts.creds;
    if (!c || !c.apiKey || !c.secret || !c.passphrase) throw new TypeError('UserWsClient needs L2 credentials (apiKey, secret, passphrase)');
    this.creds = { apiKey: c.apiKey, secret: c.secret, passphrase: c.passphrase };
    this.url = `${opts.url.replace(/\/+$/, '')}/ws/user`;
    this.log = opts.log ?? silent;
    for (const m of opts.markets ?? []) this.markets.add(m);
  }

  /** Only the key id's first characters: enough to tell keys apart in logs, useless to an attacker. */
  private get keyHint(): string {
    return `${this.creds.apiKey.slice(0, 8)}…`;
  }

  /** Starts connecting (and keeps reconnecting until `close`). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  /** Adds condition ids; sent at once on an open socket, otherwise part of the next auth frame. */
  subscribe(conditionIds: Iterable<string>): void {
    const added = [...conditionIds].filter((m) => !this.markets.has(m));
    for (const m of added) this.markets.add(m);
    if (added.length > 0) this.send({ operation: 'subscribe', markets: added });
  }

  /** Removes condition ids. Removing the last one means "every market" again on the next connection. */
  unsubscribe(conditionIds: Iterable<string>): void {
    const removed = [...conditionIds].filter((m) => this.markets.delete(m));
    if (removed.length > 0) this.send({ operation: 'unsubscribe', markets: removed });
  }

  /**
   * Tells the watchdog an event must follow (call it after the venue accepted an order or a
   * cancel): if none arrives within `eventTimeoutMs` the socket is treated as frozen. With the
   * `eventCount` read before the request, an event that already came (the venue often streams the
   * order before it answers the POST) satisfies it.
   */
  expectEvent(sinceEventCount?: number): void {
    if (sinceEventCount !== undefined && this.counters.events > sinceEventCount) return;
    if (this.awaitingSince === 0) this.awaitingSince = Date.now();
  }

  /** Order and trade events received so far (for `expectEvent`). */
  get eventCount(): number {
    return this.counters.events;
  }

  get subscriptions(): string[] {
    return [...this.markets];
  }

  get currentState(): UserWsState {
    return this.state;
  }

  /** The venue has answered on this connection since the auth frame went out. */
  get ready(): boolean {
    return this.state === 'ready';
  }

  get lastFrameAgeMs(): number {
    return this.lastFrameAt === 0 ? Infinity : Date.now() - this.lastFrameAt;
  }

  /** Counters for metrics (they only grow) plus the current state. */
  get stats() {
    return { ...this.counters, state: this.state, markets: this.markets.size, last_frame_age_ms: this.lastFrameAgeMs };
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

  private emit(status: UserWsStatus): void {
    try {
      this.opts.onStatus?.(status);
    } catch (err) {
      this.log.warn({ err }, 'user ws status handler failed');
    }
  }

  private setState(state: UserWsState, reason?: string): void {
    this.state = state;
    this.emit({ state, attempt: this.attempt, connection: this.counters.connects, ...(reason ? { reason } : {}) });
  }

  private connect(): void {
    if (!this.started) return;
    this.readyOnSocket = false;
    this.setState('connecting');
    const ws = new WebSocket(this.url, {
      maxPayload: this.opts.maxPayloadBytes ?? DEFAULT_MAX_USER_FRAME,
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
      this.lastFrameAt = Date.now();
      const markets = [...this.markets];
      ws.send(JSON.stringify({ auth: { ...this.creds }, markets, type: 'user' }));
      // The channel never acknowledges auth; a PONG to this first PING (the venue and the
      // simulator refuse PING before auth) is the earliest proof the auth frame was taken.
      this.ping();
      this.setState('open');
      this.log.info({ url: this.url, apiKey: this.keyHint, markets: markets.length }, 'user ws connected, auth sent');
      this.startTimers();
    });
    ws.on('message', (data, isBinary) => {
      if (this.ws !== ws) return;
      this.onFrame(isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString());
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.counters.oversize++;
        this.counters.invalid++;
      }
      // 'close' follows every 'error'; reconnecting happens there.
      this.log.debug({ err: err.message, code: err.code, url: this.url }, 'user ws error');
    });
    ws.on('close', (code, reason) => {
      const waiters = this.closeWaiters;
      this.closeWaiters = [];
      for (const w of waiters) w();
      if (this.ws !== ws) return;
      this.clearTimers();
      this.ws = undefined;
      // A frozen-socket suspicion does not survive a reconnect: the REST refresh that `reconnected`
      // triggers settles whatever event was missing, and it may never come on the new socket.
      this.awaitingSince = 0;
      if (this.readyOnSocket) this.downSince = Date.now();
      const why = `closed ${code}${reason.length ? ` ${reason.toString().slice(0, 120)}` : ''}`;
      // 1008 before any answer: the venue refused the credentials (or the frame); retrying with
      // backoff is still right (a key may be re-created), but it must be visible.
      if (code === 1008 && !this.readyOnSocket) {
        this.counters.authRejects++;
        this.log.warn({ apiKey: this.keyHint, why }, 'user ws auth rejected');
      }
      this.readyOnSocket = false;
      if (!this.started) return;
      this.setState('closed', why);
      this.scheduleReconnect(why);
    });
  }

  private markReady(): void {
    if (this.readyOnSocket) return;
    this.readyOnSocket = true;
    this.readyAt = Date.now();
    // A working link: the next outage starts backing off from scratch.
    this.attempt = 0;
    this.setState('ready');
    if (this.everReady) {
      this.counters.reconnected++;
      const downMs = this.downSince > 0 ? this.readyAt - this.downSince : undefined;
      this.log.info({ apiKey: this.keyHint, downMs }, 'user ws reconnected; events in the gap are not replayed');
      this.emit({ state: 'reconnected', attempt: 0, connection: this.counters.connects, ...(downMs !== undefined ? { downMs } : {}) });
    }
    this.everReady = true;
    this.downSince = 0;
  }

  private onFrame(text: string): void {
    this.lastFrameAt = Date.now();
    this.counters.frames++;
    const parsed = parseUserFrame(text, { maxChars: this.opts.maxPayloadBytes ?? DEFAULT_MAX_USER_FRAME });
    if (parsed.pong) {
      this.counters.pongs++;
      this.markReady();
      return;
    }
    this.counters.invalid += parsed.invalid;
    this.counters.unknown += parsed.unknown;
    this.counters.unknownStatus += parsed.unknownStatus;
    // A bad frame is logged, without its content (it may be the account's data), a few times only.
    if (parsed.invalid + parsed.unknown + parsed.unknownStatus > 0 && this.counters.invalid + this.counters.unknown + this.counters.unknownStatus <= 10) {
      this.log.warn({ reasons: parsed.reasons, chars: text.length }, 'user ws frame content skipped or flagged');
    }
    if (parsed.events.length === 0) return;
    this.markReady();
    this.awaitingSince = 0;
    for (const ev of parsed.events) {
      this.counters.events++;
      if (ev.event_type === 'order') this.counters.orders++;
      else this.counters.trades++;
      try {
        this.opts.onEvent(ev);
      } catch (err) {
        this.counters.handlerErrors++;
        if (this.counters.handlerErrors <= 5) this.log.warn({ err, event_type: ev.event_type }, 'user ws event handler failed');
      }
    }
  }

  private send(frame: object): void {
    const ws = this.ws;
    // Before `open` the next auth frame carries the whole filter anyway.
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    this.counters.subscribeFrames++;
    ws.send(JSON.stringify(frame));
  }

  private ping(): void {
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      this.counters.pings++;
      ws.send('PING');
    }
  }

  private startTimers(): void {
    this.pingTimer = setInterval(() => this.ping(), this.opts.pingIntervalMs ?? 10_000);
    const staleMs = this.opts.staleMs ?? 30_000;
    const eventTimeoutMs = this.opts.eventTimeoutMs ?? 20_000;
    const tick = Math.max(50, Math.min(1000, Math.floor(Math.min(staleMs, eventTimeoutMs) / 4)));
    this.watchdog = setInterval(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      const now = Date.now();
      if (now - this.lastFrameAt > staleMs) {
        this.counters.stale++;
        this.log.warn({ staleMs, url: this.url }, 'user ws stale: no frame received; reconnecting');
        ws.terminate();
        return;
      }
      // The window starts no earlier than this connection being ready, so a fresh socket gets all of it.
      if (this.awaitingSince > 0 && this.readyOnSocket && now - Math.max(this.awaitingSince, this.readyAt) > eventTimeoutMs) {
        this.counters.staleEvents++;
        this.counters.stale++;
        this.log.warn({ eventTimeoutMs, url: this.url }, 'user ws frozen: an expected event did not arrive; reconnecting');
        ws.terminate();
      }
    }, tick);
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
    this.log.info({ why, delayMs: delay, attempt: this.attempt }, 'user ws reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
  }
}
