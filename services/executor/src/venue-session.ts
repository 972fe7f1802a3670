/**
 * Everything between the executor and the venue for one account, in one object: API key, user
 * channel, reconciliation, order posting through the `VenueGate`, settling ambiguous posts, the
 * REST refresh that recovers what the stream missed, the dead-man heartbeat, and cancels.
 *
 * The rules it keeps (brief §6.6, RELIABILITY-NOTES §0):
 *  - Reconcile before trading: `ready` is only ever reported after open orders, trades since the
 *    caller's last one, balances and the version were all read in full with the user channel already
 *    up (so nothing can fall between the snapshot and the stream). A failed step leaves the session
 *    `closed` with the reason and tries again with back-off.
 *  - Three outcomes per submit: `not_sent` (certain the venue never saw it), `rejected`, `ambiguous`.
 *    An ambiguous order is settled here, by looking its hash up and by re-posting the IDENTICAL signed
 *    body (the venue deduplicates it), never by signing anything; the answer arrives as an order update.
 *  - Fail closed: no new order unless reconciled, the stream is up and resynchronised, heartbeats are
 *    accepted and the gate's venue mode allows it. Cancels and queries always go on.
 *
 * No storage in here: the caller persists signed orders before `submit` and merges what the events
 * carry. Order inputs are `order-state.ts` inputs, so the caller can apply them as they come.
 * Credentials live in memory only and never reach a log line or an error.
 */
import {
  buildL2Headers,
  ClobAccountClient,
  ClobAccountError,
  ClobTradingClient,
  classifyStatus,
  createOrDeriveApiKey,
  GateError,
  HeartbeatLoop,
  normalizeUserTrade,
  orderHash,
  RateLimiter,
  sleep,
  systemClock,
  TradeDeduper,
  UserWsClient,
  VenueGate,
  type ApiCreds,
  type AuthHeadersFn,
  type BalanceAllowance,
  type CallKind,
  type CancelResponse,
  type ClobTrade,
  type Clock,
  type GateEvent,
  type HeartbeatLoopOptions,
  type HeartbeatResync,
  type OpenOrder,
  type PostOrderBody,
  type PostOrderOutcome,
  type RateLimiterOptions,
  type TimerHandle,
  type TypedDataSigner,
  type UserOrderEvent,
  type UserTradeEvent,
  type UserWsEvent,
  type UserWsOptions,
  type UserWsStatus,
  type Verdict,
} from '@polybot/polymarket';
import { toMicros } from '@polybot/protocol';
import { classifyVenueStatus, type CancelAckInput, type LookupInput, type OrderInput, type PostInput } from './order-state.js';
import { parseTradeStatus, type TradeStatus } from './trade-state.js';

// ---------------------------------------------------------------- public shapes

export type SessionStateName = 'closed' | 'reconciling' | 'ready' | 'degraded';

export interface SessionState {
  state: SessionStateName;
  /** Why the session is not `ready` (absent when it is). Never contains credentials. */
  reason?: string;
  /** Clock ms of the last change. */
  since: number;
}

export type CanTrade =
  | { ok: true }
  | { ok: false; code: 'not_ready' | 'trading_disabled' | 'heartbeat' | 'degraded' | 'venue_mode'; reason: string };

/** An order as the venue reported it (decimal strings as received). */
export interface VenueOrderView {
  id: string;
  market: string;
  assetId: string;
  side: 'BUY' | 'SELL';
  price: string;
  originalSize: string;
  sizeMatched: string;
  /** The venue's status text, e.g. LIVE, MATCHED, CANCELED, CANCELED_MARKET_RESOLVED. */
  status: string;
  orderType?: string;
  outcome?: string;
  createdAtMs?: number;
  associateTrades: string[];
}

export type OrderUpdateSource =
  /** A user-channel event. */
  | 'stream'
  /** The REST refresh after a reconnect, on the poll timer or on request. */
  | 'refresh'
  /** Settling an ambiguous submit (lookup or identical re-post). */
  | 'settle';

export interface VenueOrderUpdate {
  /** The order hash (the venue's order id). */
  orderId: string;
  source: OrderUpdateSource;
  /** What to feed `applyOrderInput` for this order. */
  input: OrderInput;
  /** What the venue said about the order, when it said anything. */
  order?: VenueOrderView;
  /** Set when this update ends an ambiguity: the order exists, or is not at the venue after every lookup. */
  settlement?: 'exists' | 'not_found';
  reason?: string;
  at: number;
}

/** One of this account's fills in a trade. `size` in micro shares; `price` the venue's decimal. */
export interface OwnFill {
  orderId: string;
  role: 'TAKER' | 'MAKER';
  side: 'BUY' | 'SELL';
  assetId: string;
  size: bigint;
  price: string;
}

export interface VenueTradeUpdate {
  tradeId: string;
  /** Parsed lifecycle status; undefined when the venue's text is not understood (see `rawStatus`). */
  status: TradeStatus | undefined;
  rawStatus: string;
  /** CONFIRMED or FAILED: nothing more will happen to it. */
  terminal: boolean;
  source: 'stream' | 'refresh' | 'reconcile';
  trade: UserTradeEvent;
  fills: OwnFill[];
  at: number;
}

export interface Balances {
  /** pUSD, 6-decimal base units (exact integer string). */
  collateral: Required<BalanceAllowance>;
  /** Outcome tokens by token id, base units. */
  tokens: Record<string, Required<BalanceAllowance>>;
}

/** What the venue holds for the account at a consistent point, for the caller to merge. */
export interface ReconciledSnapshot {
  at: number;
  /** `start`, or `restart` after the venue refused the API key and it was derived again. */
  cause: 'start' | 'restart';
  /** The order version to sign (`GET /version`). */
  version: number;
  /**
   * One `lookup` input per open order, then one per order the caller (or the session before a
   * restart) held as open that is no longer listed: found with its final status, or not found.
   */
  orders: VenueOrderUpdate[];
  /** Trades matched since `tradesSinceMs` (every one, whatever its status). */
  trades: VenueTradeUpdate[];
  tradesSinceMs: number | undefined;
  balances: Balances;
}

export interface SubmitMeta {
  /** Selects the exchange of the EIP-712 domain, hence the order hash. */
  negRisk: boolean;
  /** The hash the caller persisted; checked against the body. */
  orderId?: string;
}

export interface SubmitResult {
  orderId: string;
  outcome: PostOrderOutcome;
  /** What to feed `applyOrderInput`. An ambiguous outcome is followed by a `settle` update. */
  input: PostInput;
}

/** Cancels are idempotent at the venue; an id is either confirmed, refused with a reason, or unconfirmed. */
export interface CancelResult {
  canceled: string[];
  /** The venue's reason per id, e.g. "already canceled or matched". */
  notCanceled: Record<string, string>;
  /** No answer for these (not sent, or sent without a readable answer): the stream or a refresh tells. */
  unconfirmed: string[];
  /** Per id, what to feed `applyOrderInput` for the answered ones. */
  acks: Array<{ orderId: string; input: CancelAckInput }>;
  error?: string;
}

export interface StartOptions {
  /** Epoch ms of the last trade the caller knows; trades from then on are reconciled. Absent = all. */
  tradesSinceMs?: number;
  /**
   * Orders the caller holds as open. The venue lists LIVE orders only, so each one missing from
   * the listing is looked up and its fate (filled, cancelled, unknown) is in the snapshot.
   */
  openOrderIds?: readonly string[];
  /** Tokens whose balance the snapshot carries (collateral always). */
  tokens?: readonly string[];
}

export interface SettleOptions {
  /** First lookup after an ambiguous answer (venues show a new order a moment late). */
  firstLookupMs: number;
  /** Ceiling of the doubling delay between lookups. */
  maxDelayMs: number;
  /** Re-posts stop after this; the order is reported not found only by a lookup after it. */
  deadlineMs: number;
  /** A "not found" only counts this long after the last re-post (which may still be on its way). */
  graceMs: number;
  /** Re-post the identical signed body while the order is not found. */
  repost: boolean;
  maxReposts: number;
}

export interface VenueSessionLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface VenueSessionOptions {
  /** `clob`: REST base; `ws`: the base `/ws/user` hangs off. */
  urls: { clob: string; ws: string };
  /** The EOA: its address goes into L2 headers and keys the per-signer rate limits. Only the default credentials provider signs with it (L1 auth). */
  signer: TypedDataSigner;
  /** Obtains the L2 credentials; default `createOrDeriveApiKey` with `signer`. Called again after the venue refuses them. */
  credentials?: (signal: AbortSignal) => Promise<ApiCreds>;
  clock?: Clock;
  log?: VenueSessionLogger;
  /** One gate per venue and process; a private one on `clock` when absent. */
  gate?: VenueGate;
  /** Limits of the private gate's limiter: share of the published limits and the signer's tier. */
  limits?: Pick<RateLimiterOptions, 'share' | 'signerTier'>;
  fetch?: typeof fetch;
  /** The maker (funder) address whose fills are ours in maker_orders; default the signer. */
  funder?: string;
  /** Sent with balance queries (0 EOA, 1 proxy, 2 safe, 3 1271). */
  signatureType?: number;
  chainId?: number;
  /** Condition ids for the user channel; empty = every market of the account. */
  markets?: readonly string[];
  /** New orders are refused until enabled (fail closed); heartbeats run while enabled. */
  tradingEnabled?: boolean;
  /** Fallback REST refresh of open orders and trades. Default 30 s. */
  pollIntervalMs?: number;
  /** Deadline of one REST request. Default 10 s. */
  requestTimeoutMs?: number;
  /** Deadline of one `POST /order`; past it the outcome is ambiguous. Default 10 s. */
  orderTimeoutMs?: number;
  /** How long one read or cancel may keep retrying through the gate. Default 30 s. */
  callDeadlineMs?: number;
  /** The user channel must answer within this at start. Default 15 s. */
  wsReadyTimeoutMs?: number;
  /** Back-off of start and refresh retries: equal jitter from `retryBaseMs` doubling to `retryMaxMs`. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A 429 answer to a submit is re-posted (same body) after Retry-After while within this. Default 10 s; 0 = never. */
  resubmitWithinMs?: number;
  /** Re-read trades from this long before the last one seen, so a second-granular filter misses nothing. Default 5 s. */
  tradeOverlapMs?: number;
  settle?: Partial<SettleOptions>;
  /** Dead-man heartbeat timings; `false` turns heartbeats (and the requirement) off. */
  heartbeat?: Partial<Pick<HeartbeatLoopOptions, 'intervalMs' | 'expiryMs' | 'marginMs' | 'retryMs' | 'timeoutMs'>> | false;
  userWs?: Partial<Pick<UserWsOptions, 'pingIntervalMs' | 'staleMs' | 'eventTimeoutMs' | 'initialBackoffMs' | 'maxBackoffMs' | 'connectTimeoutMs'>>;
  /** `limit` on listings (the simulator honours it). */
  pageSize?: number;
  random?: () => number;
}

// ---------------------------------------------------------------- helpers

const silent: VenueSessionLogger = { debug() {}, info() {}, warn() {}, error() {} };

const clip = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function describeErr(err: unknown): string {
  if (err instanceof GateError) return err.reason;
  if (err instanceof Error) {
    const cause = (err as { cause?: { message?: unknown; code?: unknown } }).cause;
    const extra = cause && typeof cause.message === 'string' && !err.message.includes(cause.message) ? `: ${cause.message}` : '';
    return clip(`${err.message}${extra}`);
  }
  return clip(String(err));
}

/** Micro units of a venue decimal; junk reads as 0 (the schemas already checked the shape). */
function micros(s: string | undefined): bigint {
  if (!s) return 0n;
  try {
    return toMicros(s, 'down');
  } catch {
    return 0n;
  }
}

const isDuplicate = (msg: string) => /duplicat/i.test(msg);
const isUnauthorized = (err: unknown) => err instanceof ClobAccountError && err.code === 'unauthorized';

type Wrapped<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** What a thrown account error means to the gate: 429 pauses, 425 restarts, 5xx/network count as failures. */
function classifyWrapped(w: Wrapped<unknown>): Verdict {
  if (w.ok) return { type: 'ok' };
  const e = w.error;
  if (e instanceof ClobAccountError) {
    if (e.status !== undefined) return classifyStatus(e.status, e.venueMessage ?? '', e.retryAfterMs);
    if (e.code === 'aborted') return { type: 'rejected', reason: 'aborted' };
    if (e.code === 'paging') return { type: 'rejected', reason: e.message };
    return { type: 'failure', reason: e.message };
  }
  return { type: 'failure', reason: describeErr(e) };
}

function orderViewOfRest(o: OpenOrder): VenueOrderView {
  return {
    id: o.id,
    market: o.market,
    assetId: o.asset_id,
    side: o.side,
    price: o.price,
    originalSize: o.original_size,
    sizeMatched: o.size_matched,
    status: o.status,
    orderType: o.order_type,
    outcome: o.outcome,
    createdAtMs: o.created_at > 1e11 ? o.created_at : o.created_at * 1000,
    associateTrades: o.associate_trades,
  };
}

function orderViewOfWs(e: UserOrderEvent): VenueOrderView {
  return {
    id: e.id,
    market: e.market,
    assetId: e.asset_id,
    side: e.side,
    price: e.price,
    originalSize: e.original_size,
    sizeMatched: e.size_matched,
    status: e.raw_status,
    ...(e.order_type ? { orderType: e.order_type } : {}),
    ...(e.outcome ? { outcome: e.outcome } : {}),
    ...(e.created_at_ms !== undefined ? { createdAtMs: e.created_at_ms } : {}),
    associateTrades: e.associate_trades,
  };
}

/** A REST trade in the user channel's normalized shape, so both sources flow through one path. */
function tradeOfRest(t: ClobTrade): UserTradeEvent | undefined {
  const r = normalizeUserTrade({ ...t, event_type: 'trade', type: 'TRADE', timestamp: t.timestamp ?? t.last_update });
  return r.ok ? r.event : undefined;
}

const lookupFound = (o: { status: string; sizeMatched: string }): LookupInput => ({ kind: 'lookup', found: true, status: o.status, sizeMatched: micros(o.sizeMatched) });

/** The order-state input of a post outcome; `side` says which amount is the shares. */
function postInput(outcome: PostOrderOutcome, side: 'BUY' | 'SELL'): PostInput {
  switch (outcome.kind) {
    case 'accepted': {
      const r = outcome.response;
      const shares = side === 'BUY' ? r.takingAmount : r.makingAmount;
      return {
        kind: 'post',
        outcome: 'accepted',
        ...(r.status ? { status: r.status } : {}),
        ...(shares ? { matched: micros(shares) } : {}),
        ...(r.orderID ? { venueOrderId: r.orderID } : {}),
      };
    }
    case 'rejected':
      return { kind: 'post', outcome: 'rejected', reason: outcome.errorMsg };
    case 'not_sent':
      return { kind: 'post', outcome: 'not_sent', reason: outcome.error };
    case 'ambiguous':
      return { kind: 'post', outcome: 'ambiguous', reason: outcome.error };
  }
}

interface TrackedOrder {
  status: string;
  sizeMatched: string;
}

/** A submit whose fate is not known yet: being posted, or ambiguous and being settled. */
interface InFlight {
  orderId: string;
  body: PostOrderBody;
  kind: CallKind;
  /** Ambiguous (or "Duplicated"): the settle loop owns it; the next sighting is its settlement. */
  settling: boolean;
  /** Settled (by the stream, a refresh, a lookup or a re-post): the settle loop stops. */
  settled: boolean;
  /** Seen on the stream while still being posted: the settle loop looks it up at once. */
  seen: boolean;
  /** A "Duplicated" answer proved the venue has it. */
  exists: boolean;
}

type Listener<T> = (v: T) => void;

const DEFAULT_SETTLE: SettleOptions = { firstLookupMs: 300, maxDelayMs: 5_000, deadlineMs: 60_000, graceMs: 5_000, repost: true, maxReposts: 3 };
const MAX_ORDER_KEYS = 20_000;
const CANCEL_BATCH = 50;

// ---------------------------------------------------------------- the session

export class VenueSession {
  readonly gate: VenueGate;
  private readonly clock: Clock;
  private readonly log: VenueSessionLogger;
  private readonly address: string;
  private readonly funder: string;
  private readonly account: ClobAccountClient;
  private readonly trading: ClobTradingClient;
  private readonly heartbeat: HeartbeatLoop | undefined;
  private readonly credentialsFn: (signal: AbortSignal) => Promise<ApiCreds>;
  private readonly random: () => number;
  private readonly pollIntervalMs: number;
  private readonly callDeadlineMs: number;
  private readonly wsReadyTimeoutMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly resubmitWithinMs: number;
  private readonly tradeOverlapMs: number;
  private readonly settleOpts: SettleOptions;

  private creds: ApiCreds | undefined;
  private tradingEnabled: boolean;
  private phase: 'idle' | 'starting' | 'live' | 'stopped' = 'idle';
  private st: SessionState;
  private abort = new AbortController();
  private startOpts: StartOptions = {};
  private firstAttempt: ((s: SessionState) => void) | undefined;
  private restartReason: string | undefined;
  private wakeRun: (() => void) | undefined;
  private stopping: Promise<void> | undefined;

  // user channel of the current attempt
  private ws: UserWsClient | undefined;
  private gen = 0;
  private buffering = false;
  private buffer: UserWsEvent[] = [];
  private wsReadyWaiter: (() => void) | undefined;
  private wsReadyRefused: (() => void) | undefined;
  private lastWsClose: string | undefined;
  /** The channel dropped after it was first ready in this attempt: the snapshot may miss what fell in the gap. */
  private droppedWhileReconciling = false;
  private wsSeenReady = false;

  // health
  private streamDown: string | undefined;
  private reconnectSeq = 0;
  private resyncedSeq = 0;
  private refreshProblem: string | undefined;
  private heartbeatProblem: string | undefined;

  // what we know of the account
  private readonly openOrders = new Map<string, TrackedOrder>();
  private readonly inflight = new Map<string, InFlight>();
  private readonly tradeDedup = new TradeDeduper();
  private readonly orderKeys = new Map<string, Set<string>>();
  private readonly provisional = new Map<string, number>();
  private lastTradeMs: number | undefined;

  // refresh machinery
  private refreshing: Promise<void> | undefined;
  private refreshAgain: string | undefined;
  private readonly refreshWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private pollTimer: TimerHandle | undefined;

  private readonly tasks = new Set<Promise<unknown>>();
  private readonly listeners = {
    order: new Set<Listener<VenueOrderUpdate>>(),
    trade: new Set<Listener<VenueTradeUpdate>>(),
    state: new Set<Listener<SessionState>>(),
    reconciled: new Set<Listener<ReconciledSnapshot>>(),
  };

  constructor(private readonly opts: VenueSessionOptions) {
    this.clock = opts.clock ?? opts.gate?.clock ?? systemClock;
    this.log = opts.log ?? silent;
    this.address = opts.signer.address;
    this.funder = (opts.funder ?? opts.signer.address).toLowerCase();
    this.random = opts.random ?? Math.random;
    this.tradingEnabled = opts.tradingEnabled ?? false;
    this.pollIntervalMs = opts.pollIntervalMs ?? 30_000;
    this.callDeadlineMs = opts.callDeadlineMs ?? 30_000;
    this.wsReadyTimeoutMs = opts.wsReadyTimeoutMs ?? 15_000;
    this.retryBaseMs = opts.retryBaseMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 30_000;
    this.resubmitWithinMs = opts.resubmitWithinMs ?? 10_000;
    this.tradeOverlapMs = opts.tradeOverlapMs ?? 5_000;
    this.settleOpts = { ...DEFAULT_SETTLE, ...opts.settle };
    for (const [k, v] of Object.entries({ pollIntervalMs: this.pollIntervalMs, retryBaseMs: this.retryBaseMs, retryMaxMs: this.retryMaxMs })) {
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${k} must be a positive number of ms`);
    }
    const fetchImpl = opts.fetch ?? fetch;
    const requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.gate =
      opts.gate ??
      new VenueGate({
        limiter: new RateLimiter({ clock: this.clock, ...opts.limits }),
        random: this.random,
        onEvent: (e) => this.onGateEvent(e),
      });
    // One closure reads the current key, so a re-derived key takes effect everywhere at once.
    const authHeaders: AuthHeadersFn = (method, path, body) => {
      const c = this.creds;
      if (!c) throw new Error('no API credentials yet');
      return { ...buildL2Headers(c, this.address, { method, requestPath: path, body }) };
    };
    this.account = new ClobAccountClient({
      baseUrl: opts.urls.clob,
      authHeaders,
      timeoutMs: requestTimeoutMs,
      fetch: fetchImpl,
      now: () => this.clock.now(),
      ...(opts.pageSize === undefined ? {} : { pageSize: opts.pageSize }),
    });
    this.trading = new ClobTradingClient({ baseUrl: opts.urls.clob, timeoutMs: opts.orderTimeoutMs ?? 10_000, authHeaders, fetch: fetchImpl });
    this.credentialsFn =
      opts.credentials ??
      (() => createOrDeriveApiKey(opts.urls.clob, opts.signer, { timeoutMs: requestTimeoutMs, fetch: fetchImpl, ...(opts.chainId === undefined ? {} : { chainId: opts.chainId }) }));
    if (opts.heartbeat !== false) {
      this.heartbeat = new HeartbeatLoop({
        baseUrl: opts.urls.clob,
        authHeaders,
        fetch: fetchImpl,
        clock: this.clock,
        log: this.log,
        ...opts.heartbeat,
        onChange: (healthy, reason) => this.onHeartbeatChange(healthy, reason),
        onResync: (e) => this.onHeartbeatResync(e),
      });
    }
    this.st = { state: 'closed', reason: 'not started', since: this.clock.now() };
  }

  // ---------------------------------------------------------------- events

  onOrderUpdate(fn: Listener<VenueOrderUpdate>): () => void {
    return this.subscribe(this.listeners.order, fn);
  }

  onTradeUpdate(fn: Listener<VenueTradeUpdate>): () => void {
    return this.subscribe(this.listeners.trade, fn);
  }

  onState(fn: Listener<SessionState>): () => void {
    return this.subscribe(this.listeners.state, fn);
  }

  onReconciled(fn: Listener<ReconciledSnapshot>): () => void {
    return this.subscribe(this.listeners.reconciled, fn);
  }

  // ---------------------------------------------------------------- queries

  state(): SessionState {
    return { ...this.st };
  }

  /** The API key id the session authenticates with; a submit sets it as the body's `owner`. */
  get apiKey(): string | undefined {
    return this.creds?.apiKey;
  }

  /** Order hashes the session believes are resting at the venue. */
  get openOrderIds(): string[] {
    return [...this.openOrders.keys()];
  }

  /** Submits not yet answered, or ambiguous and being settled. */
  get inFlightOrderIds(): string[] {
    return [...this.inflight.keys()];
  }

  get heartbeatHealthy(): boolean {
    return this.heartbeat?.healthy ?? true;
  }

  /**
   * Whether a new order of this kind may be sent now, and if not why. Checked in this order: reconciled,
   * trading enabled, heartbeats accepted, stream up and resynchronised, the venue mode.
   */
  canTrade(kind: 'order' | 'post_only_order' = 'order'): CanTrade {
    if (this.phase !== 'live') return { ok: false, code: 'not_ready', reason: `not reconciled: ${this.st.reason ?? this.st.state}` };
    if (!this.tradingEnabled) return { ok: false, code: 'trading_disabled', reason: 'trading is disabled' };
    const hb = this.heartbeat;
    if (hb && !hb.healthy) {
      return { ok: false, code: 'heartbeat', reason: this.heartbeatProblem ?? (hb.isRunning ? 'waiting for the first accepted heartbeat' : 'heartbeats are not running') };
    }
    if (this.st.state !== 'ready') return { ok: false, code: 'degraded', reason: this.st.reason ?? 'degraded' };
    const p = this.gate.permits(kind);
    if (!p.allowed) return { ok: false, code: 'venue_mode', reason: p.reason };
    return { ok: true };
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Starts: API key, user channel, reconciliation; resolves with the state after the first attempt
   * (`ready`, or `closed` with the reason while it keeps retrying in the background).
   */
  start(opts: StartOptions = {}): Promise<SessionState> {
    if (this.phase !== 'idle') throw new Error(`VenueSession.start: already ${this.phase}`);
    this.phase = 'starting';
    this.startOpts = { ...opts, ...(opts.tokens ? { tokens: [...opts.tokens] } : {}), ...(opts.openOrderIds ? { openOrderIds: [...opts.openOrderIds] } : {}) };
    this.lastTradeMs = opts.tradesSinceMs;
    const first = new Promise<SessionState>((resolve) => (this.firstAttempt = resolve));
    this.track(this.runLoop());
    return first;
  }

  /** Resolves once the session is `ready` (rejects when it stops first or the signal fires). */
  whenReady(signal?: AbortSignal): Promise<void> {
    if (this.st.state === 'ready') return Promise.resolve();
    if (this.stopped()) return Promise.reject(new Error('venue session stopped'));
    return new Promise((resolve, reject) => {
      const off = this.onState((s) => {
        if (s.state === 'ready') done(resolve);
        else if (this.stopped()) done(() => reject(new Error('venue session stopped')));
      });
      const onAbort = () => done(() => reject(signal?.reason));
      const done = (f: () => void) => {
        off();
        signal?.removeEventListener('abort', onAbort);
        f();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Stops everything: retries, settling (orders still ambiguous stay unknown for the caller's next
   * run), the user channel, and heartbeats — which arms the venue's dead-man switch, so with
   * `cancelAll` the account's orders are cancelled first. A submit in flight finishes first.
   */
  stop(opts: { cancelAll?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      if (opts.cancelAll && this.creds) {
        const r = await this.cancelAll();
        if (r.error) this.log.warn({ error: r.error }, 'cancel-all before stop did not complete');
      }
      this.phase = 'stopped';
      this.abort.abort(new DOMException('venue session stopped', 'AbortError'));
      this.wakeRun?.();
      this.clearPoll();
      for (const w of this.refreshWaiters.splice(0)) w.reject(new Error('venue session stopped'));
      await this.teardown();
      await Promise.allSettled([...this.tasks]);
      this.setState('closed', 'stopped');
    })();
    return this.stopping;
  }

  /** Trading on: heartbeats start (new orders wait for the first accepted beat). Off: no new orders; heartbeats stop once nothing is open. */
  setTradingEnabled(on: boolean): void {
    this.tradingEnabled = on;
    this.syncHeartbeat();
  }

  /** Refreshes open orders and trades over REST now and emits the differences. */
  refresh(): Promise<void> {
    if (this.phase !== 'live') return Promise.reject(new Error(`cannot refresh: ${this.st.reason ?? this.st.state}`));
    return new Promise((resolve, reject) => {
      this.refreshWaiters.push({ resolve, reject });
      this.requestRefresh('request');
    });
  }

  /** `GET /version` through the gate (after an `order_version_mismatch`, or while on another version). */
  version(): Promise<number> {
    return this.read('GET /version', (s) => this.account.getVersion({ signal: s }));
  }

  /** Collateral and the given tokens' balances (exact base-unit strings). */
  async balances(tokens: readonly string[] = []): Promise<Balances> {
    const sig = this.opts.signatureType === undefined ? {} : { signatureType: this.opts.signatureType };
    const collateral = await this.read('GET /balance-allowance', (s) => this.account.getBalanceAllowance({ assetType: 'COLLATERAL', ...sig }, { signal: s }));
    const out: Balances = { collateral, tokens: {} };
    for (const tokenId of new Set(tokens)) {
      out.tokens[tokenId] = await this.read('GET /balance-allowance', (s) => this.account.getBalanceAllowance({ assetType: 'CONDITIONAL', tokenId, ...sig }, { signal: s }));
    }
    return out;
  }

  // ---------------------------------------------------------------- orders

  /**
   * Posts a signed order (already persisted by the caller) through the gate and returns its one
   * outcome. `body.owner` is replaced by the session's API key. A 429 is re-posted (same body)
   * after its Retry-After within `resubmitWithinMs`; an ambiguous outcome is settled in the
   * background and reported as an order update with `settlement`.
   */
  async submit(body: PostOrderBody, meta: SubmitMeta): Promise<SubmitResult> {
    const orderId = this.orderIdOf(body, meta);
    const side = body.order.side;
    const kind: 'order' | 'post_only_order' = body.postOnly ? 'post_only_order' : 'order';
    const done = (outcome: PostOrderOutcome): SubmitResult => ({ orderId, outcome, input: postInput(outcome, side) });
    if (this.inflight.has(orderId)) throw new Error(`order ${orderId} is already being submitted or settled`);
    const can = this.canTrade(kind);
    if (!can.ok) return done({ kind: 'not_sent', error: can.reason, code: can.code });
    const creds = this.creds;
    if (!creds) return done({ kind: 'not_sent', error: 'no API credentials', code: 'not_ready' });
    const sent: PostOrderBody = { ...body, owner: creds.apiKey };
    const entry: InFlight = { orderId, body: sent, kind, settling: false, settled: false, seen: false, exists: false };
    this.inflight.set(orderId, entry);
    this.syncHeartbeat();
    let keep = false;
    const mark = this.ws?.eventCount;
    try {
      let outcome = await this.postOnce(sent, kind);
      const until = this.clock.now() + this.resubmitWithinMs;
      // A 429 means Cloudflare turned it away unprocessed: the identical body may go again once the gate's pause ends.
      while (outcome.kind === 'rejected' && outcome.status === 429 && this.clock.now() < until && this.phase === 'live') {
        const next = await this.postOnce(sent, kind, until - this.clock.now());
        // The gate gave up waiting (or refused): nothing was sent, so the 429 stays the answer.
        if (next.kind === 'not_sent') break;
        outcome = next;
      }
      this.log.info({ order: orderId, outcome: outcome.kind, ...(outcome.kind === 'accepted' ? { status: outcome.response.status } : {}) }, 'order submitted');
      switch (outcome.kind) {
        case 'accepted': {
          const o = body.orderType;
          if ((o === 'GTC' || o === 'GTD') && outcome.response.status !== 'unmatched') {
            this.openOrders.set(orderId, { status: 'LIVE', sizeMatched: '0' });
          }
          this.ws?.expectEvent(mark);
          break;
        }
        case 'rejected':
          if (isDuplicate(outcome.errorMsg)) {
            entry.exists = true;
            keep = true;
          }
          break;
        case 'ambiguous':
          keep = true;
          break;
        case 'not_sent':
          break;
      }
      if (keep) {
        entry.settling = true;
        this.track(this.settleLoop(entry));
      }
      return done(outcome);
    } finally {
      if (!keep && this.inflight.get(orderId) === entry) this.inflight.delete(orderId);
      this.syncHeartbeat();
    }
  }

  /**
   * Settles an order the caller holds as unknown (e.g. persisted by an earlier run that stopped
   * before the answer): the same lookup / identical re-post as for an ambiguous submit.
   */
  settle(body: PostOrderBody, meta: SubmitMeta): string {
    const orderId = this.orderIdOf(body, meta);
    if (this.inflight.has(orderId)) return orderId;
    const entry: InFlight = {
      orderId,
      body: this.creds ? { ...body, owner: this.creds.apiKey } : body,
      kind: body.postOnly ? 'post_only_order' : 'order',
      settling: true,
      settled: false,
      seen: false,
      exists: false,
    };
    this.inflight.set(orderId, entry);
    this.syncHeartbeat();
    this.track(this.settleLoop(entry));
    return orderId;
  }

  /** Cancels orders by hash through the gate (idempotent retries); always allowed, in any mode the venue takes cancels. */
  async cancel(ids: readonly string[]): Promise<CancelResult> {
    const unique = [...new Set(ids.filter((id) => id !== ''))];
    const res: CancelResult = { canceled: [], notCanceled: {}, unconfirmed: [], acks: [] };
    const mark = this.ws?.eventCount;
    for (let i = 0; i < unique.length; i += CANCEL_BATCH) {
      const batch = unique.slice(i, i + CANCEL_BATCH);
      try {
        const r =
          batch.length === 1
            ? await this.call('DELETE /order', 'cancel', (s) => this.account.cancelOrder(batch[0]!, { signal: s }))
            : await this.call('DELETE /orders', 'cancel', (s) => this.account.cancelOrders(batch, { signal: s }), { cost: batch.length });
        this.mergeCancel(res, r, batch);
      } catch (err) {
        res.unconfirmed.push(...batch);
        res.error = describeErr(err);
      }
    }
    this.afterCancel(res, mark);
    return res;
  }

  /** `DELETE /cancel-all` through the gate: every open order of the account. */
  async cancelAll(): Promise<CancelResult> {
    const res: CancelResult = { canceled: [], notCanceled: {}, unconfirmed: [], acks: [] };
    const mark = this.ws?.eventCount;
    try {
      const r = await this.call('DELETE /cancel-all', 'cancel', (s) => this.account.cancelAll({ signal: s }));
      // The venue charges one cancel token per order it cancelled, known only now.
      if (r.canceled.length > 0) this.gate.limiter.charge(this.address, 'cancel', r.canceled.length);
      this.mergeCancel(res, r, []);
    } catch (err) {
      res.unconfirmed.push(...this.openOrders.keys());
      res.error = describeErr(err);
    }
    this.afterCancel(res, mark);
    return res;
  }

  // ---------------------------------------------------------------- start / restart

  private async runLoop(): Promise<void> {
    let failures = 0;
    let cause: 'start' | 'restart' = 'start';
    while (!this.stopped()) {
      const gen = ++this.gen;
      const r = await this.attempt(gen, cause);
      if (this.stopped()) break;
      if (r.ok) {
        failures = 0;
        this.resolveFirst();
        const why = await new Promise<string | undefined>((resolve) => {
          if (this.restartReason !== undefined || this.phase !== 'live') return resolve(this.restartReason);
          this.wakeRun = () => resolve(this.restartReason);
        });
        this.wakeRun = undefined;
        this.restartReason = undefined;
        if (this.stopped()) break;
        this.log.warn({ why }, 'venue session restarting');
        this.phase = 'starting';
        for (const w of this.refreshWaiters.splice(0)) w.reject(new Error(`venue session restarting: ${why ?? 'requested'}`));
        await this.teardown();
        cause = 'restart';
        this.setState('closed', `restarting: ${why ?? 'requested'}`);
        continue;
      }
      failures++;
      const delay = this.backoff(failures);
      this.setState('closed', `${r.reason}; retrying in ${(delay / 1000).toFixed(1)} s`);
      this.log.warn({ reason: r.reason, attempt: failures, retry_in_ms: delay }, 'venue session not ready');
      this.resolveFirst();
      try {
        await sleep(this.clock, delay, this.abort.signal);
      } catch {
        break;
      }
    }
    this.resolveFirst();
  }

  /** A method, not a field read: TypeScript would otherwise keep a narrowing across awaits. */
  private stopped(): boolean {
    return this.phase === 'stopped';
  }

  private resolveFirst(): void {
    const f = this.firstAttempt;
    this.firstAttempt = undefined;
    f?.(this.state());
  }

  private async attempt(gen: number, cause: 'start' | 'restart'): Promise<{ ok: true } | { ok: false; reason: string }> {
    const signal = this.abort.signal;
    const fail = async (step: string, err: unknown) => {
      await this.teardownWs();
      return { ok: false as const, reason: `${step} failed: ${describeErr(err)}` };
    };
    if (!this.creds) {
      this.setState('reconciling', 'creating or deriving the API key');
      try {
        this.creds = await this.withAbort(this.credentialsFn(signal), signal);
      } catch (err) {
        return fail('creating or deriving the API key', err);
      }
    }
    if (gen !== this.gen || this.stopped()) return { ok: false, reason: 'stopped' };

    this.setState('reconciling', 'opening the user channel');
    this.buffering = true;
    this.buffer = [];
    this.lastWsClose = undefined;
    this.droppedWhileReconciling = false;
    this.wsSeenReady = false;
    const ws = new UserWsClient({
      url: this.opts.urls.ws,
      creds: this.creds,
      ...(this.opts.markets ? { markets: this.opts.markets } : {}),
      log: this.log,
      ...this.opts.userWs,
      onEvent: (e) => this.onWsEvent(gen, e),
      onStatus: (s) => this.onWsStatus(gen, s),
    });
    this.ws = ws;
    ws.start();
    try {
      await this.waitWsReady(ws, signal);
    } catch (err) {
      // Refused at the handshake: the key may be gone at the venue; derive it again next time.
      if (ws.stats.authRejects > 0) this.creds = undefined;
      return fail('opening the user channel', err);
    }

    // The stream is up and buffering, so whatever happens from here on is either in the
    // snapshot or in the buffer: no gap.
    this.setState('reconciling', 'reading open orders, trades, balances and the version');
    let snapshot: ReconciledSnapshot;
    try {
      snapshot = await this.readSnapshot(cause);
    } catch (err) {
      if (isUnauthorized(err)) this.creds = undefined;
      return fail('reconciliation', err);
    }
    if (gen !== this.gen || this.stopped()) return { ok: false, reason: 'stopped' };

    this.phase = 'live';
    this.streamDown = ws.ready ? undefined : `user channel down (${this.lastWsClose ?? 'reconnecting'})`;
    this.refreshProblem = undefined;
    this.resyncedSeq = this.reconnectSeq;
    this.emit(this.listeners.reconciled, snapshot);
    this.buffering = false;
    for (const e of this.buffer.splice(0)) this.handleStreamEvent(e);
    if (this.droppedWhileReconciling) {
      // Events between the drop and the reconnect are in neither the snapshot nor the buffer.
      this.reconnectSeq++;
      this.requestRefresh('user channel dropped during reconciliation');
    }
    this.updateState();
    this.syncHeartbeat();
    this.armPoll();
    this.log.info({ open_orders: snapshot.orders.length, trades: snapshot.trades.length, version: snapshot.version, cause }, 'venue session reconciled');
    return { ok: true };
  }

  private async readSnapshot(cause: 'start' | 'restart'): Promise<ReconciledSnapshot> {
    const version = await this.version();
    const open = await this.read('GET /data/orders', (s) => this.account.getOpenOrders({}, { signal: s }));
    if (open.invalid > 0) throw new Error(`open orders incomplete: ${open.invalid} failed validation (${open.invalidReasons.join('; ')})`);
    const since = this.lastTradeMs;
    const listed = await this.read('GET /data/trades', (s) => this.account.getTrades(since === undefined ? {} : { after: since }, { signal: s }));
    if (listed.invalid > 0) throw new Error(`trades incomplete: ${listed.invalid} failed validation (${listed.invalidReasons.join('; ')})`);
    const events: UserTradeEvent[] = [];
    for (const t of listed.items) {
      const e = tradeOfRest(t);
      if (!e) throw new Error(`trade ${t.id} could not be normalized`);
      events.push(e);
    }
    const listedIds = new Set(open.items.map((o) => o.id));
    const expected = new Set([...(cause === 'start' ? (this.startOpts.openOrderIds ?? []) : []), ...this.openOrders.keys()]);
    const gone: Array<{ id: string; found: OpenOrder | null }> = [];
    for (const id of expected) {
      if (!listedIds.has(id)) gone.push({ id, found: await this.read(`GET /data/order/${id}`, (s) => this.account.getOrder(id, { signal: s })) });
    }
    const tokens = new Set(this.startOpts.tokens ?? []);
    for (const o of open.items) tokens.add(o.asset_id);
    const balances = await this.balances([...tokens]);
    const at = this.clock.now();

    // Everything the stream replays from here on is deduplicated against the snapshot.
    this.openOrders.clear();
    const orders: VenueOrderUpdate[] = open.items.map((o) => {
      const view = orderViewOfRest(o);
      this.openOrders.set(o.id, { status: o.status, sizeMatched: o.size_matched });
      return { orderId: o.id, source: 'refresh', input: lookupFound(view), order: view, at };
    });
    for (const { id, found } of gone) {
      if (found) {
        const view = orderViewOfRest(found);
        if (classifyVenueStatus(found.status) === 'working') this.openOrders.set(id, { status: found.status, sizeMatched: found.size_matched });
        orders.push({ orderId: id, source: 'refresh', input: lookupFound(view), order: view, at });
      } else {
        orders.push({ orderId: id, source: 'refresh', input: { kind: 'lookup', found: false, final: false }, reason: 'not listed and not found at the venue', at });
      }
    }
    const trades: VenueTradeUpdate[] = [];
    for (const e of events) {
      this.tradeDedup.accept(e);
      this.noteTrade(e);
      trades.push(this.tradeUpdate(e, 'reconcile'));
    }
    if (this.lastTradeMs === undefined) this.lastTradeMs = at;
    return { at, cause, version, orders, trades, tradesSinceMs: since, balances };
  }

  private waitWsReady(ws: UserWsClient, signal: AbortSignal): Promise<void> {
    if (ws.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        finish();
        const hint = ws.stats.authRejects > 0 ? 'the venue refused the credentials' : (this.lastWsClose ?? 'no answer');
        reject(new Error(`not ready within ${this.wsReadyTimeoutMs} ms (${hint})`));
      }, this.wsReadyTimeoutMs);
      const onAbort = () => {
        finish();
        reject(signal.reason);
      };
      const finish = () => {
        this.clock.clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.wsReadyWaiter = undefined;
        this.wsReadyRefused = undefined;
      };
      this.wsReadyWaiter = () => {
        finish();
        resolve();
      };
      this.wsReadyRefused = () => {
        finish();
        reject(new Error('the venue refused the credentials'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private requestRestart(why: string, dropCredentials = false): void {
    if (this.phase !== 'live' || this.restartReason !== undefined) return;
    // A refused key is derived again, not retried: the next attempt would only be refused once more.
    if (dropCredentials) this.creds = undefined;
    this.restartReason = why;
    this.wakeRun?.();
  }

  private async teardown(): Promise<void> {
    this.clearPoll();
    await this.teardownWs();
    await this.heartbeat?.stop();
  }

  private async teardownWs(): Promise<void> {
    const ws = this.ws;
    this.ws = undefined;
    this.buffering = false;
    this.buffer = [];
    await ws?.close();
  }

  // ---------------------------------------------------------------- stream

  private onWsStatus(gen: number, s: UserWsStatus): void {
    if (gen !== this.gen) return;
    switch (s.state) {
      case 'ready':
        if (this.phase === 'starting') this.wsSeenReady = true;
        this.wsReadyWaiter?.();
        // Live means this socket was ready before: it is a reconnect, and `reconnected` follows in
        // the same tick. Counting it here keeps the state from flickering to ready in between.
        if (this.phase === 'live') {
          this.reconnectSeq++;
          this.streamDown = undefined;
          this.updateState();
        }
        break;
      case 'closed':
        this.lastWsClose = s.reason;
        // Refused at the handshake while starting: no use waiting out the ready timeout.
        if (this.phase === 'starting' && (this.ws?.stats.authRejects ?? 0) > 0) this.wsReadyRefused?.();
        if (this.phase === 'starting' && this.wsSeenReady) this.droppedWhileReconciling = true;
        if (this.phase === 'live') {
          this.streamDown = `user channel down (${s.reason ?? 'closed'})`;
          this.updateState();
        }
        break;
      case 'reconnected':
        // The channel does not replay the gap: refill it over REST before trusting the stream again.
        this.requestRefresh('reconnect');
        break;
      default:
        break;
    }
  }

  private onWsEvent(gen: number, e: UserWsEvent): void {
    if (gen !== this.gen) return;
    if (this.buffering) {
      this.buffer.push(e);
      return;
    }
    this.handleStreamEvent(e);
  }

  private handleStreamEvent(e: UserWsEvent): void {
    if (e.event_type === 'order') {
      if (!this.firstOrderKey(e.id, `${e.type}|${e.raw_status}|${e.size_matched}`)) return;
      const view = orderViewOfWs(e);
      this.trackOrder(e.id, e.type === 'CANCELLATION' ? 'CANCELED' : e.status, e.size_matched);
      const settled = this.markSettled(e.id);
      this.emitOrder({
        orderId: e.id,
        source: 'stream',
        input: { kind: 'venue', type: e.type, status: e.status, sizeMatched: micros(e.size_matched), ...(e.status_reason ? { reason: e.status_reason } : {}) },
        order: view,
        ...(settled ? { settlement: 'exists' as const } : {}),
        at: this.clock.now(),
      });
      return;
    }
    if (!this.tradeDedup.accept(e)) return;
    this.noteTrade(e);
    // A fill proves the order exists too, but its settlement comes with the order's own update.
    this.emit(this.listeners.trade, this.tradeUpdate(e, 'stream'));
  }

  /** True the first time this exact (type, status, size matched) is seen for the order. */
  private firstOrderKey(id: string, key: string): boolean {
    let keys = this.orderKeys.get(id);
    if (keys?.has(key)) return false;
    keys ??= new Set();
    keys.add(key);
    this.orderKeys.delete(id);
    this.orderKeys.set(id, keys);
    if (this.orderKeys.size > MAX_ORDER_KEYS) {
      const oldest = this.orderKeys.keys().next().value;
      if (oldest !== undefined) this.orderKeys.delete(oldest);
    }
    return true;
  }

  private trackOrder(id: string, status: string, sizeMatched: string): void {
    if (classifyVenueStatus(status) === 'working') this.openOrders.set(id, { status, sizeMatched });
    else this.openOrders.delete(id);
    this.syncHeartbeat();
  }

  /**
   * The venue showed the order. True when that settles an ambiguity (the update then carries
   * `settlement`); a sighting while the post is still out only makes the settle loop look at once,
   * so every ambiguous outcome is followed by exactly one settlement update.
   */
  private markSettled(orderId: string): boolean {
    const entry = this.inflight.get(orderId);
    if (!entry || entry.settled) return false;
    if (!entry.settling) {
      entry.seen = true;
      return false;
    }
    entry.settled = true;
    return true;
  }

  private noteTrade(e: UserTradeEvent): void {
    const t = e.match_time_ms ?? e.timestamp_ms;
    if (this.lastTradeMs === undefined || t > this.lastTradeMs) this.lastTradeMs = t;
    if (e.terminal) this.provisional.delete(e.id);
    else this.provisional.set(e.id, t);
  }

  private tradeUpdate(e: UserTradeEvent, source: VenueTradeUpdate['source']): VenueTradeUpdate {
    return {
      tradeId: e.id,
      status: parseTradeStatus(e.raw_status),
      rawStatus: e.raw_status,
      terminal: e.terminal,
      source,
      trade: e,
      fills: this.ownFills(e),
      at: this.clock.now(),
    };
  }

  /** Our side(s) of a trade: the taker order when we took, and every maker order that is ours. */
  private ownFills(e: UserTradeEvent): OwnFill[] {
    const out: OwnFill[] = [];
    if (e.trader_side === 'TAKER') out.push({ orderId: e.taker_order_id, role: 'TAKER', side: e.side, assetId: e.asset_id, size: micros(e.size), price: e.price });
    const key = this.creds?.apiKey;
    for (const m of e.maker_orders) {
      if (m.maker_address.toLowerCase() !== this.funder && (!key || m.owner !== key)) continue;
      // Older events lack the maker's side: same token → the other side; complement token (mint/merge) → the same side.
      const side = m.side ?? (m.asset_id === e.asset_id ? (e.side === 'BUY' ? 'SELL' : 'BUY') : e.side);
      out.push({ orderId: m.order_id, role: 'MAKER', side, assetId: m.asset_id, size: micros(m.matched_amount), price: m.price });
    }
    return out;
  }

  // ---------------------------------------------------------------- refresh

  private requestRefresh(cause: string): void {
    if (this.phase !== 'live') return;
    if (this.refreshing) {
      this.refreshAgain = cause;
      return;
    }
    this.clearPoll();
    const run = this.refreshLoop(cause).finally(() => {
      this.refreshing = undefined;
      if (this.phase === 'live') this.armPoll();
    });
    this.refreshing = run;
    this.track(run);
  }

  private async refreshLoop(first: string): Promise<void> {
    const gen = this.gen;
    let cause: string | undefined = first;
    let failures = 0;
    while (cause !== undefined && this.phase === 'live' && gen === this.gen) {
      const seq = this.reconnectSeq;
      const waiters = this.refreshWaiters.splice(0);
      try {
        await this.refreshOnce(cause);
        if (gen !== this.gen) return;
        failures = 0;
        this.refreshProblem = undefined;
        if (seq > this.resyncedSeq) this.resyncedSeq = seq;
        this.updateState();
        for (const w of waiters) w.resolve();
        cause = this.refreshAgain;
        this.refreshAgain = undefined;
      } catch (err) {
        for (const w of waiters) w.reject(err);
        if (this.phase !== 'live' || gen !== this.gen) return;
        if (isUnauthorized(err)) {
          this.requestRestart('the venue refused the API key', true);
          return;
        }
        failures++;
        this.refreshProblem = `refresh (${cause}) failed: ${describeErr(err)}`;
        this.updateState();
        this.log.warn({ cause, error: this.refreshProblem, attempt: failures }, 'venue refresh failed');
        try {
          await sleep(this.clock, this.backoff(failures), this.abort.signal);
        } catch {
          return;
        }
        cause = this.refreshAgain ?? cause;
        this.refreshAgain = undefined;
      }
    }
  }

  /** Open orders and trades since the last seen, over REST; differences go out as `refresh` updates. */
  private async refreshOnce(cause: string): Promise<void> {
    const expected = new Map(this.openOrders);
    const open = await this.read('GET /data/orders', (s) => this.account.getOpenOrders({}, { signal: s }));
    const after = this.tradeWindowStart();
    const listed = await this.read('GET /data/trades', (s) => this.account.getTrades(after === undefined ? {} : { after }, { signal: s }));
    const at = this.clock.now();
    const listedIds = new Set<string>();
    for (const o of open.items) {
      listedIds.add(o.id);
      const known = this.openOrders.get(o.id);
      const settled = this.markSettled(o.id);
      if (!settled && known && known.status === o.status && known.sizeMatched === o.size_matched) continue;
      const view = orderViewOfRest(o);
      this.openOrders.set(o.id, { status: o.status, sizeMatched: o.size_matched });
      this.emitOrder({ orderId: o.id, source: 'refresh', input: lookupFound(view), order: view, ...(settled ? { settlement: 'exists' as const } : {}), reason: cause, at });
    }
    // A listing with unreadable items cannot prove an order is gone.
    if (open.invalid === 0) {
      for (const id of expected.keys()) {
        if (listedIds.has(id) || !this.openOrders.has(id)) continue;
        // Only LIVE orders are listed: one targeted lookup says whether it filled or was cancelled.
        const found = await this.read(`GET /data/order/${id}`, (s) => this.account.getOrder(id, { signal: s }));
        if (!this.openOrders.has(id)) continue;
        if (found) {
          const view = orderViewOfRest(found);
          this.trackOrder(id, found.status, found.size_matched);
          this.emitOrder({ orderId: id, source: 'refresh', input: lookupFound(view), order: view, reason: cause, at: this.clock.now() });
        } else {
          this.openOrders.delete(id);
          this.log.warn({ order: id }, 'an order believed open is unknown to the venue');
          this.emitOrder({ orderId: id, source: 'refresh', input: { kind: 'lookup', found: false, final: false }, reason: 'not listed and not found at the venue', at: this.clock.now() });
        }
      }
    }
    let fresh = 0;
    for (const t of listed.items) {
      const e = tradeOfRest(t);
      if (!e) {
        this.log.warn({ trade: t.id }, 'a listed trade could not be normalized');
        continue;
      }
      if (!this.tradeDedup.accept(e)) continue;
      fresh++;
      this.noteTrade(e);
      this.emit(this.listeners.trade, this.tradeUpdate(e, 'refresh'));
    }
    this.syncHeartbeat();
    this.log.debug({ cause, open: open.items.length, trades: listed.items.length, fresh }, 'venue refresh done');
  }

  /** From a little before the last trade seen, and no later than the oldest one still settling. */
  private tradeWindowStart(): number | undefined {
    let from = this.lastTradeMs;
    for (const t of this.provisional.values()) if (from === undefined || t < from) from = t;
    return from === undefined ? undefined : Math.max(1e11, from - this.tradeOverlapMs);
  }

  private armPoll(): void {
    this.clearPoll();
    // A running refresh re-arms the poll when it ends.
    if (this.phase !== 'live' || this.refreshing) return;
    this.pollTimer = this.clock.setTimeout(() => {
      this.pollTimer = undefined;
      this.requestRefresh('poll');
    }, this.pollIntervalMs);
  }

  private clearPoll(): void {
    if (this.pollTimer !== undefined) this.clock.clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  // ---------------------------------------------------------------- settling ambiguity

  private async settleLoop(entry: InFlight): Promise<void> {
    const o = this.settleOpts;
    const id = entry.orderId;
    const started = this.clock.now();
    let delay = entry.seen ? 0 : o.firstLookupMs;
    let reposts = 0;
    let lastRepostAt = Number.NEGATIVE_INFINITY;
    let refusedRepost: string | undefined;
    let warned = false;
    const signal = this.abort.signal;
    this.log.info({ order: id }, 'settling an ambiguous order: lookup, then identical re-post');
    try {
      for (;;) {
        await sleep(this.clock, delay, signal);
        if (entry.settled) return;
        delay = Math.min(o.maxDelayMs, Math.max(o.firstLookupMs, delay * 2));
        let found: OpenOrder | null | undefined;
        try {
          found = await this.read(`GET /data/order/${id}`, (s) => this.account.getOrder(id, { signal: s }));
        } catch (err) {
          if (signal.aborted) return;
          if (isUnauthorized(err)) this.requestRestart('the venue refused the API key', true);
          this.log.debug({ order: id, error: describeErr(err) }, 'order lookup failed; trying again');
          found = undefined;
        }
        if (entry.settled) return;
        if (found) {
          const view = orderViewOfRest(found);
          this.trackOrder(id, found.status, found.size_matched);
          entry.settled = true;
          this.emitOrder({ orderId: id, source: 'settle', input: lookupFound(view), order: view, settlement: 'exists', at: this.clock.now() });
          return;
        }
        if (found === undefined) continue;
        const now = this.clock.now();
        if (entry.exists) {
          if (!warned && now - started > o.deadlineMs) {
            warned = true;
            this.log.warn({ order: id }, 'the venue said the order exists but does not find it; still looking');
          }
          continue;
        }
        // The identical body refused (not as a duplicate) while the order is not found: the venue
        // stores no refused order, so once the grace for a first post still in transit has passed,
        // a miss is final — no need to wait out the whole deadline.
        if ((now - started >= o.deadlineMs || refusedRepost !== undefined) && now - lastRepostAt >= o.graceMs) {
          entry.settled = true;
          const reason = `not found at the venue ${Math.round((now - started) / 1000)} s after an ambiguous submit${refusedRepost ? ` (a re-post was refused: ${refusedRepost})` : ''}`;
          this.log.warn({ order: id, reposts }, 'ambiguous order not found at the venue');
          this.emitOrder({ orderId: id, source: 'settle', input: { kind: 'lookup', found: false, final: true }, settlement: 'not_found', reason, at: now });
          return;
        }
        // Re-post only what may still land before the deadline's final lookup, and only while new orders are allowed.
        const mayRepost = o.repost && refusedRepost === undefined && reposts < o.maxReposts && now - started + o.graceMs < o.deadlineMs && this.canTrade(entry.kind === 'post_only_order' ? 'post_only_order' : 'order').ok;
        if (!mayRepost) continue;
        reposts++;
        const mark = this.ws?.eventCount;
        // The owner is not signed: the current key goes, whatever key the body was persisted with.
        const out = await this.postOnce(this.creds ? { ...entry.body, owner: this.creds.apiKey } : entry.body, entry.kind);
        if (out.kind !== 'not_sent') lastRepostAt = this.clock.now();
        this.log.info({ order: id, repost: reposts, outcome: out.kind }, 're-posted the identical signed order');
        if (entry.settled) return;
        if (out.kind === 'accepted') {
          entry.settled = true;
          const t = entry.body.orderType;
          if ((t === 'GTC' || t === 'GTD') && out.response.status !== 'unmatched') this.openOrders.set(id, { status: 'LIVE', sizeMatched: '0' });
          this.ws?.expectEvent(mark);
          this.emitOrder({ orderId: id, source: 'settle', input: postInput(out, entry.body.order.side), settlement: 'exists', at: this.clock.now() });
          return;
        }
        if (out.kind === 'rejected') {
          if (isDuplicate(out.errorMsg)) {
            // It is there; the lookup will show it once the venue's index has it.
            entry.exists = true;
            delay = o.firstLookupMs;
          } else if (!out.retryable) {
            // A refusal of the re-post proves nothing about a first post still in transit: the
            // grace period after it decides.
            refusedRepost = out.errorMsg;
            this.log.info({ order: id, reason: clip(out.errorMsg, 200) }, 'the re-post was refused; a lookup after the grace period decides');
          }
        }
      }
    } catch (err) {
      if (!signal.aborted) this.log.error({ order: id, error: describeErr(err) }, 'settling an ambiguous order failed');
      else this.log.info({ order: id }, 'settling stopped with the session; the order stays unknown');
    } finally {
      if (this.inflight.get(id) === entry) this.inflight.delete(id);
      this.syncHeartbeat();
    }
  }

  private async postOnce(body: PostOrderBody, kind: CallKind, maxWaitMs?: number): Promise<PostOrderOutcome> {
    try {
      // Never retried by the gate: repeating is decided here, with the identical body only.
      return await this.gate.run('POST /order', this.address, kind, () => this.trading.postOrder(body), {
        idempotent: false,
        signal: this.abort.signal,
        ...(maxWaitMs === undefined ? {} : { maxWaitMs: Math.max(1, Math.ceil(maxWaitMs)) }),
      });
    } catch (err) {
      if (err instanceof GateError) return { kind: 'not_sent', error: err.reason, code: `gate_${err.code}` };
      // Not a gate refusal: something failed around the request, which may have left.
      return { kind: 'ambiguous', error: describeErr(err), code: 'internal' };
    }
  }

  private orderIdOf(body: PostOrderBody, meta: SubmitMeta): string {
    const hash = orderHash(body.order, meta.negRisk, this.opts.chainId === undefined ? {} : { chainId: this.opts.chainId });
    if (meta.orderId !== undefined && meta.orderId.toLowerCase() !== hash.toLowerCase()) {
      throw new Error(`order id ${meta.orderId} does not match the signed order's hash ${hash} (negRisk ${meta.negRisk})`);
    }
    return hash;
  }

  // ---------------------------------------------------------------- cancels

  private mergeCancel(res: CancelResult, r: CancelResponse, asked: readonly string[]): void {
    for (const id of r.canceled) {
      res.canceled.push(id);
      res.acks.push({ orderId: id, input: { kind: 'cancel_ack', canceled: true } });
    }
    for (const [id, why] of Object.entries(r.not_canceled)) {
      res.notCanceled[id] = why;
      res.acks.push({ orderId: id, input: { kind: 'cancel_ack', canceled: false, reason: why } });
    }
    const answered = new Set([...r.canceled, ...Object.keys(r.not_canceled)]);
    for (const id of asked) if (!answered.has(id)) res.unconfirmed.push(id);
  }

  private afterCancel(res: CancelResult, mark: number | undefined): void {
    for (const id of res.canceled) this.openOrders.delete(id);
    if (res.canceled.length > 0) this.ws?.expectEvent(mark);
    this.syncHeartbeat();
    this.log.info({ canceled: res.canceled.length, not_canceled: Object.keys(res.notCanceled).length, unconfirmed: res.unconfirmed.length, error: res.error }, 'cancel answered');
  }

  // ---------------------------------------------------------------- heartbeat

  private syncHeartbeat(): void {
    const hb = this.heartbeat;
    if (!hb) return;
    const want = this.phase === 'live' && (this.tradingEnabled || this.openOrders.size > 0 || this.inflight.size > 0);
    if (want && !hb.isRunning) {
      this.heartbeatProblem = undefined;
      hb.start();
      this.log.info({ open_orders: this.openOrders.size, trading: this.tradingEnabled }, 'heartbeats started');
    } else if (!want && hb.isRunning) {
      this.heartbeatProblem = undefined;
      void hb.stop();
      this.log.info({}, 'heartbeats stopped: nothing open and trading disabled');
    }
    this.updateState();
  }

  private onHeartbeatChange(healthy: boolean, reason: string): void {
    if (healthy) this.heartbeatProblem = undefined;
    else if (this.heartbeat?.isRunning) this.heartbeatProblem = reason;
    this.updateState();
  }

  private onHeartbeatResync(e: HeartbeatResync): void {
    // The venue forgot our chain: its switch fired and cancelled our orders; read what is left.
    if (e.chainLost) this.requestRefresh('heartbeat chain lost');
  }

  // ---------------------------------------------------------------- state

  private updateState(): void {
    if (this.phase !== 'live') return;
    const problems = [
      this.streamDown,
      this.resyncedSeq < this.reconnectSeq ? 'resynchronising after a user-channel reconnect' : undefined,
      this.refreshProblem,
      this.heartbeat?.isRunning ? this.heartbeatProblem : undefined,
    ].filter((p): p is string => p !== undefined);
    if (problems.length === 0) this.setState('ready');
    else this.setState('degraded', problems.join('; '));
  }

  private setState(state: SessionStateName, reason?: string): void {
    if (this.st.state === state && this.st.reason === reason) return;
    if (this.stopped() && !(state === 'closed' && reason === 'stopped')) return;
    this.st = { state, ...(reason === undefined ? {} : { reason: clip(reason, 500) }), since: this.clock.now() };
    this.log.info({ state, reason }, 'venue session state');
    this.emit(this.listeners.state, this.state());
  }

  // ---------------------------------------------------------------- plumbing

  /** A read or cancel through the gate: paced, retried while safe, waited out while a window is closed. */
  private read<T>(endpoint: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.call(endpoint, 'read', fn);
  }

  private async call<T>(endpoint: string, kind: CallKind, fn: (signal: AbortSignal) => Promise<T>, o: { cost?: number } = {}): Promise<T> {
    const signal = this.abort.signal;
    const deadline = this.clock.now() + this.callDeadlineMs;
    for (;;) {
      try {
        const w = await this.gate.run<Wrapped<T>>(
          endpoint,
          this.address,
          kind,
          async () => {
            try {
              return { ok: true, value: await fn(signal) };
            } catch (error) {
              return { ok: false, error };
            }
          },
          {
            idempotent: true,
            signal,
            deadlineMs: Math.max(0, deadline - this.clock.now()),
            maxWaitMs: Math.max(1, deadline - this.clock.now()),
            classify: (v) => classifyWrapped(v),
            ...(o.cost === undefined ? {} : { cost: o.cost }),
          },
        );
        if (w.ok) return w.value;
        throw w.error;
      } catch (err) {
        // A closed window (425 back-off, open breaker) on the first attempt: wait it out if the deadline allows.
        if (err instanceof GateError && !signal.aborted && err.code !== 'aborted' && err.retryAt !== undefined && err.retryAt <= deadline) {
          await sleep(this.clock, Math.max(1, err.retryAt - this.clock.now()), signal);
          continue;
        }
        throw err;
      }
    }
  }

  private withAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  /** Equal jitter: never instant, never in lock-step with other clients. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(20, attempt - 1));
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  private onGateEvent(e: GateEvent): void {
    if (e.type === 'retry') this.log.debug({ ...e }, 'venue call retried');
    else this.log.info({ ...e }, `venue gate: ${e.type}`);
  }

  private emitOrder(u: VenueOrderUpdate): void {
    this.emit(this.listeners.order, u);
  }

  private subscribe<T>(set: Set<Listener<T>>, fn: Listener<T>): () => void {
    set.add(fn);
    return () => set.delete(fn);
  }

  private emit<T>(set: Set<Listener<T>>, v: T): void {
    for (const fn of [...set]) {
      try {
        fn(v);
      } catch (err) {
        this.log.error({ err }, 'venue session listener failed');
      }
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.tasks.add(p);
    const drop = () => this.tasks.delete(p);
    p.then(drop, drop);
    return p;
  }
}
