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
 * One side of a book: sizes by price, and the prices kept in ascending order as levels come and
 * go. Most updates only change a size; a new or vanished level moves a few entries of a short
 * array, so depth messages and the best price never sort or scan.
 */
class BookSide {
  /** Ascending; plain integers (micros), so the array stays packed small integers. */
  readonly prices: number[] = [];
  /** The size at each of `prices`. */
  readonly sizeAt: number[] = [];

  set(p: number, s: number): void {
    const prices = this.prices;
    const i = lowerBound(prices, p);
    if (prices[i] === p) {
      this.sizeAt[i] = s;
      return;
    }
    // Shifted by hand: `splice` returns a new array every call.
    const sizes = this.sizeAt;
    prices.push(p);
    sizes.push(s);
    for (let k = prices.length - 1; k > i; k--) {
      prices[k] = prices[k - 1]!;
      sizes[k] = sizes[k - 1]!;
    }
    prices[i] = p;
    sizes[i] = s;
  }

  delete(p: number): void {
    const prices = this.prices;
    const i = lowerBound(prices, p);
    if (prices[i] !== p) return;
    const sizes = this.sizeAt;
    for (let k = i + 1; k < prices.length; k++) {
      prices[k - 1] = prices[k]!;
      sizes[k - 1] = sizes[k]!;
    }
    prices.pop();
    sizes.pop();
  }

  /** Replaces every level (a snapshot): one sort instead of an insert per level. */
  reset(levels: readonly VenueLevel[]): void {
    // Later levels at a price win, and a zero size removes it, as applied one by one.
    const sizes = new Map<number, number>();
    for (const l of levels) {
      const p = parseMicros(l.price);
      const s = parseMicros(l.size);
      if (!(p >= 0) || !(s >= 0)) continue;
      if (s === 0) sizes.delete(p);
      else sizes.set(p, s);
    }
    this.prices.length = 0;
    this.sizeAt.length = 0;
    for (const p of sizes.keys()) this.prices.push(p);
    this.prices.sort((a, b) => a - b);
    for (const p of this.prices) this.sizeAt.push(sizes.get(p)!);
  }

  clear(): void {
    this.prices.length = 0;
    this.sizeAt.length = 0;
  }

  /** Sizes by price, ascending (a copy, for the rare reader that wants a map). */
  map(): Map<number, number> {
    const m = new Map<number, number>();
    for (let i = 0; i < this.prices.length; i++) m.set(this.prices[i]!, this.sizeAt[i]!);
    return m;
  }
}

/** First index whose price is >= p. */
function lowerBound(a: readonly number[], p: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Local L2 book for one token. Prices and sizes are integer micros (the venue's 6-decimal grid), so
 * level keys are exact and "0.50" and ".5" are the same level. The venue lists levels best LAST;
 * each side keeps its prices sorted, and reads give them best first.
 */
export class L2Book {
  private readonly bidSide = new BookSide();
  private readonly askSide = new BookSide();
  /** A snapshot was applied since the last (re)connect; deltas without one are meaningless. */
  hasSnapshot = false;
  /** False once the book crossed after an update, until a fresh snapshot arrives. */
  trusted = true;
  hash: string | undefined;
  venueTs = 0;
  /** Where the last snapshot came from: REST answers can be newer than WS deltas still in flight. */
  snapshotOrigin: 'ws' | 'rest' = 'ws';

  constructor(
    readonly tokenId: string,
    public tickSize: string,
  ) {}

  /** Sizes by price (a copy: for checkpoints and comparisons, not the hot path). */
  get bids(): ReadonlyMap<number, number> {
    return this.bidSide.map();
  }

  get asks(): ReadonlyMap<number, number> {
    return this.askSide.map();
  }

  /** Replaces the whole book (WS `book` event or REST `/book`). */
  applySnapshot(bids: readonly VenueLevel[], asks: readonly VenueLevel[], ts: number, hash?: string): void {
    this.bidSide.reset(bids);
    this.askSide.reset(asks);
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
    const m = side === 'BUY' ? this.bidSide : this.askSide;
    if (s === 0) m.delete(p);
    else m.set(p, s);
    if (hash !== undefined) this.hash = hash;
    this.venueTs = ts;
  }

  /** Drops all levels, e.g. after a disconnect: the next `book` snapshot rebuilds it. */
  invalidate(): void {
    this.bidSide.clear();
    this.askSide.clear();
    this.hasSnapshot = false;
  }

  top(): TopOfBook {
    const bp = this.bidSide.prices;
    const ap = this.askSide.prices;
    const bid = bp.length ? bp[bp.length - 1]! : null;
    const ask = ap.length ? ap[0]! : null;
    return {
      bid,
      ask,
      bidSize: bid === null ? 0 : this.bidSide.sizeAt[bp.length - 1]!,
      askSize: ask === null ? 0 : this.askSide.sizeAt[0]!,
    };
  }

  /** Best bid at or above best ask: impossible on a real book, so ours has missed something. */
  isCrossed(): boolean {
    const bp = this.bidSide.prices;
    const ap = this.askSide.prices;
    return bp.length > 0 && ap.length > 0 && bp[bp.length - 1]! >= ap[0]!;
  }

  /**
   * One side's first `depth` levels as `levels` gives them, written as a msgpack array of
   * [price, size] pairs: a depth message straight from the book.
   */
  writeLevels(w: Pick<MapWriter, 'microsPairs'>, which: 'bids' | 'asks', depth: number): void {
    const bids = which === 'bids';
    const { prices, sizeAt } = bids ? this.bidSide : this.askSide;
    const k = prices.length;
    const n = Math.min(depth, k);
    // Bids are stored ascending and sent best (highest) first.
    if (bids) w.microsPairs(prices, sizeAt, k - 1, n, -1);
    else w.microsPairs(prices, sizeAt, 0, n, 1);
  }

  /** Up to `depth` levels per side, best first (bids descending, asks ascending). */
  levels(depth: number): { bids: WireLevel[]; asks: WireLevel[] } {
    return { bids: sideLevels(this.bidSide, depth, true), asks: sideLevels(this.askSide, depth, false) };
  }
}

function sideLevels({ prices, sizeAt }: BookSide, depth: number, descending: boolean): WireLevel[] {
  const k = prices.length;
  const n = Math.min(depth, k);
  // Pushed, not preallocated: a packed array reads faster than a holey one when encoded.
  const out: WireLevel[] = [];
  for (let i = 0; i < n; i++) {
    const j = descending ? k - 1 - i : i;
    out.push([prices[j]! / 1_000_000, sizeAt[j]! / 1_000_000]);
  }
  return out;
}
