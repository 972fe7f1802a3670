import type { MapWriter } from '@polybot/protocol';

export interface VenueLevel {
  price: string;
  size: string;
}

/** [price, size] as numbers for the wire, best first. */
export type WireLevel = [number, number];

export interface TopOfBook {
  bid: number | null;
  ask: number | null;
  bidSize: number;
  askSize: number;
}

/**
 * Largest size a book level may hold, in micros: 10^9 shares. Integer micros below 2^53 are exact
 * in a double, so levels need neither bigint nor strings on the hot path (the processors refuse
 * anything bigger as absurd).
 */
export const MAX_LEVEL_MICROS = 1e15;

/**
 * A venue decimal string ("0.5", ".48", "1304.72", "100.0000") as integer micros, half-up past
 * six decimals like `toMicros`; NaN for anything else. Exact: only integer arithmetic below 2^53.
 */
export function parseMicros(s: string): number {
  const n = s.length;
  if (n === 0 || n > 40) return NaN;
  let i = 0;
  let int = 0;
  let digits = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) break;
    if (c < 48 || c > 57) return NaN;
    int = int * 10 + (c - 48);
    digits++;
  }
  let frac = 0;
  let fd = 0;
  if (i < n) {
    i++;
    for (; i < n && fd < 6; i++, fd++) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) return NaN;
      frac = frac * 10 + (c - 48);
    }
    let roundUp = false;
    if (i < n) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) return NaN;
      roundUp = c >= 53;
      for (i++; i < n; i++) {
        const d = s.charCodeAt(i);
        if (d < 48 || d > 57) return NaN;
      }
    }
    if (digits === 0 && fd === 0) return NaN;
    while (fd < 6) {
      frac *= 10;
      fd++;
    }
    if (roundUp) frac++;
  } else if (digits === 0) {
    return NaN;
  }
  const v = int * 1_000_000 + frac;
  return v <= MAX_LEVEL_MICROS ? v : NaN;
}

/** Micros → the wire's number (division of exact integers is correctly rounded: "0.51" → 0.51). */
export const microsToNumber = (m: number): number => m / 1_000_000;

/** Exact mid in micros, rounded half-up to a micro (tick grids are far coarser). */
export function midMicros(bid: number, ask: number): number {
  const sum = bid + ask;
  return (sum - (sum % 2)) / 2 + (sum % 2);
}

/** Micros → plain decimal string ("510000" → "0.51"). */
export function microsToString(m: number): string {
  const int = Math.floor(m / 1_000_000);
  const frac = m - int * 1_000_000;
  if (frac === 0) return String(int);
  return `${int}.${String(frac).padStart(6, '0').replace(/0+$/, '')}`;
}

/**
 * Local L2 book for one token. Prices and sizes are integer micros (the venue's 6-decimal grid), so
 * level keys are exact and "0.50" and ".5" are the same level. The venue lists levels best LAST;
 * the maps do not care about order, and reads sort best first.
 */
export class L2Book {
  private readonly bidLevels = new Map<number, number>();
  private readonly askLevels = new Map<number, number>();
  /**
   * Level prices in ascending order, kept until a level appears or goes: most updates only
   * change a size, and depth messages would otherwise sort every side every time.
   */
  private bidOrder: Float64Array | undefined;
  private askOrder: Float64Array | undefined;
  /** A snapshot was applied since the last (re)connect; deltas without one are meaningless. */
  hasSnapshot = false;
  /** False once the book crossed after an update, until a fresh snapshot arrives. */
  trusted = true;
  hash: string | undefined;
  venueTs = 0;
  /** Where the last snapshot came from: REST answers can be newer than WS deltas still in flight. */
  snapshotOrigin: 'ws' | 'rest' = 'ws';
  /** Best prices, kept up to date incrementally: only removing the best level needs a scan. */
  private bestBid: number | null = null;
  private bestAsk: number | null = null;

  constructor(
    readonly tokenId: string,
    public tickSize: string,
  ) {}

  get bids(): ReadonlyMap<number, number> {
    return this.bidLevels;
  }

  get asks(): ReadonlyMap<number, number> {
    return this.askLevels;
  }

  /** Replaces the whole book (WS `book` event or REST `/book`). */
  applySnapshot(bids: readonly VenueLevel[], asks: readonly VenueLevel[], ts: number, hash?: string): void {
    this.bidLevels.clear();
    this.askLevels.clear();
    this.bidOrder = this.askOrder = undefined;
    for (const l of bids) setLevel(this.bidLevels, l.price, l.size);
    for (const l of asks) setLevel(this.askLevels, l.price, l.size);
    this.bestBid = scanBest(this.bidLevels, true);
    this.bestAsk = scanBest(this.askLevels, false);
    this.hasSnapshot = true;
    this.trusted = true;
    this.hash = hash;
    this.venueTs = ts;
  }

  /** `size` is the new aggregate size at `price`; "0" (or absent) removes the level. */
  applyChange(side: 'BUY' | 'SELL', price: string, size: string | undefined, ts: number, hash?: string): void {
    const p = parseMicros(price);
    const s = parseMicros(size ?? '0');
    if (!(p >= 0) || !(s >= 0)) return;
    if (side === 'BUY') {
      const m = this.bidLevels;
      if (s === 0) {
        if (m.delete(p)) this.bidOrder = undefined;
        if (p === this.bestBid) this.bestBid = scanBest(m, true);
      } else {
        if (!m.has(p)) this.bidOrder = undefined;
        m.set(p, s);
        if (this.bestBid === null || p > this.bestBid) this.bestBid = p;
      }
    } else {
      const m = this.askLevels;
      if (s === 0) {
        if (m.delete(p)) this.askOrder = undefined;
        if (p === this.bestAsk) this.bestAsk = scanBest(m, false);
      } else {
        if (!m.has(p)) this.askOrder = undefined;
        m.set(p, s);
        if (this.bestAsk === null || p < this.bestAsk) this.bestAsk = p;
      }
    }
    if (hash !== undefined) this.hash = hash;
    this.venueTs = ts;
  }

  /** Drops all levels, e.g. after a disconnect: the next `book` snapshot rebuilds it. */
  invalidate(): void {
    this.bidLevels.clear();
    this.askLevels.clear();
    this.bidOrder = this.askOrder = undefined;
    this.bestBid = this.bestAsk = null;
    this.hasSnapshot = false;
  }

  top(): TopOfBook {
    const bid = this.bestBid;
    const ask = this.bestAsk;
    return {
      bid,
      ask,
      bidSize: bid === null ? 0 : (this.bidLevels.get(bid) ?? 0),
      askSize: ask === null ? 0 : (this.askLevels.get(ask) ?? 0),
    };
  }

  /** Best bid at or above best ask: impossible on a real book, so ours has missed something. */
  isCrossed(): boolean {
    return this.bestBid !== null && this.bestAsk !== null && this.bestBid >= this.bestAsk;
  }

  /**
   * One side's first `depth` levels as `levels` gives them, written as a msgpack array of
   * [price, size] pairs: a depth message straight from the book.
   */
  writeLevels(w: Pick<MapWriter, 'array' | 'number'>, which: 'bids' | 'asks', depth: number): void {
    const bids = which === 'bids';
    const m = bids ? this.bidLevels : this.askLevels;
    const prices = bids ? (this.bidOrder ??= sortedPrices(m)) : (this.askOrder ??= sortedPrices(m));
    const k = prices.length;
    const n = Math.min(depth, k);
    w.array(n);
    for (let i = 0; i < n; i++) {
      const p = prices[bids ? k - 1 - i : i]!;
      w.array(2).number(p / 1_000_000).number(m.get(p)! / 1_000_000);
    }
  }

  /** Up to `depth` levels per side, best first (bids descending, asks ascending). */
  levels(depth: number): { bids: WireLevel[]; asks: WireLevel[] } {
    this.bidOrder ??= sortedPrices(this.bidLevels);
    this.askOrder ??= sortedPrices(this.askLevels);
    return { bids: side(this.bidLevels, this.bidOrder, depth, true), asks: side(this.askLevels, this.askOrder, depth, false) };
  }
}

/** A typed array sorts numerically without a comparator call per pair. */
function sortedPrices(m: Map<number, number>): Float64Array {
  const prices = new Float64Array(m.size);
  let k = 0;
  for (const p of m.keys()) prices[k++] = p;
  return prices.sort();
}

function side(m: Map<number, number>, prices: Float64Array, depth: number, descending: boolean): WireLevel[] {
  const k = prices.length;
  const n = Math.min(depth, k);
  // Pushed, not preallocated: a packed array reads faster than a holey one when encoded.
  const out: WireLevel[] = [];
  for (let i = 0; i < n; i++) {
    const p = prices[descending ? k - 1 - i : i]!;
    out.push([p / 1_000_000, m.get(p)! / 1_000_000]);
  }
  return out;
}

function scanBest(side: Map<number, number>, highest: boolean): number | null {
  let best: number | null = null;
  for (const p of side.keys()) if (best === null || (highest ? p > best : p < best)) best = p;
  return best;
}

function setLevel(side: Map<number, number>, price: string, size: string): void {
  const p = parseMicros(price);
  const s = parseMicros(size);
  if (!(p >= 0) || !(s >= 0)) return;
  if (s === 0) side.delete(p);
  else side.set(p, s);
}
