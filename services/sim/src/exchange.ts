import { createHash } from 'node:crypto';
import { fromMicros, microsToNumber, mulMicros, MICROS_PER_UNIT, toMicros } from '@polybot/protocol';
import type {
  BookSummary,
  CancelResponse,
  GammaMarket,
  OpenOrder,
  OrderResponse,
  PostOrderBody,
  WsBook,
  WsLastTradePrice,
  WsPriceChange,
  WsTickSizeChange,
  WsUserOrder,
  WsUserTrade,
} from '@polybot/polymarket';
import { OrderBook, type Fill, type LevelChange, type RestingOrder, type Side } from './book.js';
import { generateMarkets, generateNegRiskEvent, type SimMarket } from './markets.js';
import { Rng } from './rng.js';
import {
  DEFAULT_AHEAD,
  DEFAULT_KEEP_CLOSED,
  DEFAULT_ROUND_SECONDS,
  roundMarket,
  upFair,
  type RoundsOptions,
} from './rounds.js';
import {
  REF_ASSETS,
  ReferencePrices,
  sigmaPerSecond,
  type PriceListener,
  type RefAsset,
  type ReferencePricesSnapshot,
} from './rtds.js';

/** `event_message` of the custom-feature market events: the parent event. */
export interface WsEventMessage {
  id: string;
  ticker: string;
  slug: string;
  title: string;
  description: string;
}

/** Custom-feature `new_market` (samples/ws_market/new_market.json plus the newer fee fields). */
export interface WsNewMarket {
  event_type: 'new_market';
  id: string;
  question: string;
  market: string;
  slug: string;
  description: string;
  assets_ids: string[];
  outcomes: string[];
  event_message: WsEventMessage;
  timestamp: string;
  tags: string[];
  condition_id: string;
  active: boolean;
  clob_token_ids: string[];
  sports_market_type: string;
  line: string;
  game_start_time: string;
  order_price_min_tick_size: string;
  group_item_title: string;
  taker_base_fee: string;
  fees_enabled: boolean;
  fee_schedule?: { rate: number; exponent: number; taker_only: boolean; rebate_rate: number };
}

/** Custom-feature `market_resolved` (samples/ws_market/market_resolved.json, rs_market_resolved.json). */
export interface WsMarketResolved {
  event_type: 'market_resolved';
  id: string;
  question: string;
  market: string;
  slug: string;
  description: string;
  assets_ids: string[];
  outcomes: string[];
  winning_asset_id: string;
  winning_outcome: string;
  event_message: WsEventMessage;
  timestamp: string;
  tags: string[];
}

/**
 * What the exchange tells the outside world; already in the venue's wire shapes. `new_market` and
 * `market_resolved` are custom-feature events (only for clients with `custom_feature_enabled`) and
 * carry `assets_ids` instead of `asset_id`.
 */
export type ExchangeEvent = WsPriceChange | WsLastTradePrice | WsBook | WsTickSizeChange | WsNewMarket | WsMarketResolved;
export type ExchangeListener = (ev: ExchangeEvent) => void;
/** Private events for one account, as the user channel sends them; `address` is the account (lower case). */
export type UserEvent = { address: string; event: WsUserOrder | WsUserTrade };
export type UserListener = (ev: UserEvent) => void;

export interface ExchangeOptions {
  seed: number;
  markets: number;
  /** Collateral every new account starts with, micro units. */
  startBalance: bigint;
  now?: () => number;
  /** MATCHED → MINED delay of a trade, ms (default 1000). */
  mineMs?: number;
  /** MINED → CONFIRMED (or FAILED) delay, ms (default 3000). */
  confirmMs?: number;
  /** Share of trades that end FAILED with their fills reverted, 0..1 (default 0; seeded). */
  failRate?: number;
  /**
   * Whether the exchange arms its own (unref'd) timer to advance trades and expire GTD orders
   * (default true). Tests with an injected clock turn it off and call `tick(now)`.
   * With rounds (or RTDS subscribers) it also ticks once a second for the reference prices.
   */
  timers?: boolean;
  /** Adds the neg-risk event ("Who will win the league?", six candidates) after the generated markets (default false). */
  negRisk?: boolean;
  /** Crypto up/down rounds driven by the reference prices; `false`/absent = none. */
  rounds?: RoundsOptions | false;
}

/** Order rejection for rounds listed but not yet open (the venue's text). */
export const ERR_NOT_READY = 'the market is not yet ready to process new orders';
/** Order rejection for resolved (closed) markets. */
export const ERR_MARKET_CLOSED = 'market is closed: orders are no longer accepted';
/** Tick above which (best bid) or below which (best ask) a market moves to the fine tick. */
const FINE_TICK_ABOVE = 960_000n;
const FINE_TICK_BELOW = 40_000n;
/** Back to the coarse tick once every best bid ≤ 0.95 and every best ask ≥ 0.05 (hysteresis). */
const COARSE_TICK_BID_MAX = 950_000n;
const COARSE_TICK_ASK_MIN = 50_000n;
const COARSE_TICK = 10_000n;
const FINE_TICK = 1_000n;
/** A round's books are requoted when its fair value moved at least this much (micro units). */
const ROUND_REQUOTE_MIN = 2_000;
/** Missed boundaries replayed after a clock jump; older windows are not listed. */
const MAX_MISSED_WINDOWS = 8;

/** A redemption at resolution: `shares` of `tokenId` turned into `payout` collateral. */
export interface Redemption {
  address: string;
  conditionId: string;
  tokenId: string;
  outcome: string;
  shares: string;
  payout: string;
  /** Unix ms. */
  at: number;
}

export type MarketPhase = 'upcoming' | 'open' | 'resolved';

export interface AccountView {
  /** Wallet address, lower case. */
  address: string;
  collateral: string;
  lockedCollateral: string;
  positions: Record<string, string>;
  /** Shares reserved by open SELL orders (non-zero entries only). */
  lockedPositions: Record<string, string>;
}

/** A `/data/trades` record: the user-channel trade fields without `event_type`/`type`, plus these two. */
export type TradeRecord = Omit<WsUserTrade, 'event_type' | 'type'> & { match_time_nano: string; err_msg: string };

export type TradeStatus = WsUserTrade['status'];

export const ERR_FOK = "order couldn't be fully filled. FOK orders are fully filled or killed.";
export const ERR_FAK = 'no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found.';
export const ERR_BALANCE = 'not enough balance / allowance';
/** Order statuses the exchange uses (CANCELED_MARKET_RESOLVED is reserved for resolution). */
export const ORDER_STATUS = { LIVE: 'LIVE', MATCHED: 'MATCHED', CANCELED: 'CANCELED', CANCELED_MARKET_RESOLVED: 'CANCELED_MARKET_RESOLVED' } as const;
/** Spender reported by `/balance-allowance` (the V2 CTF exchange). */
export const EXCHANGE_ADDRESS = '0xE111180000d2663C0091e4f400237545B87B996B';
export const MAX_ALLOWANCE = '115792089237316195423570985008687907853269984665640564039457584007913129639935';

const ONE = MICROS_PER_UNIT;
const MAKER_OWNER = 'sim-maker';
/** Stand-in wallet of the simulated makers in trade records. */
const SIM_MAKER_ADDRESS = `0x${createHash('sha256').update('polybot-sim-maker').digest('hex').slice(0, 40)}`;
/** Levels each simulated maker quotes per side. */
const DEPTH = 5;
/** Half the quoted spread around fair value, micro units. */
const HALF_SPREAD = 3_000;
/**
 * Mispricings that correct themselves. Each maker event draws, from its own generator (seeded from
 * the sim seed and saved in snapshots), whether it is a "news jump" (chance MISPRICE_CHANCE: ~5 a
 * minute at the default 20 events/s). On a binary market the fair value of YES jumps by 0.03–0.06
 * (on the neg-risk event one candidate's weight jumps by 0.15–0.25 and all are renormalised); the
 * makers of the token whose value *fell* requote at once (their asks drop), but those of the token
 * whose value *rose* lag for MISPRICE_LAG_MIN–MAX maker events, leaving their now cheap asks in the
 * book: YES ask + NO ask < 1 (or the candidates' YES asks summing below 1). A lagging token gets no
 * other maker action meanwhile; when its lag ends the normal requote pulls the stale quotes and
 * closes the gap — unless a trader (the arbitrageur) takes it first. Rounds never lag.
 */
const MISPRICE_CHANCE = 0.004;
const MISPRICE_LAG_MIN = 20;
const MISPRICE_LAG_MAX = 60;

interface TokenState {
  tokenId: string;
  market: SimMarket;
  outcome: 0 | 1;
  book: OrderBook;
  lastTradePrice: bigint;
}

interface MarketState {
  market: SimMarket;
  /** Hidden fair value of YES, integer micro units (a model parameter, not money). */
  fair: number;
  tokens: [TokenState, TokenState];
  volume: bigint;
  /** upcoming: listed, no book, orders refused; open: quoted and trading; resolved: closed and paid out. */
  phase: MarketPhase;
  /** Winning outcome index once resolved. */
  winner?: 0 | 1;
  /** Unix ms of the resolution. */
  closedAt?: number;
  /** Unix ms since which orders are accepted. */
  openedAt?: number;
  round?: RoundState;
  group?: NegRiskGroup;
}

interface RoundState {
  asset: RefAsset;
  assetIndex: number;
  startS: number;
  endS: number;
  /** Chainlink reference price at the start and end. */
  startPrice?: number;
  endPrice?: number;
}

/** The markets of one neg-risk event: latent weights whose normalisation gives the fair values (sum 1). */
interface NegRiskGroup {
  members: MarketState[];
  weights: number[];
}

interface RoundsRuntime {
  assets: Array<{ asset: RefAsset; index: number }>;
  seconds: number;
  ahead: number;
  keepClosed: number;
  /** Last processed window boundary, unix seconds. */
  boundary: number;
  /** Per asset: window start (s) → state, in listing order. */
  byAsset: Map<string, Map<number, MarketState>>;
}

interface Account {
  address: string;
  collateral: bigint;
  lockedCollateral: bigint;
  positions: Map<string, bigint>;
  lockedPositions: Map<string, bigint>;
}

/** Book mutations of one operation, published together when it completes. */
interface Op {
  changes: Map<string, { token: TokenState; change: LevelChange }>;
  trades: Array<{ token: TokenState; price: bigint; size: bigint; side: Side }>;
}

interface Quote {
  bids: number[];
  asks: number[];
  bidTop: number;
  askBottom: number;
}

/** A user order and its queryable state. */
interface UserOrder {
  id: string;
  /** API key (`body.owner`). */
  owner: string;
  /** The account: the order's maker, lower case. */
  address: string;
  /** Addresses that may query and cancel it: maker, signer, authenticated caller. */
  parties: string[];
  tok: TokenState;
  side: Side;
  price: bigint;
  original: bigint;
  matched: bigint;
  status: string;
  trades: string[];
  orderType: 'GTC' | 'GTD' | 'FOK' | 'FAK';
  expiration: string;
  /** Unix seconds. */
  createdAt: number;
}

/** One balance/position delta of a fill, kept so a FAILED trade can be undone exactly. */
interface Move {
  address: string;
  tokenId: string;
  collateral: bigint;
  shares: bigint;
}

interface TradeParty {
  orderId: string;
  owner: string;
  address: string;
  /** The user order, undefined for simulated makers. */
  order: UserOrder | undefined;
}

interface TradeRec {
  id: string;
  n: number;
  tok: TokenState;
  side: Side;
  price: bigint;
  size: bigint;
  notional: bigint;
  fee: bigint;
  feeRateBps: string;
  taker: TradeParty;
  /** `tokenId`: the maker order's token — the complementary one for a mint/merge fill. */
  makers: Array<TradeParty & { size: bigint; price: bigint; side: Side; tokenId: string }>;
  status: TradeStatus;
  matchAt: number;
  lastUpdate: number;
  mineAt: number;
  doneAt: number;
  txHash?: string;
  errMsg: string;
  doomed: boolean;
  moves: Move[];
}

/**
 * Which resting orders on the complementary token a taker may meet (mint/merge): user orders only.
 * The simulated makers quote both tokens of a market as mirror images of one inventory (their YES bid
 * at q sits exactly where their NO ask at 1 − q does), so matching a taker against both would count
 * their depth twice; and makers never trade with each other. User orders on the complement do match
 * every taker, user or maker.
 */
const complementEligible = (o: RestingOrder): boolean => !o.maker;

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const xs = m.get(k);
  if (xs) xs.push(v);
  else m.set(k, [v]);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function uuidFrom(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function divRoundHalfUp(n: bigint, d: bigint): bigint {
  return (n * 2n + d) / (2n * d);
}

// ------------------------------------------------------------------ snapshots

/** Version of the snapshot format (`ExchangeSnapshot.v`). */
export const SNAPSHOT_VERSION = 1;

/**
 * A resting order in book order (FIFO within a level): `[id, side, price, remaining, original,
 * createdAt]` for the simulated makers, plus `owner, locked` for user orders. Amounts are micro units
 * as decimal strings.
 */
export type BookEntrySnapshot =
  | [string, 'B' | 'S', string, string, string, number]
  | [string, 'B' | 'S', string, string, string, number, string, string];

export interface MarketSnapshot {
  gammaId: string;
  phase: MarketPhase;
  fair: number;
  volume: string;
  tickSize: string;
  winner?: 0 | 1;
  closedAt?: number;
  openedAt?: number;
  /** Crypto up/down rounds only: what regenerates the market and its round state. */
  round?: {
    asset: string;
    assetIndex: number;
    startS: number;
    endS: number;
    listedMs: number;
    index: number;
    startPrice?: number;
    endPrice?: number;
  };
  /** YES then NO. */
  tokens: Array<{ lastTradePrice: string; book: BookEntrySnapshot[] }>;
}

export interface AccountSnapshot {
  address: string;
  collateral: string;
  lockedCollateral: string;
  positions: Array<[string, string]>;
  lockedPositions: Array<[string, string]>;
}

export interface UserOrderSnapshot {
  id: string;
  owner: string;
  address: string;
  parties: string[];
  tokenId: string;
  side: Side;
  price: string;
  original: string;
  matched: string;
  status: string;
  trades: string[];
  orderType: 'GTC' | 'GTD' | 'FOK' | 'FAK';
  expiration: string;
  createdAt: number;
}

export interface TradeSnapshot {
  id: string;
  n: number;
  tokenId: string;
  side: Side;
  price: string;
  size: string;
  notional: string;
  fee: string;
  feeRateBps: string;
  taker: { orderId: string; owner: string; address: string };
  /** `tokenId` only for a maker order on the complementary token (mint/merge). */
  makers: Array<{ orderId: string; owner: string; address: string; size: string; price: string; side: Side; tokenId?: string }>;
  status: TradeStatus;
  matchAt: number;
  lastUpdate: number;
  mineAt: number;
  doneAt: number;
  txHash?: string;
  errMsg: string;
  doomed: boolean;
  /** `[address, tokenId, collateral, shares]`. */
  moves: Array<[string, string, string, string]>;
}

/**
 * Everything a restarted exchange needs to continue as if it never stopped (JSON-safe: bigints are
 * decimal strings). Pending trades keep their remaining MATCHED/MINED delays across the downtime;
 * GTD expirations, rounds and reference prices follow the wall clock.
 */
export interface ExchangeSnapshot {
  v: 1;
  /** Configuration the snapshot belongs to (a different one starts fresh). */
  seed: number;
  markets: number;
  negRisk: boolean;
  rounds: { assets: string[]; seconds: number } | null;
  /** Exchange clock at the snapshot, unix ms. */
  savedAt: number;
  seq: number;
  stats: { ordersAccepted: number; ordersRejected: number; trades: number; makerEvents: number };
  rng: number[];
  failRng: number[];
  /** Mispricing generator and lags (`[gammaId, lagging outcome, until maker event]`); absent in older files. */
  misRng?: number[];
  lags?: Array<[string, 0 | 1, number]>;
  prices: ReferencePricesSnapshot;
  /** Every known market, in listing order. */
  states: MarketSnapshot[];
  /** Forgotten (pruned) rounds that orders or trades still refer to. */
  orphans: MarketSnapshot[];
  /** Gamma ids of the open markets, in the makers' rotation order. */
  live: string[];
  groups: Array<{ members: string[]; weights: number[] }>;
  roundsState: { boundary: number; byAsset: Record<string, Array<[number, string]>> } | null;
  accounts: AccountSnapshot[];
  orders: UserOrderSnapshot[];
  trades: TradeSnapshot[];
  /** Ids of the trades not yet CONFIRMED/FAILED, in lifecycle order. */
  pending: string[];
  gtd: string[];
  seenOrders: string[];
  redemptions: Redemption[];
}

/** The snapshot was made with another seed, market count, neg-risk or rounds setting. */
export class SnapshotMismatchError extends Error {
  override name = 'SnapshotMismatchError';
}

const DEC = /^-?\d{1,80}$/;
/** A bigint from a snapshot's decimal string (throws on anything else). */
function big(x: unknown, what: string): bigint {
  if (typeof x !== 'string' || !DEC.test(x)) throw new TypeError(`snapshot: ${what} is not a decimal integer string`);
  return BigInt(x);
}
function num(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new TypeError(`snapshot: ${what} is not a number`);
  return x;
}
function arr<T>(x: T[] | undefined | null, what: string): T[] {
  if (!Array.isArray(x)) throw new TypeError(`snapshot: ${what} is not an array`);
  return x;
}

/** The rounds configuration as snapshots record it: assets in REF_ASSETS order, window length. */
function roundsConfigOf(opts: ExchangeOptions): ExchangeSnapshot['rounds'] {
  const o = opts.rounds;
  if (!o) return null;
  const wanted = (o.assets ?? REF_ASSETS.map((a) => a.asset)).map((x) => x.toUpperCase());
  return { assets: REF_ASSETS.map((a) => a.asset).filter((a) => wanted.includes(a)), seconds: o.roundSeconds ?? DEFAULT_ROUND_SECONDS };
}

/** Round parameters of a round market, from its ids and dates (works for forgotten rounds too). */
function roundParams(m: SimMarket): { assetIndex: number; startS: number; endS: number; listedMs: number } {
  return {
    assetIndex: (Number(m.gammaId) - 20_000_000) % 8,
    startS: Math.floor(Date.parse(m.eventStartTime ?? m.startDate) / 1000),
    endS: Math.floor(Date.parse(m.endDate) / 1000),
    listedMs: Date.parse(m.startDate),
  };
}

/**
 * The simulated venue: one exact order book per outcome token, per-owner accounts, and simulated
 * makers that keep every book quoted around a hidden fair value. Deterministic from the seed:
 * all randomness comes from one seeded generator consumed only by market generation and makers.
 */
export class Exchange {
  readonly markets: SimMarket[];
  private readonly states: MarketState[];
  private readonly tokens = new Map<string, TokenState>();
  private readonly byGammaId = new Map<string, MarketState>();
  private readonly accounts = new Map<string, Account>();
  private readonly seenOrders = new Set<string>();
  private readonly listeners = new Set<ExchangeListener>();
  private readonly userListeners = new Set<UserListener>();
  private readonly userOrders = new Map<string, UserOrder>();
  private readonly ordersByParty = new Map<string, UserOrder[]>();
  private readonly tradesByParty = new Map<string, TradeRec[]>();
  /** Live GTD orders with an expiration. */
  private readonly gtd = new Set<string>();
  private pending: TradeRec[] = [];
  /** Open markets, in the order makers pick them from. */
  private readonly live: MarketState[] = [];
  private readonly byCondition = new Map<string, MarketState>();
  private readonly redemptionsByAddress = new Map<string, Redemption[]>();
  /** Reference prices (RTDS), stepped each second by `tick`. */
  readonly prices: ReferencePrices;
  private rounds: RoundsRuntime | undefined;
  private secondTimer: NodeJS.Timeout | undefined;
  /** Guards against re-entrant tick-size checks while one is requoting. */
  private tickCheckDepth = 0;
  private readonly rng: Rng;
  /** Separate stream for trade failures, so they never shift the makers' sequence. */
  private readonly failRng: Rng;
  private readonly now: () => number;
  private mineMs: number;
  private confirmMs: number;
  private failRate: number;
  private readonly timers: boolean;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;
  private seq = 0;
  /** Generator of the mispricing jumps (see MISPRICE_CHANCE). */
  private readonly misRng: Rng;
  /** Gamma id → the token whose maker quotes lag, and the maker event count at which the lag ends. */
  private readonly lags = new Map<string, { outcome: 0 | 1; until: number }>();
  readonly stats = { ordersAccepted: 0, ordersRejected: 0, trades: 0, makerEvents: 0 };

  /**
   * A fresh exchange from the seed, or — with `snapshot` (from `toSnapshot`, possibly of an earlier
   * process) — the exchange exactly as it was then: throws `SnapshotMismatchError` when the snapshot
   * belongs to another configuration, and another error when it is malformed.
   */
  constructor(
    private readonly opts: ExchangeOptions,
    snapshot?: ExchangeSnapshot,
  ) {
    this.now = opts.now ?? Date.now;
    this.rng = new Rng(opts.seed);
    this.failRng = new Rng((opts.seed ^ 0xfa11ed) >>> 0);
    this.misRng = new Rng((opts.seed ^ 0x5eedb1a5) >>> 0);
    this.mineMs = opts.mineMs ?? 1000;
    this.confirmMs = opts.confirmMs ?? 3000;
    this.failRate = 0;
    this.configure({ failRate: opts.failRate ?? 0 });
    this.timers = opts.timers ?? true;
    this.markets = [];
    this.states = [];
    this.prices = new ReferencePrices(opts.seed, this.now());
    if (snapshot) {
      this.restoreSnapshot(snapshot);
      return;
    }
    for (const m of generateMarkets(opts.seed, opts.markets)) this.addMarket(m, 'open');
    if (opts.negRisk) {
      const members = generateNegRiskEvent(opts.seed, this.markets.length).map((m) => this.addMarket(m, 'open'));
      const group: NegRiskGroup = { members, weights: members.map((st) => st.market.anchor) };
      for (const st of members) st.group = group;
      this.normalizeGroup(group);
    }
    // Initial quotes: every band level on both sides of both tokens gets one or two maker orders.
    for (const st of this.states) this.initialQuotes(st, undefined);
    for (const st of this.states) this.checkTick(st, false);
    if (opts.rounds) this.initRounds(opts.rounds);
  }

  /** Restores an exchange saved by `toSnapshot` (see the constructor). */
  static fromSnapshot(opts: ExchangeOptions, snapshot: ExchangeSnapshot): Exchange {
    return new Exchange(opts, snapshot);
  }

  /** Registers a market (books empty); open markets join the makers' rotation. */
  private addMarket(market: SimMarket, phase: MarketPhase): MarketState {
    const st = this.makeState(market, phase);
    this.register(st);
    return st;
  }

  /** A market's state with empty books, not yet known to the exchange. */
  private makeState(market: SimMarket, phase: MarketPhase): MarketState {
    const mk = (i: 0 | 1): TokenState => ({
      tokenId: market.tokenIds[i],
      market,
      outcome: i,
      book: new OrderBook(market.tokenIds[i]),
      lastTradePrice: 0n,
    });
    return { market, fair: market.anchor, tokens: [mk(0), mk(1)], volume: 0n, phase };
  }

  private register(st: MarketState): void {
    const { market, phase } = st;
    for (const t of st.tokens) this.tokens.set(t.tokenId, t);
    this.byGammaId.set(market.gammaId, st);
    this.byCondition.set(market.conditionId.toLowerCase(), st);
    this.markets.push(market);
    this.states.push(st);
    if (phase === 'open') this.live.push(st);
  }

  /** Every band level on both sides of both tokens gets one or two maker orders. */
  private initialQuotes(st: MarketState, op: Op | undefined): void {
    for (const tok of st.tokens) {
      const q = this.quote(st, tok);
      const tick = Number(st.market.tickSize);
      tok.lastTradePrice = BigInt(Math.round(this.fairOf(st, tok) / tick) * tick);
      for (const [side, prices] of [['BUY', q.bids], ['SELL', q.asks]] as const) {
        for (const p of prices) {
          const n = this.rng.int(1, 2);
          for (let i = 0; i < n; i++) this.makerPlace(tok, side, BigInt(p), this.makerSize(), op);
        }
      }
    }
  }

  on(listener: ExchangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Order and trade events of user accounts (the user WebSocket channel). */
  onUser(listener: UserListener): () => void {
    this.userListeners.add(listener);
    return () => this.userListeners.delete(listener);
  }

  protected emitUser(ev: UserEvent): void {
    for (const l of this.userListeners) l(ev);
  }

  /** The exchange clock (injectable for tests), unix ms. */
  nowMs(): number {
    return this.now();
  }

  hasToken(tokenId: string): boolean {
    return this.tokens.has(tokenId);
  }

  // ------------------------------------------------------------------ market data

  bookSummary(tokenId: string): BookSummary | undefined {
    const tok = this.tokens.get(tokenId);
    if (!tok) return undefined;
    const { bids, asks } = tok.book.levels();
    const lvl = ([p, s]: [bigint, bigint]) => ({ price: fromMicros(p), size: fromMicros(s) });
    // Key order is the one py-clob-client-v2 documents as server-compatible for the hash.
    const book: BookSummary = {
      market: tok.market.conditionId,
      asset_id: tok.tokenId,
      timestamp: String(this.now()),
      hash: '',
      bids: bids.map(lvl),
      asks: asks.map(lvl),
      min_order_size: fromMicros(tok.market.minOrderSize),
      tick_size: fromMicros(tok.market.tickSize),
      neg_risk: tok.market.negRisk,
      last_trade_price: fromMicros(tok.lastTradePrice),
    };
    book.hash = createHash('sha1').update(JSON.stringify(book)).digest('hex');
    return book;
  }

  wsBook(tokenId: string): WsBook | undefined {
    const b = this.bookSummary(tokenId);
    return b ? { event_type: 'book', ...b } : undefined;
  }

  /** Gamma market objects, in generation order. */
  gammaMarkets(): GammaMarket[] {
    return this.states.map((st) => this.gamma(st));
  }

  gammaMarket(id: string): GammaMarket | undefined {
    const st = this.byGammaId.get(id);
    return st ? this.gamma(st) : undefined;
  }

  private gamma(st: MarketState): GammaMarket {
    const m = st.market;
    const yes = st.tokens[0];
    const bb = yes.book.bestBid();
    const ba = yes.book.bestAsk();
    const mid =
      st.phase === 'resolved' ? (st.winner === 0 ? ONE : 0n) : bb !== undefined && ba !== undefined ? (bb + ba) / 2n : yes.lastTradePrice;
    const prices = st.phase === 'resolved' ? [st.winner === 0 ? '1' : '0', st.winner === 1 ? '1' : '0'] : [fromMicros(mid), fromMicros(ONE - mid)];
    const liquidity = st.tokens.reduce((sum, t) => {
      const { bids, asks } = t.book.levels();
      for (const [p, s] of [...bids, ...asks]) sum += mulMicros(p, s);
      return sum;
    }, 0n);
    // Gamma encodes these arrays as JSON strings with ", " separators (Python json.dumps style).
    const jsonList = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
    return {
      id: m.gammaId,
      question: m.question,
      conditionId: m.conditionId,
      slug: m.slug,
      resolutionSource: '',
      endDate: m.endDate,
      liquidity: fromMicros(liquidity),
      startDate: m.startDate,
      description: m.description,
      outcomes: jsonList(m.outcomes),
      outcomePrices: jsonList(prices),
      volume: fromMicros(st.volume),
      active: true,
      closed: st.phase === 'resolved',
      createdAt: m.createdAt,
      updatedAt: new Date(this.now()).toISOString(),
      archived: false,
      questionID: m.questionId,
      enableOrderBook: true,
      orderPriceMinTickSize: microsToNumber(m.tickSize),
      orderMinSize: microsToNumber(m.minOrderSize),
      volumeNum: microsToNumber(st.volume),
      liquidityNum: microsToNumber(liquidity),
      endDateIso: m.endDate.slice(0, 10),
      startDateIso: m.startDate.slice(0, 10),
      clobTokenIds: jsonList(m.tokenIds),
      acceptingOrders: st.phase === 'open',
      negRisk: m.negRisk,
      spread: bb !== undefined && ba !== undefined ? microsToNumber(ba - bb) : 1,
      lastTradePrice: microsToNumber(yes.lastTradePrice),
      bestBid: bb !== undefined ? microsToNumber(bb) : 0,
      bestAsk: ba !== undefined ? microsToNumber(ba) : 1,
      ...this.gammaExtras(st),
      feesEnabled: m.feeSchedule !== undefined,
      ...(m.feeSchedule
        ? {
            feeType: m.feeType ?? 'crypto_fees',
            feeSchedule: {
              rate: microsToNumber(toMicros(m.feeSchedule.rate)),
              exponent: m.feeSchedule.exponent,
              takerOnly: m.feeSchedule.takerOnly,
              rebateRate: 0,
            },
          }
        : {}),
    } as GammaMarket;
  }

  /** Lifecycle, round and neg-risk fields of the markets that have them (legacy markets add none). */
  private gammaExtras(st: MarketState): Record<string, unknown> {
    const m = st.market;
    const x: Record<string, unknown> = {};
    if (m.resolutionSource !== undefined) x.resolutionSource = m.resolutionSource;
    if (m.eventStartTime !== undefined) x.eventStartTime = m.eventStartTime;
    if (m.groupItemTitle !== undefined) x.groupItemTitle = m.groupItemTitle;
    if (m.negRiskMarketID !== undefined) x.negRiskMarketID = m.negRiskMarketID;
    if (m.negRiskRequestID !== undefined) x.negRiskRequestID = m.negRiskRequestID;
    if (m.event !== undefined) {
      // Rounds accept orders from their window start; until then the field is absent.
      if (st.openedAt !== undefined) x.acceptingOrdersTimestamp = new Date(st.openedAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
      else if (!st.round) x.acceptingOrdersTimestamp = m.startDate;
      x.umaResolutionStatuses = st.phase === 'resolved' ? '["proposed"]' : '[]';
    }
    if (st.phase === 'resolved') {
      x.umaResolutionStatus = 'resolved';
      x.automaticallyResolved = true;
      // Gamma's closedTime is "YYYY-MM-DD HH:MM:SS+00".
      x.closedTime = `${new Date(st.closedAt ?? 0).toISOString().slice(0, 19).replace('T', ' ')}+00`;
    }
    return x;
  }

  /** Lifecycle phase of a market (by Gamma id or condition id). */
  phaseOf(id: string): MarketPhase | undefined {
    return (this.byGammaId.get(id) ?? this.byCondition.get(id.toLowerCase()))?.phase;
  }

  /** The market of a condition id (case-insensitive). */
  marketOfCondition(conditionId: string): SimMarket | undefined {
    return this.byCondition.get(conditionId.toLowerCase())?.market;
  }

  marketOfToken(tokenId: string): SimMarket | undefined {
    return this.tokens.get(tokenId)?.market;
  }

  /** Redemptions paid to an account at resolutions, oldest first. */
  redemptionsOf(address: string): Redemption[] {
    return [...(this.redemptionsByAddress.get(address.toLowerCase()) ?? [])];
  }

  /** Levels of every book, without timestamps: equal for equal seeds. */
  snapshot(): Array<{ tokenId: string; bids: string[]; asks: string[] }> {
    return [...this.tokens.values()].map((t) => {
      const { bids, asks } = t.book.levels();
      const f = ([p, s]: [bigint, bigint]) => `${fromMicros(p)}@${fromMicros(s)}`;
      return { tokenId: t.tokenId, bids: bids.map(f), asks: asks.map(f) };
    });
  }

  // ------------------------------------------------------------------ accounts

  /** A wallet's account view (address case-insensitive), undefined if it never traded or was funded. */
  account(address: string): AccountView | undefined {
    const a = this.accounts.get(address.toLowerCase());
    if (!a) return undefined;
    const positions: Record<string, string> = {};
    for (const [k, v] of a.positions) positions[k] = fromMicros(v);
    const lockedPositions: Record<string, string> = {};
    for (const [k, v] of a.lockedPositions) if (v !== 0n) lockedPositions[k] = fromMicros(v);
    return {
      address: a.address,
      collateral: fromMicros(a.collateral),
      lockedCollateral: fromMicros(a.lockedCollateral),
      positions,
      lockedPositions,
    };
  }

  /** Opens the account of a wallet address with the start balance if it does not exist yet (idempotent). */
  ensureAccount(address: string): AccountView {
    this.acct(address);
    return this.account(address) as AccountView;
  }

  /**
   * Adds collateral (micro units) to an account, creating it first if needed. A negative amount
   * withdraws, but never more than the available (unreserved) collateral: RangeError otherwise.
   */
  fund(address: string, amountMicros: bigint): AccountView {
    const a = this.acct(address);
    if (a.collateral - a.lockedCollateral + amountMicros < 0n) {
      throw new RangeError(`cannot withdraw ${fromMicros(-amountMicros)}: only ${fromMicros(a.collateral - a.lockedCollateral)} available`);
    }
    a.collateral += amountMicros;
    return this.account(address) as AccountView;
  }

  /** Available (not reserved by open orders) collateral, or shares of `tokenId`; micro units, 0 for unknown accounts. */
  availableBalance(address: string, tokenId?: string): bigint {
    const a = this.accounts.get(address.toLowerCase());
    if (!a) return 0n;
    if (tokenId === undefined) return a.collateral - a.lockedCollateral;
    return (a.positions.get(tokenId) ?? 0n) - (a.lockedPositions.get(tokenId) ?? 0n);
  }

  private acct(address: string): Account {
    const key = address.toLowerCase();
    let a = this.accounts.get(key);
    if (!a) {
      a = { address: key, collateral: this.opts.startBalance, lockedCollateral: 0n, positions: new Map(), lockedPositions: new Map() };
      this.accounts.set(key, a);
    }
    return a;
  }

  /** Changes the trade lifecycle settings; affects trades matched from now on. */
  configure(o: { mineMs?: number; confirmMs?: number; failRate?: number }): void {
    if (o.mineMs !== undefined) this.mineMs = o.mineMs;
    if (o.confirmMs !== undefined) this.confirmMs = o.confirmMs;
    if (o.failRate !== undefined) {
      if (!(o.failRate >= 0 && o.failRate <= 1)) throw new RangeError('failRate must be within 0..1');
      this.failRate = o.failRate;
    }
  }

  // ------------------------------------------------------------------ orders

  private reject(errorMsg: string, orderID: string | null = null): OrderResponse {
    this.stats.ordersRejected++;
    return { success: false, errorMsg, orderID };
  }

  /** Taker fee in collateral: shares × rate × (p·(1−p))^exponent, rounded half up to micro units. */
  feeFor(market: SimMarket, shares: bigint, price: bigint): bigint {
    const fs = market.feeSchedule;
    if (!fs) return 0n;
    const e = BigInt(fs.exponent);
    const num = shares * toMicros(fs.rate) * (price * (ONE - price)) ** e;
    return divRoundHalfUp(num, ONE ** (1n + 2n * e));
  }

  private feeRateBps(market: SimMarket): string {
    return market.feeSchedule ? String(toMicros(market.feeSchedule.rate) / 100n) : '0';
  }

  /**
   * Places a (schema-valid) order. Side, price and size come from the signed amounts: BUY pays
   * makerAmount USDC for takerAmount shares, SELL gives makerAmount shares for takerAmount USDC.
   * The account is the order's `maker` (lower case); `body.owner` (the API key) is kept for the
   * `owner` fields. `opts.orderId` (the EIP-712 hash) replaces the sha256 of the order JSON;
   * `opts.address` is the authenticated caller, who may also query and cancel the order.
   */
  postOrder(body: PostOrderBody, opts: { orderId?: string; address?: string } = {}): OrderResponse {
    const o = body.order;
    const id = opts.orderId ?? `0x${sha256(JSON.stringify(o))}`;
    const tok = this.tokens.get(o.tokenId);
    if (!tok) return this.reject(`order ${id} is invalid. No orderbook exists for the requested token id`);
    if (this.rounds) this.advanceClock(this.now());
    const phase = this.stateOf(tok).phase;
    if (phase === 'upcoming') return this.reject(ERR_NOT_READY);
    if (phase === 'resolved') return this.reject(ERR_MARKET_CLOSED);
    if (this.seenOrders.has(id)) return this.reject(`order ${id} is invalid. Duplicated.`);
    const makerAmt = BigInt(o.makerAmount);
    const takerAmt = BigInt(o.takerAmount);
    if (makerAmt <= 0n || takerAmt <= 0n) return this.reject(`order ${id} is invalid. Amounts must be positive.`);
    const m = tok.market;
    const tick = m.tickSize;
    const side = o.side;
    const shares = side === 'BUY' ? takerAmt : makerAmt;
    const usdc = side === 'BUY' ? makerAmt : takerAmt;
    // The implied price usdc/shares need not sit exactly on the grid (market orders round the share
    // amount), so it is snapped to the nearest tick when within a tenth of a tick, else rejected.
    const num = usdc * ONE;
    const ticks = divRoundHalfUp(num, shares * tick);
    const price = ticks * tick;
    const off = num - price * shares;
    const offAbs = off < 0n ? -off : off;
    if (offAbs * 10n > tick * shares || price < tick || price > ONE - tick) {
      const implied = fromMicros(divRoundHalfUp(num, shares));
      return this.reject(
        `order ${id} is invalid. Price (${implied}) breaks minimum tick size rule: ${fromMicros(tick)}`,
      );
    }
    const type = body.orderType;
    const resting = type === 'GTC' || type === 'GTD';
    if (body.postOnly && !resting) return this.reject('invalid post-only order: only GTC and GTD orders can be post-only');
    if (resting && shares < m.minOrderSize) {
      return this.reject(`order ${id} is invalid. Size (${fromMicros(shares)}) lower than the minimum: ${fromMicros(m.minOrderSize)}`);
    }
    if (!resting && side === 'BUY' && usdc < ONE) {
      return this.reject(`invalid amount for a marketable BUY order ($${fromMicros(usdc)}), min size: $1`);
    }
    const exp = type === 'GTD' ? BigInt(o.expiration) : 0n;
    if (type === 'GTD' && exp !== 0n && exp * 1000n <= BigInt(this.now())) return this.reject('invalid expiration');
    const address = o.maker.toLowerCase();
    const acct = this.acct(address);
    const book = tok.book;
    const opposite = side === 'BUY' ? book.bestAsk() : book.bestBid();
    // The complement's best bid q (for a BUY) or best ask q (for a SELL) acts as an opposite price 1 − q.
    const compBook = this.complementOf(tok).book;
    const compBest = compBook.bestWhere(side, complementEligible);
    const crosses =
      (opposite !== undefined && OrderBook.crosses(side, price, opposite)) ||
      (compBest !== undefined && OrderBook.crosses(side, price, ONE - compBest));
    if (side === 'BUY') {
      const notional = mulMicros(price, shares, 'up');
      // Taker fees are paid from collateral: reserve the worst case, p·(1−p) peaks at 0.5.
      const fee = crosses ? this.feeFor(m, shares, price < ONE / 2n ? price : ONE / 2n) : 0n;
      const need = (usdc > notional ? usdc : notional) + fee;
      if (acct.collateral - acct.lockedCollateral < need) return this.reject(ERR_BALANCE);
    } else {
      const held = (acct.positions.get(tok.tokenId) ?? 0n) - (acct.lockedPositions.get(tok.tokenId) ?? 0n);
      if (held < shares) return this.reject(ERR_BALANCE);
    }
    if (body.postOnly && crosses) return this.reject('invalid post-only order: order crosses book');
    const available = crosses ? book.fillable(side, price, shares, { book: compBook, eligible: complementEligible }) : 0n;
    if (type === 'FOK' && available < shares) return this.reject(ERR_FOK, id);
    if (type === 'FAK' && available === 0n) return this.reject(ERR_FAK, id);

    this.seenOrders.add(id);
    this.stats.ordersAccepted++;
    const uo: UserOrder = {
      id,
      owner: body.owner,
      address,
      parties: [...new Set([address, o.signer.toLowerCase(), ...(opts.address ? [opts.address.toLowerCase()] : [])])],
      tok,
      side,
      price,
      original: shares,
      matched: 0n,
      status: 'LIVE',
      trades: [],
      orderType: type,
      expiration: type === 'GTD' ? o.expiration : '0',
      createdAt: Math.floor(this.now() / 1000),
    };
    this.userOrders.set(id, uo);
    for (const p of uo.parties) push(this.ordersByParty, p, uo);
    this.emitOrder(uo, 'PLACEMENT');
    const op: Op = { changes: new Map(), trades: [] };
    const res = this.execute(tok, { id, owner: address, side, price, shares, rest: resting, maker: false, user: uo }, op);
    if (res.filled > 0n) {
      // What the order took on arrival counts as matched, as on the venue (lookups report it).
      uo.matched += res.filled;
      uo.status = res.filled === shares ? 'MATCHED' : 'LIVE';
      this.emitOrder(uo, 'UPDATE');
    }
    if (!res.rested && res.filled < shares) {
      uo.status = 'CANCELED'; // FAK remainder
      this.emitOrder(uo, 'CANCELLATION');
    }
    if (res.rested && exp > 0n) this.gtd.add(id);
    this.flush(op);
    this.schedule();
    const making = side === 'BUY' ? res.usdc : res.filled;
    const taking = side === 'BUY' ? res.filled : res.usdc;
    return {
      success: true,
      errorMsg: '',
      orderID: id,
      status: res.filled > 0n ? 'matched' : res.rested ? 'live' : 'unmatched',
      makingAmount: fromMicros(making),
      takingAmount: fromMicros(taking),
      transactionsHashes: [],
      tradeIDs: res.tradeIds,
    };
  }

  /**
   * Matches an incoming order, settles each fill, and rests the remainder when asked to. Fills at
   * one price level make one trade (one maker order entry per resting order).
   */
  private execute(
    tok: TokenState,
    o: { id: string; owner: string; side: Side; price: bigint; shares: bigint; rest: boolean; maker: boolean; user?: UserOrder },
    op: Op | undefined,
  ): { filled: bigint; usdc: bigint; rested: boolean; tradeIds: string[] } {
    const levelChanges: LevelChange[] = [];
    const comp = this.complementOf(tok);
    const compChanges: LevelChange[] = [];
    const fills = tok.book.take(o.side, o.price, o.shares, levelChanges, { book: comp.book, eligible: complementEligible, changes: compChanges });
    let filled = 0n;
    let usdc = 0n;
    const tradeIds: string[] = [];
    // Fills at one effective price (a complement order at q counts as 1 − q) make one trade.
    const eff = (f: Fill) => (f.complement ? ONE - f.price : f.price);
    for (let i = 0; i < fills.length; ) {
      const price = eff(fills[i] as Fill);
      let j = i;
      while (j < fills.length && eff(fills[j] as Fill) === price) j++;
      const t = this.trade(tok, o, fills.slice(i, j));
      i = j;
      filled += t.size;
      usdc += t.notional;
      tradeIds.push(t.id);
      tok.lastTradePrice = price;
      op?.trades.push({ token: tok, price, size: t.size, side: o.side });
    }
    const remaining = o.shares - filled;
    let rested = false;
    if (o.rest && remaining > 0n) {
      let locked = 0n;
      if (!o.maker) {
        const a = this.acct(o.owner);
        if (o.side === 'BUY') {
          locked = mulMicros(o.price, remaining, 'up');
          a.lockedCollateral += locked;
        } else {
          locked = remaining;
          a.lockedPositions.set(tok.tokenId, (a.lockedPositions.get(tok.tokenId) ?? 0n) + remaining);
        }
      }
      const order: RestingOrder = {
        id: o.id,
        owner: o.owner,
        tokenId: tok.tokenId,
        side: o.side,
        price: o.price,
        remaining,
        original: o.shares,
        maker: o.maker,
        locked,
        createdAt: this.now(),
      };
      levelChanges.push(tok.book.add(order));
      rested = true;
    }
    if (op) {
      for (const c of compChanges) this.record(op, comp, c);
      for (const c of levelChanges) this.record(op, tok, c);
    }
    return { filled, usdc, rested, tradeIds };
  }

  /** Settles the fills of one price level as one trade (status MATCHED) and tells its users. */
  private trade(
    tok: TokenState,
    o: { id: string; owner: string; side: Side; maker: boolean; user?: UserOrder },
    fills: Fill[],
  ): TradeRec {
    const moves: Move[] = [];
    const takerAddress = o.maker ? undefined : o.owner;
    let size = 0n;
    let notional = 0n;
    const makers: TradeRec['makers'] = [];
    for (const f of fills) {
      notional += this.settle(tok, o.side, takerAddress, f, moves);
      size += f.size;
      const mo = f.order.maker ? undefined : this.userOrders.get(f.order.id);
      makers.push({
        orderId: f.order.id,
        owner: mo ? mo.owner : MAKER_OWNER,
        address: mo ? mo.address : SIM_MAKER_ADDRESS,
        order: mo,
        size: f.size,
        price: f.price,
        side: f.order.side,
        tokenId: f.order.tokenId,
      });
    }
    const first = fills[0] as Fill;
    const price = first.complement ? ONE - first.price : first.price;
    const fee = takerAddress === undefined ? 0n : this.feeFor(tok.market, size, price);
    if (fee > 0n && takerAddress !== undefined) this.move(moves, takerAddress, tok.tokenId, -fee, 0n);
    const now = this.now();
    const t: TradeRec = {
      id: uuidFrom(sha256(`trade:${this.opts.seed}:${++this.seq}`)),
      n: this.seq,
      tok,
      side: o.side,
      price,
      size,
      notional,
      fee,
      feeRateBps: takerAddress === undefined ? '0' : this.feeRateBps(tok.market),
      taker: { orderId: o.id, owner: o.user ? o.user.owner : MAKER_OWNER, address: o.user ? o.user.address : SIM_MAKER_ADDRESS, order: o.user },
      makers,
      status: 'MATCHED',
      matchAt: now,
      lastUpdate: now,
      mineAt: now + this.mineMs,
      doneAt: now + this.mineMs + this.confirmMs,
      errMsg: '',
      doomed: this.failRate > 0 && this.failRng.next() < this.failRate,
      moves,
    };
    this.stateOf(tok).volume += notional;
    this.stats.trades++;
    this.pending.push(t);
    for (const p of this.partiesOf(t)) push(this.tradesByParty, p, t);
    o.user?.trades.push(t.id);
    this.emitTrade(t);
    // Resting user orders that were hit: size_matched grows, MATCHED when nothing is left.
    for (const f of fills) {
      const mo = f.order.maker ? undefined : this.userOrders.get(f.order.id);
      if (!mo) continue;
      mo.matched += f.size;
      if (!mo.trades.includes(t.id)) mo.trades.push(t.id);
      if (f.order.remaining === 0n) {
        mo.status = 'MATCHED';
        this.gtd.delete(mo.id);
      }
      this.emitOrder(mo, 'UPDATE');
    }
    return t;
  }

  /**
   * Moves collateral and shares for one fill (recorded in `moves`); returns the taker's USDC.
   *
   * Direct fill: the taker pays (BUY) or receives (SELL) price × size, the resting order the opposite.
   * Complement fill (the resting order on the other token of the market, at q):
   * - mint (both BUY): the maker pays q × size for `size` shares of its token, the taker pays the rest
   *   of the full sets, size − q × size (its effective price 1 − q ≤ its limit: any surplus over its
   *   limit stays with the taker as price improvement), for `size` shares of its token. Collateral in
   *   is exactly `size` (1 pUSD per set), backing the `size` new YES + NO pairs.
   * - merge (both SELL): each gives up `size` shares of its token; the maker receives q × size, the
   *   taker size − q × size. Collateral out is exactly `size`, the sets are burnt.
   * Either way the exchange holds exactly 1 pUSD per outstanding YES + NO pair, never more or less.
   */
  private settle(tok: TokenState, takerSide: Side, takerAddress: string | undefined, f: Fill, moves: Move[]): bigint {
    const makerCash = mulMicros(f.price, f.size);
    const cost = f.complement ? f.size - makerCash : makerCash;
    if (takerAddress !== undefined) {
      this.move(moves, takerAddress, tok.tokenId, takerSide === 'BUY' ? -cost : cost, takerSide === 'BUY' ? f.size : -f.size);
    }
    const r = f.order;
    if (!r.maker) {
      const a = this.acct(r.owner);
      if (r.side === 'BUY') {
        const newLock = mulMicros(r.price, r.remaining, 'up');
        a.lockedCollateral -= r.locked - newLock;
        r.locked = newLock;
      } else {
        a.lockedPositions.set(r.tokenId, (a.lockedPositions.get(r.tokenId) ?? 0n) - f.size);
        r.locked -= f.size;
      }
      this.move(moves, r.owner, r.tokenId, r.side === 'BUY' ? -makerCash : makerCash, r.side === 'BUY' ? f.size : -f.size);
    }
    return cost;
  }

  /** The other token of a token's market (YES ↔ NO). */
  private complementOf(tok: TokenState): TokenState {
    return this.stateOf(tok).tokens[tok.outcome === 0 ? 1 : 0];
  }

  private move(moves: Move[], address: string, tokenId: string, collateral: bigint, shares: bigint): void {
    const a = this.acct(address);
    a.collateral += collateral;
    if (shares !== 0n) a.positions.set(tokenId, (a.positions.get(tokenId) ?? 0n) + shares);
    moves.push({ address: a.address, tokenId, collateral, shares });
  }

  // ------------------------------------------------------------------ cancels

  /** Cancels the caller's orders by id: `not_canceled` says why for the others. */
  cancelOrders(address: string, ids: string[]): CancelResponse {
    const caller = address.toLowerCase();
    const out: CancelResponse = { canceled: [], not_canceled: {} };
    const op: Op = { changes: new Map(), trades: [] };
    for (const id of new Set(ids)) {
      const uo = this.userOrders.get(id);
      if (!uo || !uo.parties.includes(caller)) out.not_canceled[id] = 'order not found';
      else if (uo.status !== 'LIVE') out.not_canceled[id] = 'already canceled or matched';
      else {
        this.cancelUserOrder(uo, op, 'CANCELED');
        out.canceled.push(id);
      }
    }
    this.flush(op);
    return out;
  }

  cancelOrder(address: string, id: string): CancelResponse {
    return this.cancelOrders(address, [id]);
  }

  /** Cancels every open order of the caller (also the heartbeat dead-man switch). */
  cancelAll(address: string): CancelResponse {
    return this.cancelOrders(address, this.liveOrdersOf(address).map((o) => o.id));
  }

  /** Cancels the caller's open orders in one market (condition id) and/or one token; both absent = all. */
  cancelMarketOrders(address: string, filter: { market?: string; assetId?: string }): CancelResponse {
    const market = filter.market?.toLowerCase();
    const ids = this.liveOrdersOf(address)
      .filter((o) => (!market || o.tok.market.conditionId.toLowerCase() === market) && (!filter.assetId || o.tok.tokenId === filter.assetId))
      .map((o) => o.id);
    return this.cancelOrders(address, ids);
  }

  private liveOrdersOf(address: string): UserOrder[] {
    return (this.ordersByParty.get(address.toLowerCase()) ?? []).filter((o) => o.status === 'LIVE');
  }

  /** Takes a live order off its book, releases its reservation exactly, and tells its owner. */
  private cancelUserOrder(uo: UserOrder, op: Op, status: string): void {
    const res = uo.tok.book.cancel(uo.id);
    if (res) {
      const r = res.order;
      const a = this.acct(r.owner);
      if (r.side === 'BUY') a.lockedCollateral -= r.locked;
      else a.lockedPositions.set(r.tokenId, (a.lockedPositions.get(r.tokenId) ?? 0n) - r.locked);
      r.locked = 0n;
      this.record(op, uo.tok, res.change);
    }
    uo.status = status;
    this.gtd.delete(uo.id);
    this.emitOrder(uo, 'CANCELLATION');
  }

  // ------------------------------------------------------------------ queries

  /** One order of the caller in the OpenOrder shape (any status), undefined if unknown or someone else's. */
  getOrder(address: string, id: string): OpenOrder | undefined {
    const uo = this.userOrders.get(id);
    return uo && uo.parties.includes(address.toLowerCase()) ? this.openOrderView(uo) : undefined;
  }

  /** The caller's LIVE orders, oldest first. */
  openOrders(address: string, filter: { id?: string; market?: string; assetId?: string } = {}): OpenOrder[] {
    const market = filter.market?.toLowerCase();
    return this.liveOrdersOf(address)
      .filter(
        (o) =>
          (!filter.id || o.id === filter.id) &&
          (!market || o.tok.market.conditionId.toLowerCase() === market) &&
          (!filter.assetId || o.tok.tokenId === filter.assetId),
      )
      .map((o) => this.openOrderView(o));
  }

  /**
   * The caller's trades (as taker or maker), oldest first, as `/data/trades` reports them.
   * `before`/`after` are unix seconds compared with the match time (before exclusive, after inclusive).
   */
  tradesOf(
    address: string,
    filter: { id?: string; market?: string; assetId?: string; before?: number; after?: number } = {},
  ): TradeRecord[] {
    const caller = address.toLowerCase();
    const market = filter.market?.toLowerCase();
    return (this.tradesByParty.get(caller) ?? [])
      .filter((t) => {
        const secs = Math.floor(t.matchAt / 1000);
        return (
          (!filter.id || t.id === filter.id) &&
          (!market || t.tok.market.conditionId.toLowerCase() === market) &&
          (!filter.assetId || t.tok.tokenId === filter.assetId || t.makers.some((m) => m.order?.tok.tokenId === filter.assetId)) &&
          (filter.before === undefined || secs < filter.before) &&
          (filter.after === undefined || secs >= filter.after)
        );
      })
      .map((t) => {
        const takerSide = t.taker.order?.parties.includes(caller) ?? false;
        const own = takerSide ? t.taker.order : t.makers.find((m) => m.order?.parties.includes(caller))?.order;
        const { event_type: _e, type: _t, ...rest } = this.tradeView(t, takerSide ? 'TAKER' : 'MAKER', own?.owner ?? t.taker.owner);
        return { ...rest, match_time_nano: String(BigInt(t.matchAt) * 1_000_000n), err_msg: t.errMsg };
      });
  }

  private openOrderView(uo: UserOrder): OpenOrder {
    return {
      id: uo.id,
      status: uo.status,
      owner: uo.owner,
      maker_address: uo.address,
      market: uo.tok.market.conditionId,
      asset_id: uo.tok.tokenId,
      side: uo.side,
      original_size: fromMicros(uo.original),
      size_matched: fromMicros(uo.matched),
      price: fromMicros(uo.price),
      associate_trades: [...uo.trades],
      outcome: uo.tok.market.outcomes[uo.tok.outcome],
      created_at: uo.createdAt,
      expiration: uo.expiration,
      order_type: uo.orderType,
    };
  }

  // ------------------------------------------------------------------ user events

  private emitOrder(uo: UserOrder, type: WsUserOrder['type']): void {
    const v = this.openOrderView(uo);
    this.emitUser({
      address: uo.address,
      event: {
        event_type: 'order',
        id: v.id,
        owner: v.owner,
        order_owner: v.owner,
        market: v.market,
        asset_id: v.asset_id,
        side: v.side,
        price: v.price,
        original_size: v.original_size,
        size_matched: v.size_matched,
        outcome: v.outcome,
        type,
        status: v.status,
        associate_trades: v.associate_trades,
        maker_address: v.maker_address,
        order_type: v.order_type,
        expiration: v.expiration,
        created_at: String(v.created_at),
        timestamp: String(this.now()),
      },
    });
  }

  private partiesOf(t: TradeRec): string[] {
    const s = new Set<string>(t.taker.order?.parties ?? []);
    for (const m of t.makers) for (const p of m.order?.parties ?? []) s.add(p);
    return [...s];
  }

  /** One trade event per user account involved: the taker's (TAKER) and each maker account's (MAKER). */
  private emitTrade(t: TradeRec): void {
    if (t.taker.order) this.emitUser({ address: t.taker.address, event: this.tradeView(t, 'TAKER', t.taker.owner) });
    const seen = new Set<string>();
    for (const m of t.makers) {
      if (!m.order || seen.has(m.address)) continue;
      seen.add(m.address);
      this.emitUser({ address: m.address, event: this.tradeView(t, 'MAKER', m.owner) });
    }
  }

  /** A trade as its user sees it: taker perspective fields, `owner` = the recipient's API key. */
  private tradeView(t: TradeRec, side: 'TAKER' | 'MAKER', owner: string): WsUserTrade {
    const secs = (ms: number) => String(Math.floor(ms / 1000));
    return {
      event_type: 'trade',
      type: 'TRADE',
      id: t.id,
      taker_order_id: t.taker.orderId,
      market: t.tok.market.conditionId,
      asset_id: t.tok.tokenId,
      side: t.side,
      size: fromMicros(t.size),
      price: fromMicros(t.price),
      fee_rate_bps: t.feeRateBps,
      status: t.status,
      match_time: secs(t.matchAt),
      last_update: secs(t.lastUpdate),
      timestamp: String(t.lastUpdate),
      outcome: t.tok.market.outcomes[t.tok.outcome],
      owner,
      trade_owner: t.taker.owner,
      maker_address: t.taker.address,
      ...(t.txHash ? { transaction_hash: t.txHash } : {}),
      bucket_index: 0,
      trader_side: side,
      maker_orders: t.makers.map((m) => ({
        order_id: m.orderId,
        owner: m.owner,
        maker_address: m.address,
        matched_amount: fromMicros(m.size),
        price: fromMicros(m.price),
        fee_rate_bps: '0',
        asset_id: m.tokenId,
        outcome: t.tok.market.outcomes[m.tokenId === t.tok.tokenId ? t.tok.outcome : 1 - t.tok.outcome] as string,
        side: m.side,
      })),
    };
  }

  // ------------------------------------------------------------------ trade lifecycle and expiry

  /**
   * Advances time to `now` (default: the exchange clock): trades become MINED `mineMs` after the
   * match and CONFIRMED (or FAILED, fills reverted) `confirmMs` later, in time order; GTD orders
   * whose expiration has passed are cancelled. Idempotent for the same `now`.
   */
  tick(now: number = this.now()): void {
    const due: Array<{ t: TradeRec; at: number; phase: 0 | 1 }> = [];
    for (const t of this.pending) {
      if (t.status === 'MATCHED' && t.mineAt <= now) due.push({ t, at: t.mineAt, phase: 0 });
      if (t.doneAt <= now) due.push({ t, at: t.doneAt, phase: 1 });
    }
    due.sort((a, b) => a.at - b.at || a.t.n - b.t.n || a.phase - b.phase);
    for (const { t, at, phase } of due) {
      t.lastUpdate = at;
      if (phase === 0) {
        t.status = 'MINED';
        t.txHash = `0x${sha256(`tx:${this.opts.seed}:${t.id}`)}`;
      } else if (t.doomed) {
        t.status = 'FAILED';
        t.errMsg = 'transaction reverted';
        this.revert(t);
      } else {
        t.status = 'CONFIRMED';
      }
      this.emitTrade(t);
    }
    if (due.length > 0) this.pending = this.pending.filter((t) => t.status === 'MATCHED' || t.status === 'MINED');
    const expired = [...this.gtd]
      .map((id) => this.userOrders.get(id) as UserOrder)
      .filter((o) => BigInt(o.expiration) * 1000n <= BigInt(now));
    if (expired.length > 0) {
      const op: Op = { changes: new Map(), trades: [] };
      for (const o of expired) if (o.status === 'LIVE') this.cancelUserOrder(o, op, 'CANCELED');
      this.flush(op);
    }
    this.advanceClock(now);
    this.schedule();
  }

  /** A FAILED trade (the "ghost fill"): every balance and position move of its fills is undone exactly. */
  private revert(t: TradeRec): void {
    // A resolved round may already be forgotten (pruned): it still counts as resolved.
    const st = this.stateOf(t.tok) as MarketState | undefined;
    const resolved = st === undefined || st.phase === 'resolved';
    const winner = st?.winner;
    for (const m of t.moves) {
      const a = this.acct(m.address);
      a.collateral -= m.collateral;
      if (m.shares === 0n) continue;
      if (resolved) {
        // The shares were already redeemed: undo their payout instead.
        const outcome = m.tokenId === t.tok.tokenId ? t.tok.outcome : 1 - t.tok.outcome;
        if (outcome === winner) a.collateral -= m.shares;
      } else {
        a.positions.set(m.tokenId, (a.positions.get(m.tokenId) ?? 0n) - m.shares);
      }
    }
  }

  /** Trades not yet CONFIRMED or FAILED. */
  get pendingTrades(): number {
    return this.pending.length;
  }

  /** Arms one timer for the next due trade transition or GTD expiry (when timers are enabled). */
  private schedule(): void {
    if (!this.timers || this.closed) return;
    let next = Infinity;
    for (const t of this.pending) next = Math.min(next, t.status === 'MATCHED' ? t.mineAt : t.doneAt);
    for (const id of this.gtd) next = Math.min(next, Number((this.userOrders.get(id) as UserOrder).expiration) * 1000);
    if (next === Infinity || (this.timer && this.timerAt <= next)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.tick();
    }, Math.min(2_147_000_000, Math.max(0, next - this.now())));
    this.timer.unref?.();
  }

  /** Stops the lifecycle timers (pending trades and rounds then only move on explicit `tick` calls). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.secondTimer) clearInterval(this.secondTimer);
    this.secondTimer = undefined;
  }

  /** Arms the once-a-second tick that moves the reference prices and rounds (timers enabled only). */
  private startSecondTimer(): void {
    if (!this.timers || this.closed || this.secondTimer) return;
    this.secondTimer = setInterval(() => this.tick(), 1000);
    this.secondTimer.unref?.();
  }

  /** Reference-price points as they are made (RTDS); starts the per-second clock when timers are enabled. */
  onPrice(listener: PriceListener): () => void {
    const off = this.prices.on(listener);
    this.startSecondTimer();
    return off;
  }

  private stateOf(tok: TokenState): MarketState {
    return this.byGammaId.get(tok.market.gammaId) as MarketState;
  }

  private record(op: Op, token: TokenState, change: LevelChange): void {
    // Only the final aggregate of a level matters to subscribers; keep the first position.
    const key = `${token.tokenId}|${change.side}|${change.price}`;
    const prev = op.changes.get(key);
    if (prev) prev.change = change;
    else op.changes.set(key, { token, change });
  }

  /**
   * Publishes one operation (level changes per market, then trades and fresh books), then applies
   * the tick-size rule to the markets it touched.
   */
  private flush(op: Op): void {
    this.publish(op);
    if (this.tickCheckDepth > 0) return;
    const touched = new Set<MarketState>();
    for (const { token } of op.changes.values()) touched.add(this.stateOf(token));
    for (const t of op.trades) touched.add(this.stateOf(t.token));
    for (const st of touched) this.checkTick(st, true);
  }

  private emit(ev: ExchangeEvent): void {
    for (const l of this.listeners) l(ev);
  }

  private publish(op: Op): void {
    if (this.listeners.size === 0) return;
    const ts = String(this.now());
    const byMarket = new Map<string, WsPriceChange>();
    for (const { token, change } of op.changes.values()) {
      let msg = byMarket.get(token.market.conditionId);
      if (!msg) {
        msg = { event_type: 'price_change', market: token.market.conditionId, timestamp: ts, price_changes: [] };
        byMarket.set(token.market.conditionId, msg);
      }
      const bb = token.book.bestBid();
      const ba = token.book.bestAsk();
      msg.price_changes.push({
        asset_id: token.tokenId,
        price: fromMicros(change.price),
        size: fromMicros(change.size),
        side: change.side,
        hash: change.orderId,
        best_bid: bb === undefined ? '0' : fromMicros(bb),
        best_ask: ba === undefined ? '1' : fromMicros(ba),
      });
    }
    const events: ExchangeEvent[] = [...byMarket.values()];
    const traded = new Set<string>();
    for (const t of op.trades) {
      traded.add(t.token.tokenId);
      events.push({
        event_type: 'last_trade_price',
        asset_id: t.token.tokenId,
        market: t.token.market.conditionId,
        price: fromMicros(t.price),
        side: t.side,
        size: fromMicros(t.size),
        fee_rate_bps: '0',
        timestamp: ts,
      });
    }
    for (const id of traded) {
      const b = this.wsBook(id);
      if (b) events.push(b);
    }
    for (const ev of events) for (const l of this.listeners) l(ev);
  }

  // ------------------------------------------------------------------ simulated makers

  private fairOf(st: MarketState, tok: TokenState): number {
    return tok.outcome === 0 ? st.fair : 1_000_000 - st.fair;
  }

  /** The maker's target levels for a token: DEPTH ticks each side around fair value, best first. */
  private quote(st: MarketState, tok: TokenState): Quote {
    const tick = Number(tok.market.tickSize);
    const fair = this.fairOf(st, tok);
    const bidTop = Math.floor((fair - HALF_SPREAD) / tick) * tick;
    const askBottom = Math.ceil((fair + HALF_SPREAD) / tick) * tick;
    const bids: number[] = [];
    const asks: number[] = [];
    for (let i = 0; i < DEPTH; i++) {
      const b = bidTop - i * tick;
      const a = askBottom + i * tick;
      if (b >= tick && b <= 1_000_000 - tick) bids.push(b);
      if (a >= tick && a <= 1_000_000 - tick) asks.push(a);
    }
    return { bids, asks, bidTop, askBottom };
  }

  private makerSize(): bigint {
    // Whole cents of a share so that every maker notional is an exact number of micro units.
    return BigInt(this.rng.int(5, 250)) * ONE + BigInt(this.rng.int(0, 99)) * 10_000n;
  }

  private makerPlace(tok: TokenState, side: Side, price: bigint, size: bigint, op: Op | undefined): void {
    const id = `0x${sha256(`maker:${this.opts.seed}:${++this.seq}`)}`;
    this.execute(tok, { id, owner: MAKER_OWNER, side, price, shares: size, rest: true, maker: true }, op);
  }

  private makerCancel(tok: TokenState, order: RestingOrder, op: Op): void {
    const res = tok.book.cancel(order.id);
    if (res) this.record(op, tok, res.change);
  }

  /**
   * One maker event: maybe move the market's fair value (random walk reverting to its anchor, with
   * rare jumps; a neg-risk event moves one candidate's weight and renormalises; rounds follow the
   * reference price instead), requote what the move made stale, then add, cancel or replace one order.
   */
  step(): void {
    this.stats.makerEvents++;
    if (this.live.length === 0) return;
    const rng = this.rng;
    const st = rng.pick(this.live);
    const op: Op = { changes: new Map(), trades: [] };
    this.endLags(op);
    if (rng.chance(0.35)) {
      if (st.group) this.moveGroup(st, st.group);
      else if (!st.round) {
        let f = st.fair + Math.round((st.market.anchor - st.fair) * 0.02) + rng.int(-4_000, 4_000);
        if (rng.chance(0.02)) f += (rng.chance(0.5) ? 1 : -1) * rng.int(20_000, 80_000);
        st.fair = Math.min(980_000, Math.max(20_000, f));
      }
    }
    if (this.misRng.next() < MISPRICE_CHANCE) this.mispricingJump(st);
    if (st.group) for (const other of st.group.members) if (other !== st && other.phase === 'open') this.requote(other, op);
    this.requote(st, op);
    const tok = st.tokens[rng.int(0, 1)] as TokenState;
    if (this.lags.get(st.market.gammaId)?.outcome === tok.outcome) {
      // A lagging token's makers do nothing until the lag ends.
      this.flush(op);
      if (op.trades.length > 0) this.schedule();
      return;
    }
    const side: Side = rng.chance(0.5) ? 'BUY' : 'SELL';
    const q = this.quote(st, tok);
    const band = side === 'BUY' ? q.bids : q.asks;
    const mine = tok.book.ordersOn(side, (x) => x.maker);
    const covered = new Set(mine.map((x) => Number(x.price)));
    const gap = band.find((p) => !covered.has(p));
    const r = rng.next();
    if (band.length > 0 && gap !== undefined && r < 0.8) {
      this.makerPlace(tok, side, BigInt(gap), this.makerSize(), op);
    } else if (band.length > 0 && r < 0.45 && mine.length < DEPTH * 3) {
      this.makerPlace(tok, side, BigInt(rng.pick(band)), this.makerSize(), op);
    } else if (r < 0.8 && mine.length > DEPTH) {
      this.makerCancel(tok, rng.pick(mine), op);
    } else if (mine.length > 0 && band.length > 0) {
      this.makerCancel(tok, rng.pick(mine), op);
      this.makerPlace(tok, side, BigInt(rng.pick(band)), this.makerSize(), op);
    } else if (band.length > 0) {
      this.makerPlace(tok, side, BigInt(rng.pick(band)), this.makerSize(), op);
    }
    this.flush(op);
    if (op.trades.length > 0) this.schedule();
  }

  /**
   * A news jump whose rising token's makers lag (see MISPRICE_CHANCE): binary markets and the
   * neg-risk event only, one lag per market at a time.
   */
  private mispricingJump(st: MarketState): void {
    if (st.round || st.phase !== 'open' || this.lags.has(st.market.gammaId)) return;
    const r = this.misRng;
    let outcome: 0 | 1;
    if (st.group) {
      const g = st.group;
      const i = g.members.indexOf(st);
      if (g.members.some((m) => this.lags.has(m.market.gammaId))) return;
      g.weights[i] = Math.min(900_000, (g.weights[i] as number) + r.int(150_000, 250_000));
      this.normalizeGroup(g);
      outcome = 0;
    } else {
      const up = r.chance(0.5);
      const f = Math.min(980_000, Math.max(20_000, st.fair + (up ? 1 : -1) * r.int(30_000, 60_000)));
      if (Math.abs(f - st.fair) < 30_000) return;
      st.fair = f;
      outcome = up ? 0 : 1;
    }
    this.lags.set(st.market.gammaId, { outcome, until: this.stats.makerEvents + r.int(MISPRICE_LAG_MIN, MISPRICE_LAG_MAX) });
  }

  /** Ends the lags that are due: their makers requote, which closes the mispricing. */
  private endLags(op: Op): void {
    for (const [id, lag] of [...this.lags]) {
      if (lag.until > this.stats.makerEvents) continue;
      this.lags.delete(id);
      const st = this.byGammaId.get(id);
      if (st && st.phase === 'open') this.requote(st, op);
    }
  }

  /** Whether a market has a mispricing lag under way (for tests and demos). */
  mispricingLag(id: string): { outcome: 0 | 1; until: number } | undefined {
    const lag = this.lags.get(id);
    return lag ? { ...lag } : undefined;
  }

  /** Pulls the maker quotes a fair-value move made stale and requotes those sides in the same event. */
  private requote(st: MarketState, op: Op): void {
    const tick = Number(st.market.tickSize);
    const lag = this.lags.get(st.market.gammaId);
    for (const tok of st.tokens) {
      if (lag?.outcome === tok.outcome) continue; // its makers lag (a mispricing)
      const q = this.quote(st, tok);
      const stale = (o: RestingOrder) => {
        const p = Number(o.price);
        return o.side === 'BUY'
          ? p > q.bidTop || p < q.bidTop - (DEPTH + 1) * tick
          : p < q.askBottom || p > q.askBottom + (DEPTH + 1) * tick;
      };
      const pulled = new Set<Side>();
      for (const side of ['BUY', 'SELL'] as const) {
        for (const o of tok.book.ordersOn(side, (x) => x.maker && stale(x))) {
          this.makerCancel(tok, o, op);
          pulled.add(side);
        }
      }
      // Requote in the same event, after both sides are pulled (so makers never trade with
      // their own stale quotes), so that a move never leaves a side empty.
      for (const side of pulled) {
        const covered = new Set(tok.book.ordersOn(side, (x) => x.maker).map((x) => Number(x.price)));
        for (const p of side === 'BUY' ? q.bids : q.asks) {
          if (!covered.has(p)) this.makerPlace(tok, side, BigInt(p), this.makerSize(), op);
        }
      }
    }
  }

  // ------------------------------------------------------------------ neg-risk event

  /** One candidate's weight moves (reverting to its anchor, rare jumps); every fair value is renormalised. */
  private moveGroup(st: MarketState, g: NegRiskGroup): void {
    const rng = this.rng;
    const i = g.members.indexOf(st);
    let w = (g.weights[i] as number) + Math.round((st.market.anchor - (g.weights[i] as number)) * 0.02) + rng.int(-4_000, 4_000);
    if (rng.chance(0.02)) w += (rng.chance(0.5) ? 1 : -1) * rng.int(10_000, 40_000);
    g.weights[i] = Math.min(900_000, Math.max(5_000, w));
    this.normalizeGroup(g);
  }

  /** Fair values = weights / Σ weights, so the candidates' YES prices sum to ~1. */
  private normalizeGroup(g: NegRiskGroup): void {
    const total = g.weights.reduce((a, b) => a + b, 0);
    g.members.forEach((m, i) => {
      m.fair = Math.min(995_000, Math.max(5_000, Math.round(((g.weights[i] as number) * 1_000_000) / total)));
    });
  }

  /**
   * Moves an open market's hidden fair value of YES (0..1, by Gamma or condition id) and requotes
   * its makers at once — for demos, fault drills and tests (the tick-size rule applies as usual).
   */
  setFair(id: string, fair: number): void {
    const st = this.byGammaId.get(id) ?? this.byCondition.get(id.toLowerCase());
    if (!st || st.phase !== 'open') throw new RangeError(`no open market ${id}`);
    if (!(fair > 0 && fair < 1)) throw new RangeError('fair must be within (0, 1)');
    st.fair = Math.round(fair * 1_000_000);
    const op: Op = { changes: new Map(), trades: [] };
    this.requote(st, op);
    this.flush(op);
    if (op.trades.length > 0) this.schedule();
  }

  /**
   * The hidden fair value of YES (0..1) of an open market, by Gamma or condition id; undefined when
   * unknown or not open. Simulated informed traders read it; clients only ever see books.
   */
  fairValue(id: string): number | undefined {
    const st = this.byGammaId.get(id) ?? this.byCondition.get(id.toLowerCase());
    return st && st.phase === 'open' ? st.fair / 1_000_000 : undefined;
  }

  /** Current fair values of a neg-risk event's candidates (YES, 0..1), by Gamma id — for tests and demos. */
  negRiskFairs(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const st of this.states) if (st.group) out[st.market.gammaId] = st.fair / 1_000_000;
    return out;
  }

  // ------------------------------------------------------------------ tick size

  /**
   * The venue's tick rule: when a token's best bid rises above 0.96 or its best ask falls below
   * 0.04 the market trades on 0.001; once every best bid is ≤ 0.95 and every best ask ≥ 0.05 it
   * returns to 0.01. A change emits `tick_size_change` for both tokens, requotes the makers on the
   * new grid, and sends fresh `book`s (clients drop their book on a tick change).
   */
  private checkTick(st: MarketState, emit: boolean): void {
    if (st.phase !== 'open') return;
    const m = st.market;
    const tops = st.tokens.map((t) => ({ bid: t.book.bestBid(), ask: t.book.bestAsk() }));
    const extreme = tops.some((t) => (t.bid !== undefined && t.bid > FINE_TICK_ABOVE) || (t.ask !== undefined && t.ask < FINE_TICK_BELOW));
    const calm = tops.every((t) => (t.bid === undefined || t.bid <= COARSE_TICK_BID_MAX) && (t.ask === undefined || t.ask >= COARSE_TICK_ASK_MIN));
    const next = m.tickSize === COARSE_TICK && extreme ? FINE_TICK : m.tickSize === FINE_TICK && calm ? COARSE_TICK : m.tickSize;
    if (next === m.tickSize) return;
    const old = m.tickSize;
    m.tickSize = next;
    this.lags.delete(m.gammaId); // every maker quote is replaced below
    this.tickCheckDepth++;
    try {
      const ts = String(this.now());
      if (emit) {
        for (const t of st.tokens) {
          this.emit({
            event_type: 'tick_size_change',
            asset_id: t.tokenId,
            market: m.conditionId,
            old_tick_size: fromMicros(old),
            new_tick_size: fromMicros(next),
            timestamp: ts,
          });
        }
      }
      const op: Op = { changes: new Map(), trades: [] };
      for (const tok of st.tokens) {
        for (const side of ['BUY', 'SELL'] as const) for (const o of tok.book.ordersOn(side, (x) => x.maker)) this.makerCancel(tok, o, op);
      }
      for (const tok of st.tokens) {
        const q = this.quote(st, tok);
        for (const p of q.bids) this.makerPlace(tok, 'BUY', BigInt(p), this.makerSize(), op);
        for (const p of q.asks) this.makerPlace(tok, 'SELL', BigInt(p), this.makerSize(), op);
      }
      this.flush(op);
      if (emit) for (const t of st.tokens) this.emit(this.wsBook(t.tokenId) as WsBook);
    } finally {
      this.tickCheckDepth--;
    }
  }

  // ------------------------------------------------------------------ rounds and resolution

  private initRounds(o: RoundsOptions): void {
    const seconds = o.roundSeconds ?? DEFAULT_ROUND_SECONDS;
    if (!Number.isInteger(seconds) || seconds < 10) throw new RangeError('roundSeconds must be an integer ≥ 10');
    const wanted = (o.assets ?? REF_ASSETS.map((a) => a.asset)).map((x) => x.toUpperCase());
    const assets = REF_ASSETS.map((asset, index) => ({ asset, index })).filter((a) => wanted.includes(a.asset.asset));
    const nowS = Math.floor(this.now() / 1000);
    const boundary = Math.floor(nowS / seconds) * seconds;
    this.rounds = {
      assets,
      seconds,
      ahead: Math.max(0, o.ahead ?? DEFAULT_AHEAD),
      keepClosed: Math.max(0, o.keepClosed ?? DEFAULT_KEEP_CLOSED),
      boundary,
      byAsset: new Map(assets.map((a) => [a.asset.asset, new Map()])),
    };
    // The current window opens now (its start price is the first reference price), the next ones are listed.
    for (let k = 0; k <= this.rounds.ahead; k++) this.listRounds(boundary + k * seconds, false);
    this.openRounds(boundary);
    if (this.timers) this.startSecondTimer();
  }

  /** Windows (start s) whose rounds exist for an asset. */
  roundStarts(asset: string): number[] {
    return [...(this.rounds?.byAsset.get(asset.toUpperCase())?.keys() ?? [])];
  }

  /** The round length in seconds, undefined without rounds. */
  get roundSeconds(): number | undefined {
    return this.rounds?.seconds;
  }

  /** Lists the rounds of window `startS` (all assets) that do not exist yet. */
  private listRounds(startS: number, emit: boolean): void {
    const r = this.rounds as RoundsRuntime;
    for (const { asset, index } of r.assets) {
      const rounds = r.byAsset.get(asset.asset) as Map<number, MarketState>;
      if (rounds.has(startS)) continue;
      const market = roundMarket({
        seed: this.opts.seed,
        asset,
        assetIndex: index,
        seconds: r.seconds,
        startS,
        listedMs: this.now(),
        index: this.markets.length,
      });
      const st = this.addMarket(market, 'upcoming');
      st.round = { asset, assetIndex: index, startS, endS: startS + r.seconds };
      rounds.set(startS, st);
      if (emit) this.emit(this.newMarketEvent(st));
      this.prune(rounds, r.keepClosed);
    }
  }

  /** Forgets the oldest resolved rounds beyond `keep` (their accounts were paid out already). */
  private prune(rounds: Map<number, MarketState>, keep: number): void {
    const resolved = [...rounds.entries()].filter(([, st]) => st.phase === 'resolved');
    for (const [startS, st] of resolved.slice(0, Math.max(0, resolved.length - keep))) {
      rounds.delete(startS);
      for (const t of st.tokens) this.tokens.delete(t.tokenId);
      this.byGammaId.delete(st.market.gammaId);
      this.byCondition.delete(st.market.conditionId.toLowerCase());
      const i = this.states.indexOf(st);
      if (i >= 0) this.states.splice(i, 1);
      const j = this.markets.indexOf(st.market);
      if (j >= 0) this.markets.splice(j, 1);
    }
  }

  /** Opens the rounds starting at `startS`: start price fixed, makers quote around 0.5. */
  private openRounds(startS: number): void {
    const r = this.rounds as RoundsRuntime;
    for (const { asset } of r.assets) {
      const st = r.byAsset.get(asset.asset)?.get(startS);
      if (!st || st.phase !== 'upcoming') continue;
      const round = st.round as RoundState;
      round.startPrice = this.prices.current(asset).chainlink;
      st.phase = 'open';
      st.openedAt = this.now();
      st.fair = 500_000;
      this.live.push(st);
      const op: Op = { changes: new Map(), trades: [] };
      this.initialQuotes(st, op);
      this.flush(op);
    }
  }

  /** Resolves the rounds ending at `endS` from the reference price now (the price at `endS`). */
  private resolveRounds(endS: number): void {
    const r = this.rounds as RoundsRuntime;
    for (const { asset } of r.assets) {
      for (const st of r.byAsset.get(asset.asset)?.values() ?? []) {
        const round = st.round as RoundState;
        if (round.endS !== endS || st.phase === 'resolved') continue;
        const end = this.prices.current(asset).chainlink;
        round.endPrice = end;
        // A round that never opened (clock jumped past it) resolves from its end price alone: Up.
        this.resolve(st, end >= (round.startPrice ?? end) ? 0 : 1);
      }
    }
  }

  /**
   * Resolves a market: every resting order leaves the book (user orders CANCELED_MARKET_RESOLVED,
   * reservations released exactly), every holder's shares are redeemed (winner 1 pUSD a share,
   * loser 0) and removed, Gamma reports it closed with outcomePrices 1/0, and `market_resolved`
   * goes out. Any open market can be resolved this way (rounds do it at their end).
   */
  resolve(st: MarketState | string, winner: 0 | 1): void {
    const s = typeof st === 'string' ? (this.byGammaId.get(st) ?? this.byCondition.get(st.toLowerCase())) : st;
    if (!s) throw new RangeError(`unknown market ${String(st)}`);
    if (s.phase === 'resolved') return;
    const now = this.now();
    const op: Op = { changes: new Map(), trades: [] };
    for (const tok of s.tokens) {
      for (const side of ['BUY', 'SELL'] as const) {
        for (const o of tok.book.ordersOn(side, () => true)) {
          const uo = o.maker ? undefined : this.userOrders.get(o.id);
          if (uo && uo.status === 'LIVE') this.cancelUserOrder(uo, op, ORDER_STATUS.CANCELED_MARKET_RESOLVED);
          else this.makerCancel(tok, o, op);
        }
      }
    }
    s.phase = 'resolved';
    s.winner = winner;
    s.closedAt = now;
    const li = this.live.indexOf(s);
    if (li >= 0) this.live.splice(li, 1);
    for (const a of this.accounts.values()) {
      for (const tok of s.tokens) {
        const shares = a.positions.get(tok.tokenId);
        a.lockedPositions.delete(tok.tokenId);
        if (shares === undefined) continue;
        a.positions.delete(tok.tokenId);
        if (shares === 0n) continue;
        // 1 pUSD per winning share: the share amount in micro units is the payout in micro units.
        const payout = tok.outcome === winner ? shares : 0n;
        a.collateral += payout;
        push(this.redemptionsByAddress, a.address, {
          address: a.address,
          conditionId: s.market.conditionId,
          tokenId: tok.tokenId,
          outcome: s.market.outcomes[tok.outcome] as string,
          shares: fromMicros(shares),
          payout: fromMicros(payout),
          at: now,
        });
      }
    }
    this.publish(op);
    const m = s.market;
    this.emit({
      event_type: 'market_resolved',
      id: m.gammaId,
      question: m.question,
      market: m.conditionId,
      slug: m.slug,
      description: m.description,
      assets_ids: [...m.tokenIds],
      outcomes: [...m.outcomes],
      winning_asset_id: m.tokenIds[winner],
      winning_outcome: m.outcomes[winner],
      event_message: this.eventMessage(m),
      timestamp: String(now),
      tags: m.tags ?? [],
    });
  }

  private eventMessage(m: SimMarket): WsEventMessage {
    const e = m.event;
    return e
      ? { id: e.id, ticker: e.ticker, slug: e.slug, title: e.title, description: e.description }
      : { id: m.gammaId, ticker: m.slug, slug: m.slug, title: m.question, description: m.description };
  }

  private newMarketEvent(st: MarketState): WsNewMarket {
    const m = st.market;
    const fs = m.feeSchedule;
    return {
      event_type: 'new_market',
      id: m.gammaId,
      question: m.question,
      market: m.conditionId,
      slug: m.slug,
      description: m.description,
      assets_ids: [...m.tokenIds],
      outcomes: [...m.outcomes],
      event_message: this.eventMessage(m),
      timestamp: String(this.now()),
      tags: m.tags ?? [],
      condition_id: m.conditionId,
      active: true,
      clob_token_ids: [...m.tokenIds],
      sports_market_type: '',
      line: '',
      game_start_time: m.eventStartTime ?? '',
      order_price_min_tick_size: fromMicros(m.tickSize),
      group_item_title: m.groupItemTitle ?? '',
      taker_base_fee: '0',
      fees_enabled: fs !== undefined,
      ...(fs
        ? { fee_schedule: { rate: microsToNumber(toMicros(fs.rate)), exponent: fs.exponent, taker_only: fs.takerOnly, rebate_rate: 0 } }
        : {}),
    };
  }

  /**
   * Moves the reference prices and the rounds to `now`: at each window boundary crossed (in time
   * order) the rounds ending there resolve from the price at that second, the rounds starting
   * there open, and the window `ahead` rounds later is listed (`new_market`). Then the open rounds'
   * fair values follow the price (probability that it ends ≥ its start) and their books are requoted.
   */
  private advanceClock(now: number): void {
    const r = this.rounds;
    if (!r) {
      this.prices.advanceTo(now);
      return;
    }
    const L = r.seconds;
    const nowS = Math.floor(now / 1000);
    const last = Math.floor(nowS / L) * L;
    for (let b = r.boundary + L; b <= last; b += L) {
      this.prices.advanceTo(b * 1000);
      r.boundary = b;
      this.resolveRounds(b);
      if (b < last - MAX_MISSED_WINDOWS * L) continue; // long clock jump: skip windows that are long over
      this.openRounds(b);
      this.listRounds(b + r.ahead * L, true);
      this.openRounds(b); // with ahead = 0 the window is listed and opened at once
    }
    this.prices.advanceTo(now);
    const op: Op = { changes: new Map(), trades: [] };
    for (const st of this.live) {
      const round = st.round;
      if (!round || round.startPrice === undefined) continue;
      const p = this.prices.current(round.asset);
      const fair = upFair(p.chainlink, round.startPrice, sigmaPerSecond(round.asset), round.endS - p.second);
      if (Math.abs(fair - st.fair) < ROUND_REQUOTE_MIN) continue;
      st.fair = fair;
      this.requote(st, op);
    }
    if (op.changes.size > 0 || op.trades.length > 0) {
      this.flush(op);
      if (op.trades.length > 0) this.schedule();
    }
  }

  // ------------------------------------------------------------------ snapshots


  /** Why `snapshot` cannot be restored with `opts` (another configuration), undefined when it can. */
  static snapshotMismatch(opts: ExchangeOptions, snapshot: Pick<ExchangeSnapshot, 'v' | 'seed' | 'markets' | 'negRisk' | 'rounds'>): string | undefined {
    if (snapshot.v !== SNAPSHOT_VERSION) return `snapshot format v${String(snapshot.v)}, expected v${SNAPSHOT_VERSION}`;
    if (snapshot.seed !== opts.seed) return `snapshot seed ${snapshot.seed}, configured ${opts.seed}`;
    if (snapshot.markets !== opts.markets) return `snapshot has ${snapshot.markets} markets, configured ${opts.markets}`;
    if (snapshot.negRisk !== (opts.negRisk ?? false)) return `snapshot neg-risk event ${snapshot.negRisk ? 'on' : 'off'}, configured ${opts.negRisk ? 'on' : 'off'}`;
    const want = roundsConfigOf(opts);
    const have = snapshot.rounds;
    if (JSON.stringify(want) !== JSON.stringify(have ?? null)) {
      return `snapshot rounds ${have ? `${have.assets.join(',')}/${have.seconds}s` : 'none'}, configured ${want ? `${want.assets.join(',')}/${want.seconds}s` : 'none'}`;
    }
    return undefined;
  }

  /**
   * Everything needed to continue later exactly from here (see `ExchangeSnapshot`): accounts,
   * user orders, every resting order (makers included) in time priority, trades with their
   * lifecycle, markets, rounds, reference prices, generator states and counters. JSON-safe.
   */
  toSnapshot(): ExchangeSnapshot {
    const s = (x: bigint) => x.toString();
    const marketSnap = (st: MarketState, withBooks: boolean): MarketSnapshot => {
      const m = st.market;
      const r = st.round;
      const rp = r || m.event?.series ? roundParams(m) : undefined;
      return {
        gammaId: m.gammaId,
        phase: st.phase,
        fair: st.fair,
        volume: s(st.volume),
        tickSize: s(m.tickSize),
        ...(st.winner !== undefined ? { winner: st.winner } : {}),
        ...(st.closedAt !== undefined ? { closedAt: st.closedAt } : {}),
        ...(st.openedAt !== undefined ? { openedAt: st.openedAt } : {}),
        ...(rp
          ? {
              round: {
                asset: (REF_ASSETS[r ? r.assetIndex : rp.assetIndex] as RefAsset).asset,
                assetIndex: r ? r.assetIndex : rp.assetIndex,
                startS: r ? r.startS : rp.startS,
                endS: r ? r.endS : rp.endS,
                listedMs: rp.listedMs,
                index: m.index,
                ...(r?.startPrice !== undefined ? { startPrice: r.startPrice } : {}),
                ...(r?.endPrice !== undefined ? { endPrice: r.endPrice } : {}),
              },
            }
          : {}),
        tokens: st.tokens.map((t) => ({
          lastTradePrice: s(t.lastTradePrice),
          book: withBooks
            ? (['BUY', 'SELL'] as const).flatMap((side) =>
                t.book.ordersOn(side, () => true).map((o): BookEntrySnapshot => {
                  const base = [o.id, o.side === 'BUY' ? 'B' : 'S', s(o.price), s(o.remaining), s(o.original), o.createdAt] as const;
                  return o.maker ? [...base] : [...base, o.owner, s(o.locked)];
                }),
              )
            : [],
        })),
      };
    };
    // Every trade: those of user parties plus any pending one, in match order.
    const trades = new Map<string, TradeRec>();
    for (const ts of this.tradesByParty.values()) for (const t of ts) trades.set(t.id, t);
    for (const t of this.pending) trades.set(t.id, t);
    const allTrades = [...trades.values()].sort((a, b) => a.n - b.n);
    // Forgotten rounds still referenced by an order or a trade.
    const orphans = new Map<string, MarketState>();
    const orphan = (tok: TokenState) => {
      if (this.tokens.get(tok.tokenId) === tok || orphans.has(tok.market.gammaId)) return;
      const st = this.makeState(tok.market, 'resolved');
      st.tokens[tok.outcome].lastTradePrice = tok.lastTradePrice;
      orphans.set(tok.market.gammaId, st);
    };
    for (const uo of this.userOrders.values()) orphan(uo.tok);
    for (const t of allTrades) orphan(t.tok);
    const groups = [...new Set(this.states.map((st) => st.group).filter((g): g is NegRiskGroup => g !== undefined))];
    const r = this.rounds;
    const redemptions: Redemption[] = [];
    for (const xs of this.redemptionsByAddress.values()) redemptions.push(...xs);
    return {
      v: SNAPSHOT_VERSION,
      seed: this.opts.seed,
      markets: this.opts.markets,
      negRisk: this.opts.negRisk ?? false,
      rounds: roundsConfigOf(this.opts),
      savedAt: this.now(),
      seq: this.seq,
      stats: { ...this.stats },
      rng: this.rng.getState(),
      failRng: this.failRng.getState(),
      misRng: this.misRng.getState(),
      lags: [...this.lags].map(([id, l]) => [id, l.outcome, l.until] as [string, 0 | 1, number]),
      prices: this.prices.toSnapshot(),
      states: this.states.map((st) => marketSnap(st, true)),
      orphans: [...orphans.values()].map((st) => marketSnap(st, false)),
      live: this.live.map((st) => st.market.gammaId),
      groups: groups.map((g) => ({ members: g.members.map((m) => m.market.gammaId), weights: [...g.weights] })),
      roundsState: r
        ? {
            boundary: r.boundary,
            byAsset: Object.fromEntries([...r.byAsset].map(([a, m]) => [a, [...m].map(([startS, st]) => [startS, st.market.gammaId] as [number, string])])),
          }
        : null,
      accounts: [...this.accounts.values()].map((a) => ({
        address: a.address,
        collateral: s(a.collateral),
        lockedCollateral: s(a.lockedCollateral),
        positions: [...a.positions].map(([k, v]) => [k, s(v)] as [string, string]),
        lockedPositions: [...a.lockedPositions].map(([k, v]) => [k, s(v)] as [string, string]),
      })),
      orders: [...this.userOrders.values()].map((o) => ({
        id: o.id,
        owner: o.owner,
        address: o.address,
        parties: [...o.parties],
        tokenId: o.tok.tokenId,
        side: o.side,
        price: s(o.price),
        original: s(o.original),
        matched: s(o.matched),
        status: o.status,
        trades: [...o.trades],
        orderType: o.orderType,
        expiration: o.expiration,
        createdAt: o.createdAt,
      })),
      trades: allTrades.map((t) => ({
        id: t.id,
        n: t.n,
        tokenId: t.tok.tokenId,
        side: t.side,
        price: s(t.price),
        size: s(t.size),
        notional: s(t.notional),
        fee: s(t.fee),
        feeRateBps: t.feeRateBps,
        taker: { orderId: t.taker.orderId, owner: t.taker.owner, address: t.taker.address },
        makers: t.makers.map((m) => ({
          orderId: m.orderId,
          owner: m.owner,
          address: m.address,
          size: s(m.size),
          price: s(m.price),
          side: m.side,
          ...(m.tokenId !== t.tok.tokenId ? { tokenId: m.tokenId } : {}),
        })),
        status: t.status,
        matchAt: t.matchAt,
        lastUpdate: t.lastUpdate,
        mineAt: t.mineAt,
        doneAt: t.doneAt,
        ...(t.txHash ? { txHash: t.txHash } : {}),
        errMsg: t.errMsg,
        doomed: t.doomed,
        moves: t.moves.map((mv) => [mv.address, mv.tokenId, s(mv.collateral), s(mv.shares)] as [string, string, string, string]),
      })),
      pending: this.pending.map((t) => t.id),
      gtd: [...this.gtd],
      seenOrders: [...this.seenOrders],
      redemptions,
    };
  }

  /** Rebuilds every piece of state from a snapshot (constructor path; the exchange is still empty). */
  private restoreSnapshot(snap: ExchangeSnapshot): void {
    if (typeof snap !== 'object' || snap === null) throw new TypeError('snapshot: not an object');
    const why = Exchange.snapshotMismatch(this.opts, snap);
    if (why) throw new SnapshotMismatchError(why);
    const seed = this.opts.seed;
    const now = this.now();
    this.rng.setState(arr(snap.rng, 'rng'));
    this.failRng.setState(arr(snap.failRng, 'failRng'));
    if (snap.misRng !== undefined) this.misRng.setState(arr(snap.misRng, 'misRng'));
    this.seq = num(snap.seq, 'seq');
    for (const k of ['ordersAccepted', 'ordersRejected', 'trades', 'makerEvents'] as const) this.stats[k] = num(snap.stats?.[k], `stats.${k}`);
    this.prices.restore(snap.prices);

    // Markets: the generated ones come from the seed again, rounds are regenerated from their window.
    const generated = new Map<string, SimMarket>();
    for (const m of generateMarkets(seed, this.opts.markets)) generated.set(m.gammaId, m);
    if (this.opts.negRisk) for (const m of generateNegRiskEvent(seed, this.opts.markets)) generated.set(m.gammaId, m);
    const allTokens = new Map<string, TokenState>();
    const build = (ms: MarketSnapshot): MarketState => {
      let market: SimMarket;
      const r = ms.round;
      if (r) {
        const asset = REF_ASSETS[num(r.assetIndex, 'round.assetIndex')];
        if (!asset || asset.asset !== r.asset) throw new TypeError(`snapshot: unknown round asset ${String(r.asset)}`);
        market = roundMarket({
          seed,
          asset,
          assetIndex: r.assetIndex,
          seconds: num(r.endS, 'round.endS') - num(r.startS, 'round.startS'),
          startS: r.startS,
          listedMs: num(r.listedMs, 'round.listedMs'),
          index: num(r.index, 'round.index'),
        });
      } else {
        const m = generated.get(ms.gammaId);
        if (!m) throw new TypeError(`snapshot: unknown market ${String(ms.gammaId)}`);
        generated.delete(ms.gammaId);
        market = m;
      }
      if (market.gammaId !== ms.gammaId) throw new TypeError(`snapshot: round ${market.slug} regenerates as ${market.gammaId}, not ${ms.gammaId}`);
      if (!['upcoming', 'open', 'resolved'].includes(ms.phase)) throw new TypeError(`snapshot: bad phase of ${ms.gammaId}`);
      market.tickSize = big(ms.tickSize, 'tickSize');
      const st = this.makeState(market, ms.phase);
      st.fair = num(ms.fair, 'fair');
      st.volume = big(ms.volume, 'volume');
      if (ms.winner !== undefined) st.winner = ms.winner;
      if (ms.closedAt !== undefined) st.closedAt = num(ms.closedAt, 'closedAt');
      if (ms.openedAt !== undefined) st.openedAt = num(ms.openedAt, 'openedAt');
      if (r) {
        st.round = { asset: REF_ASSETS[r.assetIndex] as RefAsset, assetIndex: r.assetIndex, startS: r.startS, endS: r.endS };
        if (r.startPrice !== undefined) st.round.startPrice = num(r.startPrice, 'startPrice');
        if (r.endPrice !== undefined) st.round.endPrice = num(r.endPrice, 'endPrice');
      }
      const toks = arr(ms.tokens, 'tokens');
      st.tokens.forEach((t, i) => {
        t.lastTradePrice = big(toks[i]?.lastTradePrice, 'lastTradePrice');
        allTokens.set(t.tokenId, t);
      });
      return st;
    };
    const registered: Array<[MarketSnapshot, MarketState]> = [];
    for (const ms of arr(snap.states, 'states')) {
      const st = build(ms);
      this.register(st);
      registered.push([ms, st]);
    }
    if (generated.size > 0) throw new TypeError(`snapshot: ${generated.size} generated markets missing`);
    for (const ms of arr(snap.orphans, 'orphans')) build(ms);
    this.live.length = 0;
    for (const id of arr(snap.live, 'live')) {
      const st = this.byGammaId.get(id);
      if (!st || st.phase !== 'open') throw new TypeError(`snapshot: live market ${id} is not open`);
      this.live.push(st);
    }
    for (const g of arr(snap.groups, 'groups')) {
      const members = arr(g.members, 'group.members').map((id) => this.byGammaId.get(id) as MarketState);
      if (members.some((m) => !m)) throw new TypeError('snapshot: unknown neg-risk member');
      const group: NegRiskGroup = { members, weights: arr(g.weights, 'group.weights').map((w) => num(w, 'weight')) };
      for (const m of members) m.group = group;
    }
    const ro = this.opts.rounds;
    if (ro && snap.roundsState) {
      const cfg = roundsConfigOf(this.opts) as NonNullable<ExchangeSnapshot['rounds']>;
      const byAsset = new Map<string, Map<number, MarketState>>();
      for (const a of cfg.assets) {
        const m = new Map<number, MarketState>();
        for (const [startS, id] of snap.roundsState.byAsset[a] ?? []) {
          const st = this.byGammaId.get(id);
          if (!st?.round) throw new TypeError(`snapshot: round ${id} unknown`);
          m.set(startS, st);
        }
        byAsset.set(a, m);
      }
      this.rounds = {
        assets: REF_ASSETS.map((asset, index) => ({ asset, index })).filter((a) => cfg.assets.includes(a.asset.asset)),
        seconds: cfg.seconds,
        ahead: Math.max(0, ro.ahead ?? DEFAULT_AHEAD),
        keepClosed: Math.max(0, ro.keepClosed ?? DEFAULT_KEEP_CLOSED),
        boundary: num(snap.roundsState.boundary, 'boundary'),
        byAsset,
      };
    } else if (ro) {
      throw new TypeError('snapshot: rounds state missing');
    }

    // Accounts, then user orders, then the books (resting orders refer to both by id).
    for (const a of arr(snap.accounts, 'accounts')) {
      const key = String(a.address).toLowerCase();
      this.accounts.set(key, {
        address: key,
        collateral: big(a.collateral, 'collateral'),
        lockedCollateral: big(a.lockedCollateral, 'lockedCollateral'),
        positions: new Map(arr(a.positions, 'positions').map(([k, v]) => [k, big(v, 'position')])),
        lockedPositions: new Map(arr(a.lockedPositions, 'lockedPositions').map(([k, v]) => [k, big(v, 'lockedPosition')])),
      });
    }
    for (const o of arr(snap.orders, 'orders')) {
      const tok = allTokens.get(o.tokenId);
      if (!tok) throw new TypeError(`snapshot: order ${o.id} on unknown token`);
      const uo: UserOrder = {
        id: o.id,
        owner: o.owner,
        address: o.address,
        parties: [...arr(o.parties, 'parties')],
        tok,
        side: o.side,
        price: big(o.price, 'price'),
        original: big(o.original, 'original'),
        matched: big(o.matched, 'matched'),
        status: o.status,
        trades: [...arr(o.trades, 'order.trades')],
        orderType: o.orderType,
        expiration: o.expiration,
        createdAt: num(o.createdAt, 'createdAt'),
      };
      this.userOrders.set(uo.id, uo);
      for (const p of uo.parties) push(this.ordersByParty, p, uo);
    }
    for (const [ms, st] of registered) {
      st.tokens.forEach((tok, i) => {
        for (const e of arr(ms.tokens[i]?.book, 'book')) {
          const [id, side, price, remaining, original, createdAt, owner, locked] = e;
          const maker = owner === undefined;
          if (!maker && !this.userOrders.has(id)) throw new TypeError(`snapshot: resting order ${id} has no user order`);
          tok.book.add({
            id,
            owner: maker ? MAKER_OWNER : owner,
            tokenId: tok.tokenId,
            side: side === 'B' ? 'BUY' : 'SELL',
            price: big(price, 'book price'),
            remaining: big(remaining, 'book remaining'),
            original: big(original, 'book original'),
            maker,
            locked: maker ? 0n : big(locked, 'book locked'),
            createdAt: num(createdAt, 'book createdAt'),
          });
        }
      });
    }

    // Trades; the pending ones keep their remaining delays across the downtime.
    const shift = now - num(snap.savedAt, 'savedAt');
    const pendingIds = new Set(arr(snap.pending, 'pending'));
    const byId = new Map<string, TradeRec>();
    for (const x of arr(snap.trades, 'trades')) {
      const tok = allTokens.get(x.tokenId);
      if (!tok) throw new TypeError(`snapshot: trade ${x.id} on unknown token`);
      const pending = pendingIds.has(x.id);
      const t: TradeRec = {
        id: x.id,
        n: num(x.n, 'trade.n'),
        tok,
        side: x.side,
        price: big(x.price, 'trade.price'),
        size: big(x.size, 'trade.size'),
        notional: big(x.notional, 'trade.notional'),
        fee: big(x.fee, 'trade.fee'),
        feeRateBps: x.feeRateBps,
        taker: { ...x.taker, order: this.userOrders.get(x.taker.orderId) },
        makers: arr(x.makers, 'trade.makers').map((m) => ({
          orderId: m.orderId,
          owner: m.owner,
          address: m.address,
          order: this.userOrders.get(m.orderId),
          size: big(m.size, 'maker.size'),
          price: big(m.price, 'maker.price'),
          side: m.side,
          tokenId: m.tokenId === undefined ? tok.tokenId : String(m.tokenId),
        })),
        status: x.status,
        matchAt: num(x.matchAt, 'matchAt'),
        lastUpdate: num(x.lastUpdate, 'lastUpdate'),
        mineAt: num(x.mineAt, 'mineAt') + (pending ? shift : 0),
        doneAt: num(x.doneAt, 'doneAt') + (pending ? shift : 0),
        ...(x.txHash ? { txHash: x.txHash } : {}),
        errMsg: x.errMsg,
        doomed: x.doomed === true,
        moves: arr(x.moves, 'moves').map(([address, tokenId, c, sh]) => ({ address, tokenId, collateral: big(c, 'move'), shares: big(sh, 'move') })),
      };
      byId.set(t.id, t);
      for (const p of this.partiesOf(t)) push(this.tradesByParty, p, t);
    }
    for (const id of pendingIds) {
      const t = byId.get(id);
      if (!t) throw new TypeError(`snapshot: pending trade ${id} unknown`);
      this.pending.push(t);
    }
    for (const [id, outcome, until] of snap.lags === undefined ? [] : arr(snap.lags, 'lags')) {
      const st = this.byGammaId.get(id);
      if (!st || st.phase !== 'open' || (outcome !== 0 && outcome !== 1)) throw new TypeError(`snapshot: bad mispricing lag ${String(id)}`);
      this.lags.set(id, { outcome, until: num(until, 'lag.until') });
    }
    for (const id of arr(snap.gtd, 'gtd')) if (this.userOrders.get(id)?.status === 'LIVE') this.gtd.add(id);
    for (const id of arr(snap.seenOrders, 'seenOrders')) this.seenOrders.add(id);
    for (const r of arr(snap.redemptions, 'redemptions')) push(this.redemptionsByAddress, r.address, { ...r });
    this.schedule();
    if (this.rounds) this.startSecondTimer();
  }
}
