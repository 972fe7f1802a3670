import type { Side } from './book.js';
import type { Exchange, ExchangeEvent } from './exchange.js';
import { midMicros, topOfBook } from './quotes.js';

/** Samples closer than this are merged (the venue's finest `fidelity` is one minute). */
const BUCKET_S = 60;
/** Per-token retention: one week of minute samples when few tokens, less when many. */
const MAX_PER_TOKEN = 7 * 24 * 60;
const MIN_PER_TOKEN = 360;
/** Total samples kept over all tokens, so 500 markets cannot grow memory without bound. */
const TOTAL_BUDGET = 2_000_000;

/** Per-token sample cap when `tokens` series exist. */
const capFor = (tokens: number): number => Math.max(MIN_PER_TOKEN, Math.min(MAX_PER_TOKEN, Math.floor(TOTAL_BUDGET / Math.max(1, tokens))));

/**
 * One token's mid over time: change points only (an unchanged mid adds nothing), at most one per
 * minute (a later change in the same minute replaces the earlier one), oldest dropped at `cap`.
 */
class Series {
  private readonly t: number[] = [];
  private readonly p: number[] = [];
  /** Index of the oldest sample once the ring is full. */
  private head = 0;

  constructor(private readonly cap: number) {}

  get size(): number {
    return this.t.length;
  }

  /** Logical index 0 = oldest. */
  timeAt(i: number): number {
    return this.t[(this.head + i) % this.t.length] as number;
  }

  priceAt(i: number): number {
    return this.p[(this.head + i) % this.p.length] as number;
  }

  push(tS: number, pMicros: number): void {
    const n = this.t.length;
    if (n > 0) {
      const li = (this.head + n - 1) % n;
      const lastT = this.t[li] as number;
      if (this.p[li] === pMicros) return;
      const t = Math.max(tS, lastT); // one exchange clock, but never let the series go backwards
      if (Math.floor(t / BUCKET_S) === Math.floor(lastT / BUCKET_S)) {
        this.t[li] = t;
        this.p[li] = pMicros;
        return;
      }
      tS = t;
    }
    if (n < this.cap) {
      this.t.push(tS);
      this.p.push(pMicros);
    } else {
      this.t[this.head] = tS;
      this.p[this.head] = pMicros;
      this.head = (this.head + 1) % this.cap;
    }
  }
}

export interface HistoryPoint {
  /** Unix seconds. */
  t: number;
  /** Mid price as a number, as `/prices-history` sends it. */
  p: number;
}

export interface HistoryQuery {
  /** Unix seconds, inclusive; clamped to the oldest retained sample. */
  startS: number;
  /** Unix seconds, inclusive; clamped to now. */
  endS: number;
  /** Minutes between points. */
  fidelityMin: number;
}

/**
 * Records each token's mid from the exchange's public events (`price_change` best bid/ask,
 * `book` snapshots) and the side of its last trade, for `/prices-history` and
 * `/last-trade-price`. Seeded with the current mids so every token has history from the start;
 * tokens listed later (rounds) get a series when first seen (`new_market`, a book event or a
 * query), and the series of tokens the exchange has forgotten are dropped.
 */
export class PriceRecorder {
  private readonly series = new Map<string, Series>();
  private readonly lastSide = new Map<string, Side>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly exchange: Exchange,
    private readonly now: () => number = Date.now,
  ) {
    const tokens = exchange.markets.flatMap((m) => m.tokenIds);
    const cap = capFor(tokens.length);
    const t = Math.floor(this.now() / 1000);
    for (const id of tokens) {
      const s = new Series(cap);
      this.series.set(id, s);
      const book = exchange.bookSummary(id);
      if (book) s.push(t, Number(midMicros(topOfBook(book))));
    }
    this.unsubscribe = exchange.on((ev) => this.onEvent(ev));
  }

  /**
   * The token's series, created on first sight when the exchange knows the token (seeded with its
   * current mid unless its book is still empty and untraded); undefined for unknown tokens.
   */
  private seriesOf(tokenId: string, tS?: number): Series | undefined {
    const have = this.series.get(tokenId);
    if (have) return have;
    const book = this.exchange.bookSummary(tokenId);
    if (!book) return undefined;
    const s = new Series(capFor(this.series.size + 1));
    this.series.set(tokenId, s);
    const top = topOfBook(book);
    if (top.bid !== undefined || top.ask !== undefined || top.last > 0n) {
      s.push(tS ?? Math.floor(this.now() / 1000), Number(midMicros(top)));
    }
    return s;
  }

  /** Drops the series of tokens the exchange no longer knows (forgotten rounds). */
  private sweep(): void {
    for (const id of this.series.keys()) if (!this.exchange.hasToken(id)) this.series.delete(id);
  }

  close(): void {
    this.unsubscribe();
  }

  /** Side of the token's last trade since the recorder started; "" before any. */
  lastTradeSide(tokenId: string): Side | '' {
    return this.lastSide.get(tokenId) ?? '';
  }

  private onEvent(ev: ExchangeEvent): void {
    const tS = this.eventSeconds(ev.timestamp);
    switch (ev.event_type) {
      case 'price_change':
        for (const c of ev.price_changes) {
          // "0"/"1" stand for an empty side: take the book's own rule (last trade price) then.
          if (c.best_bid === undefined || c.best_ask === undefined || c.best_bid === '0' || c.best_ask === '1') {
            this.sampleBook(c.asset_id, tS);
          } else {
            const top = topOfBook({ bids: [{ price: c.best_bid, size: '0' }], asks: [{ price: c.best_ask, size: '0' }] });
            this.seriesOf(c.asset_id, tS)?.push(tS, Number(midMicros(top)));
          }
        }
        break;
      case 'book':
        this.seriesOf(ev.asset_id, tS)?.push(tS, Number(midMicros(topOfBook(ev))));
        break;
      case 'new_market':
        this.sweep();
        for (const id of ev.assets_ids) this.seriesOf(id, tS);
        break;
      case 'last_trade_price':
        if (ev.side) this.lastSide.set(ev.asset_id, ev.side);
        break;
    }
  }

  private sampleBook(tokenId: string, tS: number): void {
    const book = this.exchange.bookSummary(tokenId);
    if (book) this.seriesOf(tokenId, tS)?.push(tS, Number(midMicros(topOfBook(book))));
  }

  private eventSeconds(ts: string | undefined): number {
    const ms = ts !== undefined && /^\d+$/.test(ts) ? Number(ts) : this.now();
    return Math.floor(ms / 1000);
  }

  /** Whether the token has (or, being known to the exchange, now gets) a series. */
  has(tokenId: string): boolean {
    return this.seriesOf(tokenId) !== undefined;
  }

  /** Unix seconds of the token's oldest retained sample. */
  oldest(tokenId: string): number | undefined {
    const s = this.seriesOf(tokenId);
    return s && s.size > 0 ? s.timeAt(0) : undefined;
  }

  /**
   * The mid sampled on a regular grid: the first point at the (clamped) start, then every
   * `fidelityMin` minutes on multiples of the step, each the last known mid at that instant.
   * A range that starts before the recording is clamped to its first sample; one that ends in
   * the future is clamped to now, so a fixed-window query is never empty.
   */
  history(tokenId: string, q: HistoryQuery): HistoryPoint[] {
    const s = this.seriesOf(tokenId);
    if (!s || s.size === 0) return [];
    const step = q.fidelityMin * 60;
    const start = Math.max(q.startS, s.timeAt(0));
    const end = Math.min(q.endS, Math.floor(this.now() / 1000));
    const out: HistoryPoint[] = [];
    let i = 0;
    for (let t = start; t <= end; t = (Math.floor(t / step) + 1) * step) {
      while (i + 1 < s.size && s.timeAt(i + 1) <= t) i++;
      out.push({ t, p: s.priceAt(i) / 1e6 });
    }
    return out;
  }
}
