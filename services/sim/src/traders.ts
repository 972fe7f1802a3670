import { createHash } from 'node:crypto';
import type { PostOrderBody } from '@polybot/polymarket';
import { fromMicros, MICROS_PER_UNIT, mulMicros, toMicros } from '@polybot/protocol';
import { markPrice, userFill } from './data-api.js';
import type { Exchange, UserEvent } from './exchange.js';
import type { SimMarket } from './markets.js';
import { topOfBook, type TopOfBook } from './quotes.js';
import { Rng } from './rng.js';

/**
 * Simulated takers: ~20 wallets that trade against the simulated makers through the engine's
 * order path, so that wallet tracking and copy trading have real trades to follow.
 *
 * Every wallet has a skill in [0, 1]. It values a market's YES token at the hidden fair value
 * pulled toward the market's anchor (the level the engine's random walk reverts to: anticipating
 * the reversion is the only edge available against makers that requote at once after every move),
 * plus Gaussian noise of (1 − skill) × NOISE. It buys a token whose best ask (plus taker fee) is
 * below that value by MARGIN, and sells holdings whose best bid is above it by MARGIN. Skilled
 * wallets therefore trade rarely and on real deviations; unskilled ones trade often and at random.
 * One wallet is an arbitrageur: it buys YES + NO when their asks sum below 1 and every YES of a
 * neg-risk event when their asks sum below 1 (after fees).
 *
 * Orders are FAK/FOK, on the tick, 5–50 shares, and never short (sells only available shares).
 * Deterministic from the sim seed: its own generator, deterministic wallets, and no wall clock
 * (the clock is injectable; the exchange clock by default).
 */

const ONE = MICROS_PER_UNIT;
/** Noise (YES probability, micro units) an unskilled wallet's value carries. */
const NOISE = 150_000;
/** Edge a wallet wants beyond price and fee before it trades, micro units. */
const MARGIN = 10_000;
/** Share of the distance fair → anchor an informed wallet expects to be recovered. */
const REVERSION = 0.6;
/** Most shares in one order (the smallest is 5). */
const MAX_ORDER_SHARES = 50n * ONE;
/** Most shares a wallet holds of one token. */
const MAX_POSITION = 300n * ONE;
/** Most shares the arbitrageur takes per opportunity. */
const ARB_MAX_SHARES = 100n * ONE;
/** Edge (micro units per set) below which the arbitrageur ignores a mispricing. */
const ARB_MIN_EDGE = 1_000n;
const ZERO32 = `0x${'0'.repeat(64)}`;
/** Any 65-byte signature: the engine path does not verify it (the HTTP route does). */
const DUMMY_SIGNATURE = `0x${'00'.repeat(65)}`;
const TICK_MS = 100;
const MAX_STEPS_PER_TICK = 50;

export type TraderStyle = 'informed' | 'mixed' | 'noise' | 'arbitrageur';

export interface TraderProfile {
  /** Wallet address (lower case), also the Data API `proxyWallet`. */
  address: string;
  /** Display name (`name`/`pseudonym` in the Data API). */
  name: string;
  /** 0 (random) … 1 (knows the value exactly). */
  skill: number;
  style: TraderStyle;
}

/** One fill of a simulated wallet, as recorded from the user channel. */
export interface TraderFill {
  tradeId: string;
  address: string;
  market: string;
  tokenId: string;
  side: 'BUY' | 'SELL';
  /** Decimal strings. */
  price: string;
  size: string;
  status: string;
  /** Exchange clock at the match, unix ms. */
  at: number;
}

export interface TradersOptions {
  /** The sim seed; the traders use their own generator derived from it. */
  seed: number;
  /** Number of wallets, the arbitrageur included (default 20, at least 2). */
  count?: number;
  /** Trader decisions per second, all wallets together, for `start()` (default 4). */
  rate?: number;
  /** Collateral each wallet is topped up to at creation, micro units (default 1000 pUSD). */
  bankroll?: bigint;
  /** Clock for the live timer and order timestamps, unix ms (default: the exchange clock). */
  now?: () => number;
  /** Called when a timer step throws (it never stops the loop). */
  onError?: (err: unknown) => void;
  /**
   * Continue from a `toSnapshot()` of an earlier process (taken together with the exchange's
   * snapshot): same generator state, salts, fills, PnL baselines and stats; nobody is topped up
   * (`bankroll` is ignored). Throws `TradersSnapshotError` when the snapshot belongs to another
   * seed/count or is malformed — the exchange is not touched then.
   */
  restore?: TradersSnapshot;
}

export const TRADERS_SNAPSHOT_VERSION = 1;

type TraderStats = { steps: number; orders: number; rejected: number; fills: number; mispricings: number; arbitrages: number; errors: number };
const STAT_KEYS = ['steps', 'orders', 'rejected', 'fills', 'mispricings', 'arbitrages', 'errors'] as const satisfies ReadonlyArray<keyof TraderStats>;

/** Everything `Traders` needs to continue exactly (JSON-safe: bigints as decimal strings). */
export interface TradersSnapshot {
  v: typeof TRADERS_SNAPSHOT_VERSION;
  seed: number;
  /** Number of wallets (after the at-least-2 rule). */
  count: number;
  /** The traders' generator state (four uint32). */
  rng: [number, number, number, number];
  /** Last order salt used. */
  salt: number;
  /** In creation order (the arbitrageur first). */
  wallets: Array<{ address: string; /** Collateral at creation, micro units, decimal string. */ baseline: string; fills: TraderFill[] }>;
  stats: TraderStats;
}

/** A traders snapshot that cannot be restored: `mismatch` = another seed/count/version, `malformed` = bad content. */
export class TradersSnapshotError extends Error {
  override name = 'TradersSnapshotError';
  constructor(
    readonly kind: 'mismatch' | 'malformed',
    message: string,
  ) {
    super(message);
  }
}

/** What one `step()` did. */
export interface StepResult {
  trader?: string;
  action: 'idle' | 'buy' | 'sell' | 'rejected';
  tokenId?: string;
  /** Sets bought by the arbitrageur during this step (0 without a mispricing). */
  arbitrages: number;
}

interface Wallet extends TraderProfile {
  owner: string;
  /** Collateral at creation (micro units): the PnL baseline. */
  baseline: bigint;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function uuidFrom(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const floorTo = (v: bigint, step: bigint) => (v >= 0n ? (v / step) * step : -((-v + step - 1n) / step) * step);
const ceilTo = (v: bigint, step: bigint) => -floorTo(-v, step);
const minB = (a: bigint, b: bigint) => (a < b ? a : b);

const DEC = /^-?\d{1,80}$/;
const isStr = (x: unknown): x is string => typeof x === 'string';
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** Throws `TradersSnapshotError('malformed')` unless `s` (of the right seed/count) is well formed. */
function validateSnapshot(s: TradersSnapshot, count: number): void {
  const bad = (what: string): never => {
    throw new TradersSnapshotError('malformed', `traders snapshot: ${what}`);
  };
  if (!Array.isArray(s.rng) || s.rng.length !== 4 || !s.rng.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) bad('rng is not four uint32 values');
  if (!isCount(s.salt)) bad('salt is not a non-negative integer');
  if (typeof s.stats !== 'object' || s.stats === null) bad('stats missing');
  for (const k of STAT_KEYS) if (!isCount(s.stats[k])) bad(`stats.${k} is not a non-negative integer`);
  if (!Array.isArray(s.wallets) || s.wallets.length !== count) bad(`wallets is not a list of ${count}`);
  s.wallets.forEach((w, i) => {
    if (typeof w !== 'object' || w === null) bad(`wallets[${i}] is not an object`);
    if (w.address !== traderAddress(s.seed, i)) bad(`wallets[${i}].address ${String(w.address)} is not trader ${i} of seed ${s.seed}`);
    if (!isStr(w.baseline) || !DEC.test(w.baseline)) bad(`wallets[${i}].baseline is not a decimal integer string`);
    if (!Array.isArray(w.fills)) bad(`wallets[${i}].fills is not a list`);
    w.fills.forEach((f, j) => {
      const ok =
        typeof f === 'object' &&
        f !== null &&
        f.address === w.address &&
        [f.tradeId, f.market, f.tokenId, f.price, f.size, f.status].every(isStr) &&
        (f.side === 'BUY' || f.side === 'SELL') &&
        Number.isFinite(f.at);
      if (!ok) bad(`wallets[${i}].fills[${j}] is malformed`);
    });
  });
}

/** Deterministic wallet address of simulated trader `i` for a seed. */
export function traderAddress(seed: number, i: number): string {
  return `0x${sha256(`polybot-sim-trader:${seed}:${i}`).slice(0, 40)}`;
}

export class Traders {
  private readonly rng: Rng;
  private readonly wallets: Wallet[];
  private readonly byAddress = new Map<string, Wallet>();
  private readonly fillsByAddress = new Map<string, TraderFill[]>();
  private readonly fillById = new Map<string, TraderFill[]>();
  private readonly now: () => number;
  private readonly rate: number;
  private readonly unsubscribe: () => void;
  private timer: NodeJS.Timeout | undefined;
  private salt = 0;
  readonly stats: TraderStats = { steps: 0, orders: 0, rejected: 0, fills: 0, mispricings: 0, arbitrages: 0, errors: 0 };

  /**
   * Why `snapshot` (any parsed JSON) cannot be restored with `opts`, undefined when it can. Checks
   * the version, seed and wallet count only; content errors surface from the constructor.
   */
  static snapshotMismatch(opts: Pick<TradersOptions, 'seed' | 'count'>, snapshot: unknown): string | undefined {
    if (typeof snapshot !== 'object' || snapshot === null || Array.isArray(snapshot)) return 'traders snapshot is not a JSON object';
    const s = snapshot as Partial<TradersSnapshot>;
    if (s.v !== TRADERS_SNAPSHOT_VERSION) return `traders snapshot format v${String(s.v)}, expected v${TRADERS_SNAPSHOT_VERSION}`;
    if (s.seed !== opts.seed) return `traders snapshot seed ${String(s.seed)}, configured ${opts.seed}`;
    const count = Math.max(2, opts.count ?? 20);
    if (s.count !== count) return `traders snapshot has ${String(s.count)} wallets, configured ${count}`;
    return undefined;
  }

  /**
   * Traders restored from `saved` (e.g. `openExchange(...).extras.traders`) when it is a usable
   * snapshot for `opts`, else fresh ones (with `opts.bankroll`); `reason` says why it was not used
   * (undefined when restored or when nothing was saved).
   */
  static open(exchange: Exchange, opts: Omit<TradersOptions, 'restore'>, saved: unknown): { traders: Traders; restored: boolean; reason?: string } {
    if (saved === undefined) return { traders: new Traders(exchange, opts), restored: false };
    try {
      return { traders: new Traders(exchange, { ...opts, restore: saved as TradersSnapshot }), restored: true };
    } catch (err) {
      if (!(err instanceof TradersSnapshotError)) throw err;
      return { traders: new Traders(exchange, opts), restored: false, reason: err.message };
    }
  }

  constructor(
    private readonly exchange: Exchange,
    private readonly opts: TradersOptions,
  ) {
    this.rng = new Rng((opts.seed ^ 0x7ade5) >>> 0);
    this.now = opts.now ?? (() => exchange.nowMs());
    this.rate = opts.rate ?? 4;
    const count = Math.max(2, opts.count ?? 20);
    const bankroll = opts.bankroll ?? 1000n * ONE;
    const snap = opts.restore;
    if (snap) {
      const why = Traders.snapshotMismatch(opts, snap);
      if (why) throw new TradersSnapshotError('mismatch', why);
      validateSnapshot(snap, count);
    }
    this.wallets = [];
    for (let i = 0; i < count; i++) {
      const address = traderAddress(opts.seed, i);
      // Wallet 0 is the arbitrageur; the others spread over the skill range, with jitter.
      const skill = i === 0 ? 1 : Math.round(Math.min(1, Math.max(0, (i - 1 + this.rng.next()) / (count - 1))) * 1000) / 1000;
      const style: TraderStyle = i === 0 ? 'arbitrageur' : skill >= 0.7 ? 'informed' : skill <= 0.3 ? 'noise' : 'mixed';
      const name = `sim-${style}-${String(i).padStart(2, '0')}`;
      exchange.ensureAccount(address);
      const saved = snap?.wallets[i];
      if (!saved) {
        const available = exchange.availableBalance(address);
        if (available < bankroll) exchange.fund(address, bankroll - available);
      }
      const acct = exchange.account(address);
      const w: Wallet = {
        address,
        name,
        skill,
        style,
        owner: uuidFrom(sha256(`polybot-sim-trader-key:${address}`)),
        baseline: saved ? BigInt(saved.baseline) : acct ? toMicros(acct.collateral) : bankroll,
      };
      this.wallets.push(w);
      this.byAddress.set(address, w);
      const fills: TraderFill[] = [];
      this.fillsByAddress.set(address, fills);
      for (const f of saved?.fills ?? []) {
        const fill: TraderFill = { ...f };
        fills.push(fill);
        const xs = this.fillById.get(fill.tradeId);
        if (xs) xs.push(fill);
        else this.fillById.set(fill.tradeId, [fill]);
      }
    }
    if (snap) {
      this.rng.setState(snap.rng);
      this.salt = snap.salt;
      for (const k of STAT_KEYS) this.stats[k] = snap.stats[k];
    }
    this.unsubscribe = exchange.onUser((ev) => this.record(ev));
  }

  /**
   * The traders' state for a later `restore` (save it with the exchange's snapshot taken at the
   * same moment). JSON-safe; the live timer's phase is not part of it.
   */
  toSnapshot(): TradersSnapshot {
    return {
      v: TRADERS_SNAPSHOT_VERSION,
      seed: this.opts.seed,
      count: this.wallets.length,
      rng: this.rng.getState(),
      salt: this.salt,
      wallets: this.wallets.map((w) => ({
        address: w.address,
        baseline: w.baseline.toString(),
        fills: (this.fillsByAddress.get(w.address) ?? []).map((f) => ({ ...f })),
      })),
      stats: { ...this.stats },
    };
  }

  /** The simulated wallets, in creation order (the arbitrageur first). */
  get profiles(): TraderProfile[] {
    return this.wallets.map(({ address, name, skill, style }) => ({ address, name, skill, style }));
  }

  /** A simulated wallet by address (case-insensitive). */
  profile(address: string): TraderProfile | undefined {
    const w = this.byAddress.get(address.toLowerCase());
    return w ? { address: w.address, name: w.name, skill: w.skill, style: w.style } : undefined;
  }

  /** Recorded fills of a simulated wallet, oldest first (FAILED ones keep their status). */
  fills(address: string): TraderFill[] {
    return [...(this.fillsByAddress.get(address.toLowerCase()) ?? [])];
  }

  /**
   * Total PnL of a wallet, micro units: collateral plus every position valued at its mid (1/0 once
   * resolved, redemptions being collateral already), minus the collateral it started with. Equals
   * realized + unrealized PnL net of fees.
   */
  pnl(address: string): bigint {
    const w = this.byAddress.get(address.toLowerCase());
    const acct = this.exchange.account(address);
    if (!w || !acct) return 0n;
    let equity = toMicros(acct.collateral);
    for (const [tokenId, size] of Object.entries(acct.positions)) {
      const shares = toMicros(size);
      if (shares === 0n) continue;
      equity += mulMicros(shares, markPrice(this.exchange, tokenId));
    }
    return equity - w.baseline;
  }

  /** Starts the live loop at `rate` decisions per second (idempotent). */
  start(): void {
    if (this.timer || this.rate <= 0) return;
    const t0 = this.now();
    let done = 0;
    this.timer = setInterval(() => {
      const due = Math.floor(((this.now() - t0) * this.rate) / 1000);
      const n = Math.min(due - done, MAX_STEPS_PER_TICK);
      done = due; // after a stall, skip the backlog instead of bursting it
      for (let i = 0; i < n; i++) {
        try {
          this.step();
        } catch (err) {
          this.stats.errors++;
          this.opts.onError?.(err);
        }
      }
    }, TICK_MS);
    this.timer.unref?.();
  }

  /** Stops the live loop; `close()` also stops listening to the exchange. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.stop();
    this.unsubscribe();
  }

  /** One decision: the arbitrageur scans for mispricings, then one other wallet may trade one market. */
  step(): StepResult {
    this.stats.steps++;
    const arbitrages = this.arbitrage(this.wallets[0] as Wallet);
    const open = this.exchange.markets.filter((m) => this.exchange.fairValue(m.gammaId) !== undefined);
    if (open.length === 0) return { action: 'idle', arbitrages };
    const w = this.rng.pick(this.wallets.slice(1));
    const m = this.rng.pick(open);
    const noise = this.gaussian() * (1 - w.skill) * NOISE;
    const sizeShares = BigInt(this.rng.int(5, Number(MAX_ORDER_SHARES / ONE))) * ONE;
    const fok = this.rng.chance(0.3);
    const fair = Math.round((this.exchange.fairValue(m.gammaId) as number) * 1_000_000);
    // Rounds follow the reference price (no anchor to revert to): their value is the fair value.
    const anchored = m.event?.series === undefined ? fair + REVERSION * (m.anchor - fair) : fair;
    const yes = BigInt(Math.round(Math.min(990_000, Math.max(10_000, anchored + noise))));

    type Cand = { tokenId: string; side: 'BUY' | 'SELL'; edge: bigint; limit: bigint; tick: bigint; top: TopOfBook };
    let best: Cand | undefined;
    for (const i of [0, 1] as const) {
      const tokenId = m.tokenIds[i];
      const book = this.exchange.bookSummary(tokenId);
      if (!book) continue;
      const top = topOfBook(book);
      const tick = book.tick_size !== undefined ? toMicros(book.tick_size) : m.tickSize;
      const value = i === 0 ? yes : ONE - yes;
      if (top.ask !== undefined) {
        const fee = this.exchange.feeFor(m, ONE, top.ask);
        const edge = value - top.ask - fee;
        if (edge > MARGIN && (!best || edge > best.edge)) {
          best = { tokenId, side: 'BUY', edge, limit: floorTo(value - fee - BigInt(MARGIN), tick), tick, top };
        }
      }
      if (top.bid !== undefined && this.exchange.availableBalance(w.address, tokenId) > 0n) {
        const fee = this.exchange.feeFor(m, ONE, top.bid);
        const edge = top.bid - fee - value;
        if (edge > MARGIN && (!best || edge > best.edge)) {
          best = { tokenId, side: 'SELL', edge, limit: ceilTo(value + fee + BigInt(MARGIN), tick), tick, top };
        }
      }
    }
    if (!best) return { trader: w.address, action: 'idle', arbitrages };
    const { tokenId, side, tick } = best;
    const limit = side === 'BUY' ? minB(best.limit, ONE - tick) : best.limit < tick ? tick : best.limit;
    let shares: bigint;
    if (side === 'BUY') {
      const held = this.exchange.availableBalance(w.address, tokenId);
      shares = minB(sizeShares, MAX_POSITION - held);
      // Keep a reserve for the fee; whole shares only.
      const cash = this.exchange.availableBalance(w.address);
      const affordable = ((cash * 9n) / 10n / limit) * ONE;
      shares = minB(shares, affordable);
      // A marketable BUY must be worth at least $1.
      if (mulMicros(limit, shares) < ONE) shares = ceilTo((ONE * ONE) / limit, ONE);
      if (shares < 5n * ONE || shares > MAX_ORDER_SHARES || shares + held > MAX_POSITION || mulMicros(limit, shares) * 10n > cash * 9n) {
        return { trader: w.address, action: 'idle', arbitrages };
      }
    } else {
      shares = minB(sizeShares, this.exchange.availableBalance(w.address, tokenId));
      if (shares <= 0n) return { trader: w.address, action: 'idle', arbitrages };
    }
    const ok = this.post(w, tokenId, side, limit, shares, fok ? 'FOK' : 'FAK');
    return { trader: w.address, action: ok ? (side === 'BUY' ? 'buy' : 'sell') : 'rejected', tokenId, arbitrages };
  }

  // ------------------------------------------------------------------ arbitrageur

  /** Buys every mispriced complete set it finds (binary YES+NO, then neg-risk YES sets); returns the sets bought. */
  private arbitrage(w: Wallet): number {
    let bought = 0;
    const open = this.exchange.markets.filter((m) => this.exchange.fairValue(m.gammaId) !== undefined);
    for (const m of open) bought += this.buySet(w, m.tokenIds.map((t) => ({ m, tokenId: t })));
    const groups = new Map<string, SimMarket[]>();
    for (const m of open) {
      if (!m.negRisk || m.negRiskMarketID === undefined) continue;
      const g = groups.get(m.negRiskMarketID);
      if (g) g.push(m);
      else groups.set(m.negRiskMarketID, [m]);
    }
    for (const members of groups.values()) {
      if (members.length >= 2) bought += this.buySet(w, members.map((m) => ({ m, tokenId: m.tokenIds[0] })));
    }
    return bought;
  }

  /** Buys one of each leg when the best asks plus fees sum below 1 (a set pays exactly 1). */
  private buySet(w: Wallet, legs: Array<{ m: SimMarket; tokenId: string }>): number {
    const tops: Array<{ m: SimMarket; tokenId: string; ask: bigint; size: bigint }> = [];
    let cost = 0n;
    let size = ARB_MAX_SHARES;
    for (const leg of legs) {
      const book = this.exchange.bookSummary(leg.tokenId);
      const lvl = book?.asks[book.asks.length - 1];
      if (!lvl) return 0;
      const ask = toMicros(lvl.price);
      cost += ask + this.exchange.feeFor(leg.m, ONE, ask);
      size = minB(size, toMicros(lvl.size));
      tops.push({ ...leg, ask, size: toMicros(lvl.size) });
    }
    if (cost + ARB_MIN_EDGE > ONE) return 0;
    this.stats.mispricings++;
    size = floorTo(size, ONE / 100n);
    // Each leg must be a $1 marketable order, and the whole set affordable.
    for (const t of tops) if (mulMicros(t.ask, size) < ONE) size = ceilTo((ONE * ONE) / t.ask, ONE / 100n);
    if (size <= 0n || tops.some((t) => t.size < size)) return 0;
    if (mulMicros(cost, size) * 10n > this.exchange.availableBalance(w.address) * 9n) return 0;
    let legsDone = 0;
    for (const t of tops) if (this.post(w, t.tokenId, 'BUY', t.ask, size, 'FOK')) legsDone++;
    if (legsDone === tops.length) this.stats.arbitrages++;
    return legsDone === tops.length ? 1 : 0;
  }

  // ------------------------------------------------------------------ orders and fills

  /** Posts a FAK/FOK order through the engine path; true when it matched. */
  private post(w: Wallet, tokenId: string, side: 'BUY' | 'SELL', price: bigint, shares: bigint, type: 'FAK' | 'FOK'): boolean {
    const usdc = mulMicros(price, shares);
    const body: PostOrderBody = {
      order: {
        salt: ++this.salt,
        maker: w.address,
        signer: w.address,
        tokenId,
        makerAmount: String(side === 'BUY' ? usdc : shares),
        takerAmount: String(side === 'BUY' ? shares : usdc),
        side,
        signatureType: 0,
        timestamp: String(this.now()),
        expiration: '0',
        metadata: ZERO32,
        builder: ZERO32,
        signature: DUMMY_SIGNATURE,
      },
      owner: w.owner,
      orderType: type,
    };
    this.stats.orders++;
    const res = this.exchange.postOrder(body);
    if (!res.success) {
      this.stats.rejected++;
      return false;
    }
    return res.status === 'matched';
  }

  private record(ev: UserEvent): void {
    if (ev.event.event_type !== 'trade' || !this.byAddress.has(ev.address)) return;
    const t = ev.event;
    const known = this.fillById.get(t.id);
    if (known) {
      for (const f of known) if (f.address === ev.address) f.status = t.status;
      return;
    }
    const own = userFill(t, ev.address);
    if (!own) return;
    const fill: TraderFill = {
      tradeId: t.id,
      address: ev.address,
      market: t.market,
      tokenId: t.asset_id,
      side: own.side,
      price: fromMicros(own.price),
      size: fromMicros(own.size),
      status: t.status,
      at: Number(t.match_time) * 1000,
    };
    this.stats.fills++;
    this.fillsByAddress.get(ev.address)?.push(fill);
    const xs = this.fillById.get(t.id);
    if (xs) xs.push(fill);
    else this.fillById.set(t.id, [fill]);
  }

  /** Standard normal deviate (Box–Muller) from the traders' generator. */
  private gaussian(): number {
    const u = 1 - this.rng.next();
    const v = this.rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}
