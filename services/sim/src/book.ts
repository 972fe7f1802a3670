/**
 * One token's limit order book: price-time priority, prices and sizes in bigint micro units.
 * Levels keep a FIFO of orders and their aggregate size so snapshots and level deltas are cheap.
 */
export type Side = 'BUY' | 'SELL';

export interface RestingOrder {
  id: string;
  owner: string;
  tokenId: string;
  side: Side;
  /** Limit price, micro units on the tick grid. */
  price: bigint;
  /** Shares still open, micro units. */
  remaining: bigint;
  original: bigint;
  /** Simulated makers have no account: they are never balance-checked. */
  maker: boolean;
  /** Collateral (BUY) or shares (SELL) reserved on the owner's account for the open remainder. */
  locked: bigint;
  createdAt: number;
}

interface Level {
  price: bigint;
  total: bigint;
  orders: RestingOrder[];
}

/** A level whose aggregate changed: `size` is the new aggregate, 0 when the level is gone. */
export interface LevelChange {
  side: Side;
  price: bigint;
  size: bigint;
  orderId: string;
}

export interface Fill {
  order: RestingOrder;
  /** The resting order's own price (on the complementary token for a complement fill). */
  price: bigint;
  size: bigint;
  /** The resting order sits on the complementary token (mint for BUYs, merge for SELLs). */
  complement?: boolean;
}

/** One full set (YES + NO) is worth 1 pUSD, micro units. */
const UNIT = 1_000_000n;

/**
 * The complementary token's book as a second source of liquidity for a taker: a BUY on A also meets
 * BUY orders on B (a bid at q acts as an ask at 1 − q: mint), a SELL on A also meets SELL orders on B
 * (an ask at q acts as a bid at 1 − q: merge). `eligible` filters the resting orders that may match
 * (the simulated makers never match each other); `changes` receives B's level changes.
 */
export interface ComplementSource {
  book: OrderBook;
  eligible: (o: RestingOrder) => boolean;
  changes: LevelChange[];
}

class BookSide {
  readonly levels = new Map<bigint, Level>();
  /** Prices ascending. */
  readonly prices: bigint[] = [];

  constructor(readonly side: Side) {}

  /** Best price: highest bid, lowest ask. */
  best(): bigint | undefined {
    return this.side === 'BUY' ? this.prices[this.prices.length - 1] : this.prices[0];
  }

  /** Prices from best to worst. */
  bestFirst(): bigint[] {
    return this.side === 'BUY' ? [...this.prices].reverse() : [...this.prices];
  }

  level(price: bigint): Level {
    let lvl = this.levels.get(price);
    if (!lvl) {
      lvl = { price, total: 0n, orders: [] };
      this.levels.set(price, lvl);
      let lo = 0;
      let hi = this.prices.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((this.prices[mid] as bigint) < price) lo = mid + 1;
        else hi = mid;
      }
      this.prices.splice(lo, 0, price);
    }
    return lvl;
  }

  dropIfEmpty(lvl: Level): void {
    if (lvl.orders.length > 0) return;
    this.levels.delete(lvl.price);
    const i = this.prices.indexOf(lvl.price);
    if (i >= 0) this.prices.splice(i, 1);
  }
}

export class OrderBook {
  readonly bids = new BookSide('BUY');
  readonly asks = new BookSide('SELL');
  readonly orders = new Map<string, RestingOrder>();

  constructor(readonly tokenId: string) {}

  private sideOf(side: Side): BookSide {
    return side === 'BUY' ? this.bids : this.asks;
  }

  bestBid(): bigint | undefined {
    return this.bids.best();
  }

  bestAsk(): bigint | undefined {
    return this.asks.best();
  }

  /** Appends an order at the back of its level (time priority). The caller ensures it does not cross. */
  add(order: RestingOrder): LevelChange {
    const lvl = this.sideOf(order.side).level(order.price);
    lvl.orders.push(order);
    lvl.total += order.remaining;
    this.orders.set(order.id, order);
    return { side: order.side, price: order.price, size: lvl.total, orderId: order.id };
  }

  cancel(id: string): { order: RestingOrder; change: LevelChange } | undefined {
    const order = this.orders.get(id);
    if (!order) return undefined;
    const side = this.sideOf(order.side);
    const lvl = side.levels.get(order.price);
    this.orders.delete(id);
    if (!lvl) return undefined;
    const i = lvl.orders.indexOf(order);
    if (i >= 0) lvl.orders.splice(i, 1);
    lvl.total -= order.remaining;
    side.dropIfEmpty(lvl);
    return { order, change: { side: order.side, price: order.price, size: lvl.orders.length ? lvl.total : 0n, orderId: id } };
  }

  /** Best price on `side` among the orders `eligible` accepts. */
  bestWhere(side: Side, eligible: (o: RestingOrder) => boolean): bigint | undefined {
    const s = this.sideOf(side);
    for (const p of s.bestFirst()) if ((s.levels.get(p) as Level).orders.some(eligible)) return p;
    return undefined;
  }

  /** Whether a taker on `side` with `limit` crosses resting price `p`. */
  static crosses(side: Side, limit: bigint, p: bigint): boolean {
    return side === 'BUY' ? p <= limit : p >= limit;
  }

  /** The complement side a taker on `side` meets on the complementary book: bids for a BUY, asks for a SELL. */
  private static compSide(book: OrderBook, side: Side): BookSide {
    return side === 'BUY' ? book.bids : book.asks;
  }

  /**
   * Shares available to a taker on `side` at prices no worse than `limit`, including the eligible
   * orders of the complementary book (`comp`) whose effective price 1 − q crosses.
   */
  fillable(side: Side, limit: bigint, upTo: bigint, comp?: Pick<ComplementSource, 'book' | 'eligible'>): bigint {
    const opp = side === 'BUY' ? this.asks : this.bids;
    let sum = 0n;
    for (const p of opp.bestFirst()) {
      if (!OrderBook.crosses(side, limit, p) || sum >= upTo) break;
      sum += (opp.levels.get(p) as Level).total;
    }
    if (comp) {
      const cs = OrderBook.compSide(comp.book, side);
      for (const q of cs.bestFirst()) {
        if (!OrderBook.crosses(side, limit, UNIT - q) || sum >= upTo) break;
        for (const o of (cs.levels.get(q) as Level).orders) if (comp.eligible(o)) sum += o.remaining;
      }
    }
    return sum < upTo ? sum : upTo;
  }

  /**
   * Takes up to `size` shares from the opposite side at prices no worse than `limit`, best price
   * first and oldest order first within a level; fills are at the resting order's price. With `comp`,
   * the complementary book's eligible orders compete by effective price (1 − their price); at an equal
   * effective price the direct book goes first.
   */
  take(side: Side, limit: bigint, size: bigint, changes: LevelChange[], comp?: ComplementSource): Fill[] {
    const opp = side === 'BUY' ? this.asks : this.bids;
    const cs = comp ? OrderBook.compSide(comp.book, side) : undefined;
    const dPrices = opp.bestFirst();
    const cPrices = cs ? cs.bestFirst() : [];
    let di = 0;
    let ci = 0;
    const fills: Fill[] = [];
    let left = size;
    while (left > 0n) {
      const dp = di < dPrices.length && OrderBook.crosses(side, limit, dPrices[di] as bigint) ? (dPrices[di] as bigint) : undefined;
      let cp: bigint | undefined;
      while (comp && cs && ci < cPrices.length) {
        const q = cPrices[ci] as bigint;
        if (!OrderBook.crosses(side, limit, UNIT - q)) break;
        if ((cs.levels.get(q) as Level).orders.some(comp.eligible)) {
          cp = q;
          break;
        }
        ci++;
      }
      if (dp === undefined && cp === undefined) break;
      const direct = dp !== undefined && (cp === undefined || (side === 'BUY' ? dp <= UNIT - cp : dp >= UNIT - cp));
      const bs = direct ? opp : (cs as BookSide);
      const p = direct ? (dp as bigint) : (cp as bigint);
      const lvl = bs.levels.get(p) as Level;
      let lastId = '';
      for (let k = 0; left > 0n && k < lvl.orders.length; ) {
        const o = lvl.orders[k] as RestingOrder;
        if (!direct && !(comp as ComplementSource).eligible(o)) {
          k++;
          continue;
        }
        const q = o.remaining < left ? o.remaining : left;
        o.remaining -= q;
        lvl.total -= q;
        left -= q;
        lastId = o.id;
        fills.push(direct ? { order: o, price: p, size: q } : { order: o, price: p, size: q, complement: true });
        if (o.remaining === 0n) {
          lvl.orders.splice(k, 1);
          (direct ? this : (comp as ComplementSource).book).orders.delete(o.id);
        } else k++;
      }
      bs.dropIfEmpty(lvl);
      (direct ? changes : (comp as ComplementSource).changes).push({ side: bs.side, price: p, size: lvl.orders.length ? lvl.total : 0n, orderId: lastId });
      if (direct) di++;
      else ci++;
    }
    return fills;
  }

  /** Aggregated levels in the wire order: bids ascending, asks descending — best level last. */
  levels(): { bids: Array<[bigint, bigint]>; asks: Array<[bigint, bigint]> } {
    const bids = this.bids.prices.map((p) => [p, (this.bids.levels.get(p) as Level).total] as [bigint, bigint]);
    const asks = [...this.asks.prices].reverse().map((p) => [p, (this.asks.levels.get(p) as Level).total] as [bigint, bigint]);
    return { bids, asks };
  }

  ordersOn(side: Side, filter: (o: RestingOrder) => boolean): RestingOrder[] {
    const out: RestingOrder[] = [];
    const s = this.sideOf(side);
    for (const p of s.prices) for (const o of (s.levels.get(p) as Level).orders) if (filter(o)) out.push(o);
    return out;
  }
}
