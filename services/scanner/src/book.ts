import { fromMicros, toMicros } from '@polybot/protocol';

export interface VenueLevel {
  price: string;
  size: string;
}

/** [price, size] as numbers for the wire, best first. */
export type WireLevel = [number, number];

export interface TopOfBook {
  bid: bigint | null;
  ask: bigint | null;
  bidSize: bigint;
  askSize: bigint;
}

const num = (micros: bigint) => Number(fromMicros(micros));

/**
 * Local L2 book for one token. Prices and sizes are bigint micros (the venue's 6-decimal grid), so
 * level keys are exact and "0.50" and ".5" are the same level. The venue lists levels best LAST;
 * the maps do not care about order, and reads sort best first.
 */
export class L2Book {
  readonly bids = new Map<bigint, bigint>();
  readonly asks = new Map<bigint, bigint>();
  /** A snapshot was applied since the last (re)connect; deltas without one are meaningless. */
  hasSnapshot = false;
  /** False once the book crossed after an update, until a fresh snapshot arrives. */
  trusted = true;
  hash: string | undefined;
  venueTs = 0;
  /** Where the last snapshot came from: REST answers can be newer than WS deltas still in flight. */
  snapshotOrigin: 'ws' | 'rest' = 'ws';
  /** Best prices, kept up to date incrementally: only removing the best level needs a scan. */
  private bestBid: bigint | null = null;
  private bestAsk: bigint | null = null;

  constructor(
    readonly tokenId: string,
    public tickSize: string,
  ) {}

  /** Replaces the whole book (WS `book` event or REST `/book`). */
  applySnapshot(bids: readonly VenueLevel[], asks: readonly VenueLevel[], ts: number, hash?: string): void {
    this.bids.clear();
    this.asks.clear();
    for (const l of bids) setLevel(this.bids, l.price, l.size);
    for (const l of asks) setLevel(this.asks, l.price, l.size);
    this.bestBid = scanBest(this.bids, true);
    this.bestAsk = scanBest(this.asks, false);
    this.hasSnapshot = true;
    this.trusted = true;
    this.hash = hash;
    this.venueTs = ts;
  }

  /** `size` is the new aggregate size at `price`; "0" (or absent) removes the level. */
  applyChange(side: 'BUY' | 'SELL', price: string, size: string | undefined, ts: number, hash?: string): void {
    const p = toMicros(price);
    const s = toMicros(size ?? '0');
    if (side === 'BUY') {
      if (s <= 0n) {
        this.bids.delete(p);
        if (p === this.bestBid) this.bestBid = scanBest(this.bids, true);
      } else {
        this.bids.set(p, s);
        if (this.bestBid === null || p > this.bestBid) this.bestBid = p;
      }
    } else if (s <= 0n) {
      this.asks.delete(p);
      if (p === this.bestAsk) this.bestAsk = scanBest(this.asks, false);
    } else {
      this.asks.set(p, s);
      if (this.bestAsk === null || p < this.bestAsk) this.bestAsk = p;
    }
    if (hash !== undefined) this.hash = hash;
    this.venueTs = ts;
  }

  /** Drops all levels, e.g. after a disconnect: the next `book` snapshot rebuilds it. */
  invalidate(): void {
    this.bids.clear();
    this.asks.clear();
    this.bestBid = this.bestAsk = null;
    this.hasSnapshot = false;
  }

  top(): TopOfBook {
    const bid = this.bestBid;
    const ask = this.bestAsk;
    return {
      bid,
      ask,
      bidSize: bid === null ? 0n : (this.bids.get(bid) ?? 0n),
      askSize: ask === null ? 0n : (this.asks.get(ask) ?? 0n),
    };
  }

  /** Best bid at or above best ask: impossible on a real book, so ours has missed something. */
  isCrossed(): boolean {
    return this.bestBid !== null && this.bestAsk !== null && this.bestBid >= this.bestAsk;
  }

  /** Up to `depth` levels per side, best first (bids descending, asks ascending). */
  levels(depth: number): { bids: WireLevel[]; asks: WireLevel[] } {
    const bids = [...this.bids.entries()].sort((a, b) => (a[0] > b[0] ? -1 : a[0] < b[0] ? 1 : 0)).slice(0, depth);
    const asks = [...this.asks.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, depth);
    return {
      bids: bids.map(([p, s]) => [num(p), num(s)]),
      asks: asks.map(([p, s]) => [num(p), num(s)]),
    };
  }
}

function scanBest(side: Map<bigint, bigint>, highest: boolean): bigint | null {
  let best: bigint | null = null;
  for (const p of side.keys()) if (best === null || (highest ? p > best : p < best)) best = p;
  return best;
}

function setLevel(side: Map<bigint, bigint>, price: string, size: string): void {
  const p = toMicros(price);
  const s = toMicros(size);
  if (s <= 0n) side.delete(p);
  else side.set(p, s);
}

/** Exact mid in micros, rounded half-up to a micro (tick grids are far coarser). */
export function midMicros(bid: bigint, ask: bigint): bigint {
  const sum = bid + ask;
  return sum / 2n + (sum % 2n);
}

export const microsToNumber = num;
