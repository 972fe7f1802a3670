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
  price: bigint;
  size: bigint;
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

  /** Whether a taker on `side` with `limit` crosses resting price `p`. */
  static crosses(side: Side, limit: bigint, p: bigint): boolean {
    return side === 'BUY' ? p <= limit : p >= limit;
  }

  /** Shares available to a taker on `side` at prices no worse than `limit`. */
  fillable(side: Side, limit: bigint, upTo: bigint): bigint {
    const opp = side === 'BUY' ? this.asks : this.bids;
    let sum = 0n;
    for (const p of opp.bestFirst()) {
      if (!OrderBook.crosses(side, limit, p) || sum >= upTo) break;
      sum += (opp.levels.get(p) as Level).total;
    }
    return sum < upTo ? sum : upTo;
  }

  /**
   * Takes up to `size` shares from the opposite side at prices no worse than `limit`, best price
   * first and oldest order first within a level; fills are at the resting order's price.
   */
  take(side: Side, limit: bigint, size: bigint, changes: LevelChange[]): Fill[] {
    const opp = side === 'BUY' ? this.asks : this.bids;
    const fills: Fill[] = [];
    let left = size;
    for (const p of opp.bestFirst()) {
      if (left <= 0n || !OrderBook.crosses(side, limit, p)) break;
      const lvl = opp.levels.get(p) as Level;
      let lastId = '';
      while (left > 0n && lvl.orders.length > 0) {
        const o = lvl.orders[0] as RestingOrder;
        const q = o.remaining < left ? o.remaining : left;
        o.remaining -= q;
        lvl.total -= q;
        left -= q;
        lastId = o.id;
        fills.push({ order: o, price: p, size: q });
        if (o.remaining === 0n) {
          lvl.orders.shift();
          this.orders.delete(o.id);
        }
      }
      opp.dropIfEmpty(lvl);
      changes.push({ side: opp.side, price: p, size: lvl.orders.length ? lvl.total : 0n, orderId: lastId });
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
