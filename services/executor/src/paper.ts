import { MICROS_PER_UNIT, toMicros, type OrderType, type Side } from '@polybot/protocol';

/**
 * Paper execution (brief §5, execution mode `paper`): orders fill locally against the live books
 * the scanner publishes, nothing is sent. Deterministic: no clock, no randomness — the same books
 * and orders in the same sequence give the same fills and trade ids.
 *
 * The model, and what it does not capture:
 * - A taker walks the opposite side best first at the book's prices, up to its limit, one fill per
 *   level. Within one book update the liquidity it takes is consumed: a second paper order in the
 *   same update sees only what is left. A new book for the token resets it, because the venue
 *   never saw our paper trades — its next book shows the same liquidity again, so a strategy that
 *   hits one level again and again across updates is filled more than the venue would fill it.
 * - A resting (GTC/GTD) paper order is not in the venue's book. It fills only when a later book
 *   shows the opposite side at or better than its limit: at its own price, once per book update,
 *   taking at most the shown size (shared with other paper orders in that update). There is no
 *   queue position: it is treated as first in line at its price, and it is never filled by trades
 *   that print at its price without the book crossing it. Paper orders never match each other.
 * - Taker fees come from the caller's schedule; makers pay none (PROTOCOL.md §5.5).
 * - Amount rounding goes against the paper trader: a buyer pays price × size rounded up to the
 *   micro pUSD, a seller receives it rounded down (on the tick grid with 2-decimal sizes both are
 *   exact anyway).
 * - Venue checks that need state the engine does not have (balances, tick size, minimum sizes,
 *   market phase) are the risk checks' job.
 */

const ONE = MICROS_PER_UNIT;

/** The venue's texts (PROTOCOL.md §3, and the simulator's for post-only on a market order). */
export const PAPER_ERRORS = {
  fok: "order couldn't be fully filled. FOK orders are fully filled or killed.",
  fak: 'no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found.',
  postOnlyCrosses: 'invalid post-only order: order crosses book',
  postOnlyType: 'invalid post-only order: only GTC and GTD orders can be post-only',
  duplicated: (id: string) => `order ${id} is invalid. Duplicated.`,
} as const;

export type PaperRejectCode = 'fok_not_filled' | 'fak_no_match' | 'post_only_crosses' | 'post_only_type' | 'duplicated' | 'invalid_order';

/** A level as the bus `book` message carries it: `[price, size]`, numbers (or decimal strings). */
export type WireLevel = readonly [number | string, number | string];

/** The parts of a bus `BookMessage` the engine reads; levels best first. */
export interface PaperBookInput {
  token_id: string;
  bids: readonly WireLevel[];
  asks: readonly WireLevel[];
}

/** A price level in micros; `size` is what is left of it in the current book update. */
export interface PaperLevel {
  price: bigint;
  size: bigint;
}

/**
 * A taker fee schedule. `rateBps` alone: a flat share of the notional (fee = notional × bps /
 * 10 000). With `exponent`: the V2 curve fee = shares × rate × (p·(1−p))^exponent, rate = bps /
 * 10 000 (PROTOCOL.md §5.5; e.g. 2500 bps, exponent 2 for the crypto up/down markets).
 */
export interface PaperFeeSchedule {
  rateBps: number | bigint;
  exponent?: number;
}

export interface PaperOrder {
  /** Unique id (the order hash, or any id the executor chose); reused ids are refused. */
  id: string;
  tokenId: string;
  side: Side;
  orderType: OrderType;
  /** Limit price in micros; for FOK/FAK the worst acceptable price. */
  price: bigint;
  /** Shares in micros. Required unless `amount` is given. */
  size?: bigint;
  /** pUSD to spend in micros: market BUYs (FOK/FAK) only, instead of `size`. */
  amount?: bigint;
  postOnly?: boolean;
  /** GTD: when `expire(now)` removes it (the caller includes the venue's security buffer). */
  expiresAtMs?: number;
  fees?: PaperFeeSchedule;
}

export interface PaperFill {
  orderId: string;
  /** `paper-<orderId>-<n>`, n counting the order's fills from 1: deterministic. */
  tradeId: string;
  tokenId: string;
  side: Side;
  price: bigint;
  size: bigint;
  usdc: bigint;
  fee: bigint;
  liquidity: 'taker' | 'maker';
  /** Which book update of the token it filled against (1 = the first book seen). */
  bookSeq: number;
}

export interface PaperRestingOrder {
  id: string;
  tokenId: string;
  side: Side;
  orderType: 'GTC' | 'GTD';
  price: bigint;
  size: bigint;
  remaining: bigint;
  expiresAtMs?: number;
}

export type PaperSubmitResult =
  | { ok: false; orderId: string; code: PaperRejectCode; errorMsg: string }
  | {
      ok: true;
      orderId: string;
      /** As the venue's POST answer: `matched` when anything filled, `live` when it only rests. */
      status: 'matched' | 'live';
      fills: PaperFill[];
      /** Shares filled. */
      matched: bigint;
      /** pUSD paid (BUY) or received (SELL) before fees. */
      usdc: bigint;
      fee: bigint;
      /** The remainder now resting (GTC/GTD), if any. */
      resting?: PaperRestingOrder;
      /** What FOK/FAK left unfilled and killed: shares, or pUSD for an amount order. */
      killed: bigint;
    };

export interface PaperBookResult {
  fills: PaperFill[];
  /** Resting orders this update filled completely (removed). */
  completed: string[];
}

// ------------------------------------------------------------------ pure helpers

/**
 * Converts wire levels to micros through their decimal string form (never float arithmetic):
 * prices half-up, sizes down (never more than shown). Drops empty and out-of-range levels, merges
 * repeated prices and sorts best first (bids high to low, asks low to high) so the walk does not
 * depend on the publisher's ordering.
 */
export function levelsFromWire(levels: readonly WireLevel[], book: 'bids' | 'asks'): PaperLevel[] {
  const byPrice = new Map<bigint, bigint>();
  for (const [p, s] of levels) {
    let price: bigint;
    let size: bigint;
    try {
      // toMicros reads a number through its shortest decimal repr, the string the wire meant.
      price = toMicros(p);
      size = toMicros(s, 'down');
    } catch {
      continue;
    }
    if (price <= 0n || price >= ONE || size <= 0n) continue;
    byPrice.set(price, (byPrice.get(price) ?? 0n) + size);
  }
  const out = [...byPrice].map(([price, size]) => ({ price, size }));
  out.sort((a, b) => (a.price === b.price ? 0 : (a.price < b.price) === (book === 'asks') ? -1 : 1));
  return out;
}

/** Whether a level at `levelPrice` is acceptable to an order on `side` limited at `limit`. */
export const crosses = (side: Side, limit: bigint, levelPrice: bigint): boolean => (side === 'BUY' ? levelPrice <= limit : levelPrice >= limit);

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;
/** pUSD for shares at a price: the buyer pays the rounded-up micro, the seller gets the rounded-down one. */
export const notional = (side: Side, price: bigint, shares: bigint): bigint =>
  side === 'BUY' ? ceilDiv(price * shares, ONE) : (price * shares) / ONE;

const divHalfUp = (n: bigint, d: bigint) => (n * 2n + d) / (2n * d);

/** Taker fee in micro pUSD for one fill, rounded half up. */
export function takerFee(shares: bigint, price: bigint, usdc: bigint, fees: PaperFeeSchedule | undefined): bigint {
  if (!fees) return 0n;
  const bps = BigInt(fees.rateBps);
  if (bps === 0n) return 0n;
  if (fees.exponent === undefined) return divHalfUp(usdc * bps, 10_000n);
  const e = BigInt(fees.exponent);
  // rate in micros = bps × 100; shares × rate × (p(1−p))^e, every factor in micros.
  return divHalfUp(shares * bps * 100n * (price * (ONE - price)) ** e, ONE ** (1n + 2n * e));
}

export interface Take {
  /** Index into the levels walked. */
  level: number;
  price: bigint;
  size: bigint;
  usdc: bigint;
}

export type WalkTarget = { shares: bigint } | { amount: bigint };

/**
 * Walks `levels` (the opposite side, best first, sizes = what is left) for an order on `side`
 * limited at `limit`, taking at the levels' prices until the target is met or the limit stops it.
 * `shares` takes that many shares; `amount` (BUY only: sells are sized in shares) spends that much pUSD, ending with a
 * partial level whose cost lands exactly on the amount. Pure: nothing is consumed.
 */
export function walkBook(levels: readonly PaperLevel[], side: Side, limit: bigint, target: WalkTarget): { takes: Take[]; shares: bigint; usdc: bigint } {
  const takes: Take[] = [];
  let shares = 0n;
  let usdc = 0n;
  const byAmount = 'amount' in target;
  let left = byAmount ? target.amount : target.shares;
  for (let i = 0; i < levels.length && left > 0n; i++) {
    const lvl = levels[i] as PaperLevel;
    if (!crosses(side, limit, lvl.price)) break;
    if (lvl.size <= 0n) continue;
    let size: bigint;
    let cost: bigint;
    if (!byAmount) {
      size = left < lvl.size ? left : lvl.size;
      cost = notional(side, lvl.price, size);
      left -= size;
    } else {
      const whole = notional(side, lvl.price, lvl.size);
      if (whole <= left) {
        size = lvl.size;
        cost = whole;
      } else {
        // floor(left / p) shares cost exactly `left` once rounded up, because p ≤ 1 pUSD.
        size = (left * ONE) / lvl.price;
        if (size === 0n) break;
        cost = notional(side, lvl.price, size);
      }
      left -= cost;
    }
    takes.push({ level: i, price: lvl.price, size, usdc: cost });
    shares += size;
    usdc += cost;
  }
  return { takes, shares, usdc };
}

// ------------------------------------------------------------------ engine

interface BookState {
  seq: number;
  bids: PaperLevel[];
  asks: PaperLevel[];
}

interface Resting extends PaperRestingOrder {
  arrival: number;
  fills: number;
}

const snapshot = (r: Resting): PaperRestingOrder => ({
  id: r.id,
  tokenId: r.tokenId,
  side: r.side,
  orderType: r.orderType,
  price: r.price,
  size: r.size,
  remaining: r.remaining,
  ...(r.expiresAtMs !== undefined ? { expiresAtMs: r.expiresAtMs } : {}),
});

function validate(o: PaperOrder): string | undefined {
  if (!o.id) return 'an order needs an id';
  if (!o.tokenId) return 'an order needs a token id';
  if (o.price <= 0n || o.price >= ONE) return 'price must be strictly between 0 and 1';
  const market = o.orderType === 'FOK' || o.orderType === 'FAK';
  if (o.amount !== undefined) {
    if (o.size !== undefined) return 'give either size or amount, not both';
    if (o.side !== 'BUY' || !market) return 'an amount is only for market BUY orders (FOK/FAK); sells and resting orders give shares';
    if (o.amount <= 0n) return 'amount must be positive';
  } else if (o.size === undefined || o.size <= 0n) {
    return 'size must be positive';
  }
  if (o.fees) {
    const bps = typeof o.fees.rateBps === 'bigint' ? o.fees.rateBps : Number.isInteger(o.fees.rateBps) ? BigInt(o.fees.rateBps) : -1n;
    if (bps < 0n) return 'fee rate must be a non-negative integer number of bps';
    if (o.fees.exponent !== undefined && !(Number.isInteger(o.fees.exponent) && o.fees.exponent >= 0 && o.fees.exponent <= 8)) {
      return 'fee exponent must be an integer in [0, 8]';
    }
  }
  return undefined;
}

export class PaperEngine {
  private readonly books = new Map<string, BookState>();
  /** Resting orders by id, in arrival order. */
  private readonly resting = new Map<string, Resting>();
  /** Ids of every accepted order, so a reused id is refused like the venue refuses a duplicate. */
  private readonly accepted = new Set<string>();
  private arrivals = 0;

  /**
   * A new book for a token: replaces the previous one (and with it the liquidity consumed from
   * it), then fills resting orders the new book crosses. Buys are served best price first, then
   * by arrival; the same for sells.
   */
  onBook(book: PaperBookInput): PaperBookResult {
    const prev = this.books.get(book.token_id);
    const state: BookState = { seq: (prev?.seq ?? 0) + 1, bids: levelsFromWire(book.bids, 'bids'), asks: levelsFromWire(book.asks, 'asks') };
    this.books.set(book.token_id, state);
    const fills: PaperFill[] = [];
    const completed: string[] = [];
    const mine = [...this.resting.values()].filter((r) => r.tokenId === book.token_id);
    const priority = (a: Resting, b: Resting) =>
      a.price !== b.price ? ((a.side === 'BUY' ? a.price > b.price : a.price < b.price) ? -1 : 1) : a.arrival - b.arrival;
    for (const side of ['BUY', 'SELL'] as const) {
      const opposite = side === 'BUY' ? state.asks : state.bids;
      for (const r of mine.filter((o) => o.side === side).sort(priority)) {
        const walk = walkBook(opposite, side, r.price, { shares: r.remaining });
        if (walk.shares === 0n) continue;
        for (const t of walk.takes) (opposite[t.level] as PaperLevel).size -= t.size;
        r.remaining -= walk.shares;
        r.fills++;
        fills.push({
          orderId: r.id,
          tradeId: `paper-${r.id}-${r.fills}`,
          tokenId: r.tokenId,
          side,
          price: r.price,
          size: walk.shares,
          usdc: notional(side, r.price, walk.shares),
          fee: 0n,
          liquidity: 'maker',
          bookSeq: state.seq,
        });
        if (r.remaining === 0n) {
          this.resting.delete(r.id);
          completed.push(r.id);
        }
      }
    }
    return { fills, completed };
  }

  /** Places an order against the token's current book (what is left of it in this update). */
  submit(o: PaperOrder): PaperSubmitResult {
    const reject = (code: PaperRejectCode, errorMsg: string): PaperSubmitResult => ({ ok: false, orderId: o.id, code, errorMsg });
    const invalid = validate(o);
    if (invalid) return reject('invalid_order', invalid);
    if (this.accepted.has(o.id)) return reject('duplicated', PAPER_ERRORS.duplicated(o.id));
    const restable = o.orderType === 'GTC' || o.orderType === 'GTD';
    if (o.postOnly && !restable) return reject('post_only_type', PAPER_ERRORS.postOnlyType);
    // No book yet reads as an empty one: nothing to take, a resting order simply rests.
    const book = this.books.get(o.tokenId) ?? { seq: 0, bids: [], asks: [] };
    const opposite = o.side === 'BUY' ? book.asks : book.bids;
    if (o.postOnly && opposite.some((l) => l.size > 0n && crosses(o.side, o.price, l.price))) {
      return reject('post_only_crosses', PAPER_ERRORS.postOnlyCrosses);
    }
    const target: WalkTarget = o.amount !== undefined ? { amount: o.amount } : { shares: o.size as bigint };
    const want = o.amount ?? (o.size as bigint);
    const walk = walkBook(opposite, o.side, o.price, target);
    const got = o.amount !== undefined ? walk.usdc : walk.shares;
    if (o.orderType === 'FOK' && got < want) return reject('fok_not_filled', PAPER_ERRORS.fok);
    if (o.orderType === 'FAK' && walk.takes.length === 0) return reject('fak_no_match', PAPER_ERRORS.fak);

    this.accepted.add(o.id);
    const fills: PaperFill[] = [];
    let fee = 0n;
    for (const t of walk.takes) {
      (opposite[t.level] as PaperLevel).size -= t.size;
      const f = takerFee(t.size, t.price, t.usdc, o.fees);
      fee += f;
      fills.push({
        orderId: o.id,
        tradeId: `paper-${o.id}-${fills.length + 1}`,
        tokenId: o.tokenId,
        side: o.side,
        price: t.price,
        size: t.size,
        usdc: t.usdc,
        fee: f,
        liquidity: 'taker',
        bookSeq: book.seq,
      });
    }
    let resting: PaperRestingOrder | undefined;
    let killed = 0n;
    if (restable) {
      const size = o.size as bigint;
      if (walk.shares < size) {
        const r: Resting = {
          id: o.id,
          tokenId: o.tokenId,
          side: o.side,
          orderType: o.orderType as 'GTC' | 'GTD',
          price: o.price,
          size,
          remaining: size - walk.shares,
          ...(o.orderType === 'GTD' && o.expiresAtMs !== undefined ? { expiresAtMs: o.expiresAtMs } : {}),
          arrival: ++this.arrivals,
          fills: fills.length,
        };
        this.resting.set(r.id, r);
        resting = snapshot(r);
      }
    } else {
      killed = want - got;
    }
    return {
      ok: true,
      orderId: o.id,
      status: fills.length > 0 ? 'matched' : 'live',
      fills,
      matched: walk.shares,
      usdc: walk.usdc,
      fee,
      ...(resting ? { resting } : {}),
      killed,
    };
  }

  /** Cancels a resting order; undefined when it is not resting (unknown, filled or already gone). */
  cancel(orderId: string): PaperRestingOrder | undefined {
    const r = this.resting.get(orderId);
    if (!r) return undefined;
    this.resting.delete(orderId);
    return snapshot(r);
  }

  /** Removes GTD orders whose expiration is at or before `nowMs`; returns them. */
  expire(nowMs: number): PaperRestingOrder[] {
    const out: PaperRestingOrder[] = [];
    for (const r of [...this.resting.values()]) {
      if (r.expiresAtMs !== undefined && r.expiresAtMs <= nowMs) {
        this.resting.delete(r.id);
        out.push(snapshot(r));
      }
    }
    return out;
  }

  restingOrder(orderId: string): PaperRestingOrder | undefined {
    const r = this.resting.get(orderId);
    return r ? snapshot(r) : undefined;
  }

  restingOrders(tokenId?: string): PaperRestingOrder[] {
    return [...this.resting.values()].filter((r) => tokenId === undefined || r.tokenId === tokenId).map(snapshot);
  }

  /** What is left of a token's book in the current update (copies), or undefined before its first book. */
  depth(tokenId: string): { seq: number; bids: PaperLevel[]; asks: PaperLevel[] } | undefined {
    const b = this.books.get(tokenId);
    if (!b) return undefined;
    const copy = (ls: PaperLevel[]) => ls.filter((l) => l.size > 0n).map((l) => ({ ...l }));
    return { seq: b.seq, bids: copy(b.bids), asks: copy(b.asks) };
  }
}
