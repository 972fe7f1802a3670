import {
  FlatEncoder,
  topics,
  type BookMessage,
  type BookStatusMessage,
  type BusMessage,
  type EncodedEntries,
  type MapWriter,
  type MarketMessage,
  type PriceMessage,
  type RpcResult,
  type TradeMessage,
  type Unstamped,
} from '@polybot/protocol';
import { L2Book, microsToNumber, microsToString, midMicros, parseMicros } from './book.js';
import type { NBook, NBestBidAsk, NLevelChange, NLastTrade, NMarketResolved, NNewMarket, NormalizedEvent, NPriceChange, NTickSizeChange } from './processors/market.js';

/** One book in a recording's checkpoint frame. */
export interface BookCheckpoint {
  token: string;
  bids: Array<{ price: string; size: string }>;
  asks: Array<{ price: string; size: string }>;
  tickSize: string;
  hash?: string;
  venueTs: number;
  origin: 'ws' | 'rest';
  lastTop: string;
  lastBookAt: number;
}

/** Depth published on `book.<token_id>` by default. */
export const BOOK_DEPTH = 20;

export interface TokenInfo {
  conditionId: string;
  outcome: string;
  tickSize: string;
}

export type Publish = <M extends BusMessage>(topic: string, msg: Unstamped<M>) => boolean;
/**
 * Publishes a message written entry by entry (BusPublisher.publishWritten); `handle` is what
 * `topicHandle` gave for the topic, if anything.
 */
export type PublishWritten = (topic: string, write: (w: MapWriter) => void, handle?: unknown) => boolean;

export interface BookKeeperOptions {
  publish: Publish;
  /**
   * Where given, price and depth messages (nearly all the scanner publishes) are written straight
   * from the book into msgpack: the same bytes as `publish` of the message object, without the
   * object or its level arrays.
   */
  publishWritten?: PublishWritten;
  /** Resolves a price or depth topic once per token for `publishWritten` (BusPublisher.topic). */
  topicHandle?: (topic: string) => unknown;
  /** Asks for a fresh REST snapshot of a token; its answer comes back as a `rest` book event. */
  requestSnapshot: (tokenId: string, reason: string) => void;
  /** Most often `book.<token>` depth is published per token (ms of pipeline time); 0 = every change. */
  bookIntervalMs: number;
  depth?: number;
  onTickSize?: (conditionId: string, tickSize: string) => void;
  onResolved?: (ev: NMarketResolved) => void;
  onNewMarket?: (ev: NNewMarket) => void;
  log: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

/** Why a book stopped being trusted; counted per reason. */
export type UntrustReason = 'crossed' | 'out_of_order' | 'disconnected' | 'tick_size' | 'top_mismatch' | 'stale_asset' | 'incomplete' | 'parse_error';

type Top = [bid: number | null, bidSize: number, ask: number | null, askSize: number];

/** The checkpoint's text form of a top (`bid/bidSize/ask/askSize`, `null` for an empty side). */
const topKey = (t: Top | undefined): string => (t ? `${t[0]}/${t[1]}/${t[2]}/${t[3]}` : '');

function parseTopKey(key: string): Top | undefined {
  const f = key.split('/');
  if (f.length !== 4) return undefined;
  const num = (x: string) => (x === 'null' ? null : Number(x));
  const t: Top = [num(f[0]!), Number(f[1]), num(f[2]!), Number(f[3])];
  return t.every((x) => x === null || Number.isFinite(x)) ? t : undefined;
}

interface BookState {
  book: L2Book;
  /** Top of book last published on `price.<token>` (bid, bid size, ask, ask size), to publish on change only. */
  lastTop?: Top;
  /** Topics built once per token: a fresh string per message costs a hash in every lookup downstream. */
  priceTopic: string;
  bookTopic: string;
  tradeTopic: string;
  /** `topicHandle` of the price and depth topics, resolved at their first message. */
  priceHandle: unknown;
  bookHandle: unknown;
  /** The book's tick size as last parsed for depth messages. */
  tickText?: string;
  tick: number;
  lastBookAt: number;
  bookDirty: boolean;
  /** Pipeline time since which the book has been untrusted (for untrusted-seconds). */
  untrustedSince?: number;
  /** Trust last announced on `book.status.<token>`. */
  announced?: boolean;
  /** Our receive time of the last event for this token (per-asset staleness). */
  lastEventAt: number;
  /** Encoded leading entries of its price and depth messages, for the market and outcome they name. */
  heads?: { conditionId: string; outcome: string; price: EncodedEntries; book: EncodedEntries };
}

const NO_ENTRIES: EncodedEntries = { bytes: new Uint8Array(0), count: 0 };

/** Map keys of the written price and depth messages, in the order of the message objects. */
const K = {
  bid: FlatEncoder.key('bid'),
  ask: FlatEncoder.key('ask'),
  mid: FlatEncoder.key('mid'),
  bid_size: FlatEncoder.key('bid_size'),
  ask_size: FlatEncoder.key('ask_size'),
  venue_ts: FlatEncoder.key('venue_ts'),
  recv_ts: FlatEncoder.key('recv_ts'),
  bids: FlatEncoder.key('bids'),
  asks: FlatEncoder.key('asks'),
  tick_size: FlatEncoder.key('tick_size'),
  hash: FlatEncoder.key('hash'),
};

function headsOf(st: BookState, info: TokenInfo): NonNullable<BookState['heads']> {
  // Discovery hands over fresh TokenInfo objects each run: compare what the heads hold.
  let h = st.heads;
  if (h === undefined || h.conditionId !== info.conditionId || h.outcome !== info.outcome) {
    const token_id = st.book.tokenId;
    h = st.heads = {
      conditionId: info.conditionId,
      outcome: info.outcome,
      price: FlatEncoder.entries({ type: 'price', token_id, market: info.conditionId, outcome: info.outcome }),
      book: FlatEncoder.entries({ type: 'book', token_id, market: info.conditionId }),
    };
  }
  return h;
}

/**
 * The scanner's local books: applies normalized events, decides when a book can be trusted,
 * asks for REST re-snapshots when it cannot, and publishes top of book, depth, trades and trust
 * changes. Time comes from the events (their receive time), never from a clock, so a replay
 * publishes exactly what the live run did.
 */
export class BookKeeper {
  readonly tokens = new Map<string, TokenInfo>();
  private readonly states = new Map<string, BookState>();
  /** Books whose depth is held back by the interval: flushing looks at these, not at every book. */
  private readonly dirty = new Set<BookState>();
  /** Earliest time a held-back depth message is due: flushing before it has nothing to do. */
  private nextFlushAt = Infinity;
  private readonly depth: number;
  private now = 0;
  private readonly scratch = { touched: [] as BookState[], lastTop: [] as BookState[], lastTopCh: [] as NLevelChange[] };
  /**
   * The price message being written (micros; -1 for an empty side), read by one writer made once:
   * no closure per message, and no fraction boxed on its way to the encoder.
   */
  private readonly pw = { head: NO_ENTRIES, bid: 0, ask: 0, bidSize: 0, askSize: 0, venueTs: 0, recvTs: 0 };
  private readonly writePrice = (w: MapWriter): void => {
    const p = this.pw;
    w.entries(p.head).field(K.bid);
    if (p.bid < 0) w.nil();
    else w.micros(p.bid);
    w.field(K.ask);
    if (p.ask < 0) w.nil();
    else w.micros(p.ask);
    w.field(K.mid);
    if (p.bid < 0 || p.ask < 0) w.nil();
    else w.micros(midMicros(p.bid, p.ask));
    w.field(K.bid_size).micros(p.bidSize).field(K.ask_size).micros(p.askSize);
    w.field(K.venue_ts).number(p.venueTs).field(K.recv_ts).number(p.recvTs);
  };
  /** The depth message being written, likewise. */
  private readonly dw: { head: EncodedEntries; book: L2Book | undefined; tick: number; hash: string | undefined } = {
    head: NO_ENTRIES,
    book: undefined,
    tick: 0,
    hash: undefined,
  };
  private readonly writeDepth = (w: MapWriter): void => {
    const d = this.dw;
    const b = d.book!;
    w.entries(d.head).field(K.bids);
    b.writeLevels(w, 'bids', this.depth);
    w.field(K.asks);
    b.writeLevels(w, 'asks', this.depth);
    w.field(K.tick_size).number(d.tick);
    if (d.hash !== undefined) w.field(K.hash).string(d.hash);
    w.field(K.venue_ts).number(b.venueTs).field(K.recv_ts).number(this.now);
  };
  readonly counters = {
    published_prices: 0,
    published_books: 0,
    trades: 0,
    resnapshots: 0,
    stale_updates: 0,
    deltas_without_snapshot: 0,
    unknown_tokens: 0,
    untrusted_transitions: 0,
    crossed: 0,
    out_of_order: 0,
    incomplete: 0,
    /** Books distrusted from outside (an unreadable update naming them). */
    suspected: 0,
    top_mismatch: 0,
    /** REST snapshots that differed from a book we trusted: updates were missed silently. */
    rest_mismatch: 0,
    tick_size_changes: 0,
    untrusted_ms: 0,
  };

  constructor(private readonly opts: BookKeeperOptions) {
    this.depth = opts.depth ?? BOOK_DEPTH;
  }

  // ------------------------------------------------------------ token set

  /** Sets the followed tokens; books of dropped tokens are forgotten, new ones wait for a snapshot. */
  setTokens(next: Map<string, TokenInfo>): { added: string[]; removed: string[] } {
    const added: string[] = [];
    const removed: string[] = [];
    for (const id of this.tokens.keys()) if (!next.has(id)) removed.push(id);
    for (const [id, info] of next) {
      if (!this.tokens.has(id)) added.push(id);
      this.tokens.set(id, info);
      if (!this.states.has(id)) {
        this.states.set(id, {
          book: new L2Book(id, info.tickSize),
          lastBookAt: -Infinity,
          bookDirty: false,
          lastEventAt: this.now,
          priceTopic: topics.price(id),
          bookTopic: topics.book(id),
          tradeTopic: topics.trade(id),
          priceHandle: undefined,
          bookHandle: undefined,
          tick: 0,
        });
      }
    }
    for (const id of removed) {
      this.tokens.delete(id);
      const st = this.states.get(id);
      if (st) this.dirty.delete(st);
      this.states.delete(id);
    }
    return { added, removed };
  }

  /** Adds tokens without dropping others (round markets join between discoveries). */
  addTokens(extra: Map<string, TokenInfo>): string[] {
    const next = new Map(this.tokens);
    for (const [id, info] of extra) next.set(id, info);
    return this.setTokens(next).added;
  }

  removeTokens(ids: readonly string[]): void {
    const next = new Map(this.tokens);
    for (const id of ids) next.delete(id);
    this.setTokens(next);
  }

  book(tokenId: string): L2Book | undefined {
    return this.states.get(tokenId)?.book;
  }

  get size(): number {
    return this.states.size;
  }

  // ------------------------------------------------------------ events

  apply(ev: NormalizedEvent): void {
    this.now = Math.max(this.now, ev.recvTs);
    switch (ev.type) {
      case 'book':
        return this.onBook(ev);
      case 'price_change':
        return this.onPriceChange(ev);
      case 'tick_size_change':
        return this.onTickSize(ev);
      case 'last_trade_price':
        return this.onTrade(ev);
      case 'best_bid_ask':
        return this.onBestBidAsk(ev);
      case 'new_market':
        return this.onNewMarket(ev);
      case 'market_resolved':
        return this.onMarketResolved(ev);
    }
  }

  /** A connection carrying these tokens went down: deltas across the gap would corrupt the books. */
  disconnected(tokenIds: Iterable<string>, at: number): void {
    this.now = Math.max(this.now, at);
    for (const id of tokenIds) {
      const st = this.states.get(id);
      if (!st) continue;
      st.book.invalidate();
      this.untrust(st, 'disconnected');
    }
  }

  /** Marks a token untrusted and fetches a fresh snapshot (gap suspected by someone else). */
  suspect(tokenId: string, reason: UntrustReason, at: number): void {
    this.now = Math.max(this.now, at);
    const st = this.states.get(tokenId);
    if (!st) return;
    if (st.book.trusted && st.book.hasSnapshot) this.counters.suspected++;
    this.untrust(st, reason);
    this.opts.requestSnapshot(tokenId, reason);
  }

  /** Tokens with no event since `before` (pipeline time), for the per-asset watchdog. */
  quietTokens(before: number): string[] {
    const out: string[] = [];
    for (const [id, st] of this.states) if (st.book.hasSnapshot && st.lastEventAt < before) out.push(id);
    return out;
  }

  /** Resets a token's quiet clock (after the watchdog asked REST about it). */
  touch(tokenId: string, at: number): void {
    const st = this.states.get(tokenId);
    if (st) st.lastEventAt = at;
  }

  /** Publishes depth held back by the interval once it has passed (called on a timer and per frame). */
  flush(at: number): void {
    this.now = Math.max(this.now, at);
    if (this.dirty.size === 0 || this.now < this.nextFlushAt) return;
    let next = Infinity;
    for (const st of this.dirty) {
      if (!st.bookDirty) this.dirty.delete(st);
      else if (this.now - st.lastBookAt >= this.opts.bookIntervalMs) this.publishDepth(st);
      else next = Math.min(next, st.lastBookAt + this.opts.bookIntervalMs);
    }
    this.nextFlushAt = next;
  }

  private onBook(ev: NBook): void {
    const st = this.stateOf(ev.token);
    if (!st) return;
    const b = st.book;
    st.lastEventAt = ev.recvTs;
    // A REST answer older than what the stream already gave is not news.
    if (ev.origin === 'rest' && b.hasSnapshot && b.trusted && ev.venueTs < b.venueTs) {
      this.counters.stale_updates++;
      return;
    }
    if (ev.origin === 'rest') {
      this.counters.resnapshots++;
      if (b.hasSnapshot && b.trusted && !sameLevels(b, ev)) {
        this.counters.rest_mismatch++;
        this.opts.log.warn({ token_id: ev.token }, 'REST book differs from the trusted local book; replaced');
      }
    }
    b.applySnapshot(ev.bids, ev.asks, ev.venueTs, ev.hash);
    b.snapshotOrigin = ev.origin;
    if (ev.tickSize) b.tickSize = ev.tickSize;
    if (b.isCrossed()) {
      // Even a snapshot can be crossed (a torn REST read); only another snapshot can fix it.
      this.counters.crossed++;
      this.untrust(st, 'crossed');
      this.opts.requestSnapshot(ev.token, 'crossed');
      return;
    }
    this.trust(st);
    this.publishTop(st, ev.recvTs, true);
  }

  private onPriceChange(ev: NPriceChange): void {
    // A frame touches one or two books: short arrays beat a Set and a Map per frame, and the same
    // three arrays serve every frame (nothing below comes back here), filled up to a count (setting
    // an array's length is a runtime call).
    const { touched, lastTop, lastTopCh } = this.scratch;
    let nTouched = 0;
    let nLast = 0;
    for (const ch of ev.changes) {
      const st = this.stateOf(ch.token);
      if (!st) continue;
      const b = st.book;
      st.lastEventAt = ev.recvTs;
      if (!b.hasSnapshot) {
        // Deltas need a base; fetch one rather than wait for a `book` that may never come.
        this.counters.deltas_without_snapshot++;
        this.opts.requestSnapshot(ch.token, 'no_snapshot');
        continue;
      }
      if (ev.venueTs < b.venueTs) {
        if (b.snapshotOrigin === 'rest') {
          // Already part of the REST snapshot taken after it was sent.
          this.counters.stale_updates++;
          continue;
        }
        if (b.trusted) {
          this.counters.out_of_order++;
          this.untrust(st, 'out_of_order');
          this.opts.requestSnapshot(ch.token, 'out_of_order');
        }
        continue;
      }
      if (ch.size === undefined) {
        // The level moved but the venue did not say to what: only a snapshot can tell.
        if (b.trusted) {
          this.counters.incomplete++;
          this.untrust(st, 'incomplete');
          this.opts.requestSnapshot(ch.token, 'incomplete');
        }
        continue;
      }
      b.applyChange(ch.side, ch.price, ch.size, ev.venueTs, ch.hash);
      let t = 0;
      while (t < nTouched && touched[t] !== st) t++;
      if (t === nTouched) touched[nTouched++] = st;
      if (ch.bestBid !== undefined || ch.bestAsk !== undefined) {
        let at = 0;
        while (at < nLast && lastTop[at] !== st) at++;
        if (at === nLast) lastTop[nLast++] = st;
        lastTopCh[at] = ch;
      }
    }
    // The venue states each asset's top after the change; only the last item of an asset is final.
    for (let i = 0; i < nLast; i++) {
      const st = lastTop[i]!;
      const ch = lastTopCh[i]!;
      if (st.book.trusted && !this.topMatches(st.book, ch.bestBid, ch.bestAsk) && !st.book.isCrossed()) {
        this.counters.top_mismatch++;
        this.untrust(st, 'top_mismatch');
        this.opts.requestSnapshot(st.book.tokenId, 'top_mismatch');
      }
    }
    for (let i = 0; i < nTouched; i++) {
      const st = touched[i]!;
      if (st.book.isCrossed()) {
        if (st.book.trusted) {
          this.counters.crossed++;
          this.opts.log.warn({ token_id: st.book.tokenId }, 'book crossed after an update; re-snapshotting over REST');
        }
        this.untrust(st, 'crossed');
        this.opts.requestSnapshot(st.book.tokenId, 'crossed');
        continue;
      }
      if (st.book.trusted) this.publishTop(st, ev.recvTs, false);
    }
  }

  private onTickSize(ev: NTickSizeChange): void {
    const info = this.tokens.get(ev.token);
    if (!info) {
      this.counters.unknown_tokens++;
      return;
    }
    this.counters.tick_size_changes++;
    // Both outcomes of a market share the grid; resting levels off the new grid mean our book is stale.
    for (const [id, t] of this.tokens) {
      if (t.conditionId !== info.conditionId) continue;
      t.tickSize = ev.newTickSize;
      const st = this.states.get(id);
      if (!st) continue;
      st.book.tickSize = ev.newTickSize;
      st.lastEventAt = ev.recvTs;
      this.untrust(st, 'tick_size');
      this.opts.requestSnapshot(id, 'tick_size');
    }
    this.opts.onTickSize?.(info.conditionId, ev.newTickSize);
    this.opts.log.info({ market: info.conditionId, old: ev.oldTickSize, new: ev.newTickSize }, 'tick size changed');
  }

  private onTrade(ev: NLastTrade): void {
    const info = this.tokens.get(ev.token);
    if (!info) {
      this.counters.unknown_tokens++;
      return;
    }
    const st = this.states.get(ev.token);
    if (st) st.lastEventAt = ev.recvTs;
    // The trade schema needs a side; the venue has always sent one, but it is not documented.
    if (!ev.side) return;
    const msg: Unstamped<TradeMessage> = {
      type: 'trade',
      token_id: ev.token,
      market: info.conditionId,
      price: microsToNumber(parseMicros(ev.price)),
      size: microsToNumber(parseMicros(ev.size)),
      side: ev.side,
      venue_ts: ev.venueTs,
      recv_ts: ev.recvTs,
    };
    if (this.opts.publish(st?.tradeTopic ?? topics.trade(ev.token), msg)) this.counters.trades++;
  }

  private onBestBidAsk(ev: NBestBidAsk): void {
    const st = this.stateOf(ev.token);
    if (!st) return;
    st.lastEventAt = ev.recvTs;
    const b = st.book;
    if (!b.hasSnapshot || !b.trusted || ev.venueTs < b.venueTs) return;
    if (!this.topMatches(b, ev.bestBid, ev.bestAsk)) {
      this.counters.top_mismatch++;
      this.untrust(st, 'top_mismatch');
      this.opts.requestSnapshot(ev.token, 'top_mismatch');
    }
  }

  private onNewMarket(ev: NNewMarket): void {
    const msg: Unstamped<MarketMessage> = {
      type: 'market',
      event: 'new',
      market: ev.market,
      ...(ev.slug ? { slug: ev.slug.slice(0, 300) } : {}),
      ...(ev.question ? { question: ev.question.slice(0, 1000) } : {}),
      token_ids: ev.tokens.slice(0, 100),
      venue_ts: ev.venueTs,
      recv_ts: ev.recvTs,
    };
    this.opts.publish(topics.market(ev.market), msg);
    this.opts.onNewMarket?.(ev);
  }

  private onMarketResolved(ev: NMarketResolved): void {
    const msg: Unstamped<MarketMessage> = {
      type: 'market',
      event: 'resolved',
      market: ev.market,
      ...(ev.slug ? { slug: ev.slug.slice(0, 300) } : {}),
      token_ids: ev.tokens.slice(0, 100),
      winning_token_id: ev.winningToken,
      ...(ev.winningOutcome ? { winning_outcome: ev.winningOutcome.slice(0, 200) } : {}),
      venue_ts: ev.venueTs,
      recv_ts: ev.recvTs,
    };
    this.opts.publish(topics.market(ev.market), msg);
    this.opts.onResolved?.(ev);
  }

  // ------------------------------------------------------------ trust

  private stateOf(tokenId: string): BookState | undefined {
    const st = this.states.get(tokenId);
    if (!st) this.counters.unknown_tokens++;
    return st;
  }

  /** The venue writes an empty side as best bid "0" / best ask "1". */
  private topMatches(b: L2Book, bestBid: string | undefined, bestAsk: string | undefined): boolean {
    const t = b.top();
    if (bestBid !== undefined && (t.bid ?? 0) !== parseMicros(bestBid)) return false;
    if (bestAsk !== undefined && (t.ask ?? 1_000_000) !== parseMicros(bestAsk)) return false;
    return true;
  }

  private untrust(st: BookState, reason: UntrustReason): void {
    const wasTrusted = st.book.trusted && st.book.hasSnapshot && st.untrustedSince === undefined;
    st.book.trusted = false;
    if (st.untrustedSince === undefined) st.untrustedSince = this.now;
    if (wasTrusted) this.counters.untrusted_transitions++;
    this.announce(st, false, reason);
  }

  private trust(st: BookState): void {
    if (st.untrustedSince !== undefined) {
      this.counters.untrusted_ms += Math.max(0, this.now - st.untrustedSince);
      st.untrustedSince = undefined;
    }
    this.announce(st, true, 'snapshot');
  }

  /** Untrusted time including books untrusted right now. */
  untrustedMs(): number {
    let ms = this.counters.untrusted_ms;
    for (const st of this.states.values()) if (st.untrustedSince !== undefined) ms += Math.max(0, this.now - st.untrustedSince);
    return ms;
  }

  trustedCount(): number {
    let n = 0;
    for (const st of this.states.values()) if (st.book.hasSnapshot && st.book.trusted) n++;
    return n;
  }

  /** Tells consumers when a book stops or starts being usable (only on a change). */
  private announce(st: BookState, trusted: boolean, reason: string): void {
    const id = st.book.tokenId;
    const info = this.tokens.get(id);
    if (!info || st.announced === trusted) return;
    // A book trusted from its first snapshot needs no message: trust is the default.
    if (st.announced === undefined && trusted) {
      st.announced = true;
      return;
    }
    st.announced = trusted;
    const msg: Unstamped<BookStatusMessage> = {
      type: 'book_status',
      token_id: id,
      market: info.conditionId,
      trusted,
      reason,
      venue_ts: st.book.venueTs,
    };
    this.opts.publish(topics.bookStatus(id), msg);
  }

  // ------------------------------------------------------------ publishing

  private publishTop(st: BookState, recvTs: number, snapshot: boolean): void {
    const info = this.tokens.get(st.book.tokenId);
    if (!info) return;
    const b = st.book;
    const t = b.top();
    const lt = st.lastTop;
    if (snapshot || !lt || lt[0] !== t.bid || lt[1] !== t.bidSize || lt[2] !== t.ask || lt[3] !== t.askSize) {
      if (lt) {
        lt[0] = t.bid;
        lt[1] = t.bidSize;
        lt[2] = t.ask;
        lt[3] = t.askSize;
      } else st.lastTop = [t.bid, t.bidSize, t.ask, t.askSize];
      const written = this.opts.publishWritten;
      if (written) {
        const pw = this.pw;
        pw.head = headsOf(st, info).price;
        pw.bid = t.bid ?? -1;
        pw.ask = t.ask ?? -1;
        pw.bidSize = t.bidSize;
        pw.askSize = t.askSize;
        pw.venueTs = b.venueTs;
        pw.recvTs = recvTs;
        if (written(st.priceTopic, this.writePrice, (st.priceHandle ??= this.opts.topicHandle?.(st.priceTopic)))) this.counters.published_prices++;
      } else {
        const price: Unstamped<PriceMessage> = {
          type: 'price',
          token_id: b.tokenId,
          market: info.conditionId,
          outcome: info.outcome,
          bid: t.bid === null ? null : microsToNumber(t.bid),
          ask: t.ask === null ? null : microsToNumber(t.ask),
          mid: t.bid !== null && t.ask !== null ? microsToNumber(midMicros(t.bid, t.ask)) : null,
          bid_size: microsToNumber(t.bidSize),
          ask_size: microsToNumber(t.askSize),
          venue_ts: b.venueTs,
          recv_ts: recvTs,
        };
        if (this.opts.publish(st.priceTopic, price)) this.counters.published_prices++;
      }
    }
    st.bookDirty = true;
    if (snapshot || this.now - st.lastBookAt >= this.opts.bookIntervalMs) this.publishDepth(st);
    else {
      this.dirty.add(st);
      this.nextFlushAt = Math.min(this.nextFlushAt, st.lastBookAt + this.opts.bookIntervalMs);
    }
  }

  private publishDepth(st: BookState): void {
    const info = this.tokens.get(st.book.tokenId);
    st.bookDirty = false;
    this.dirty.delete(st);
    if (!info || !st.book.trusted || !st.book.hasSnapshot) return;
    st.lastBookAt = this.now;
    const b = st.book;
    // Parsed once per tick size rather than per message.
    if (st.tickText !== b.tickSize) {
      st.tickText = b.tickSize;
      st.tick = Number(b.tickSize);
    }
    const tick = st.tick > 0 && st.tick <= 1 ? st.tick : 0.01;
    // Undefined rather than a spread: one object shape for every depth message (not encoded).
    const hash = b.hash ? b.hash.slice(0, 128) : undefined;
    const written = this.opts.publishWritten;
    if (written) {
      const dw = this.dw;
      dw.head = headsOf(st, info).book;
      dw.book = b;
      dw.tick = tick;
      dw.hash = hash;
      const ok = written(st.bookTopic, this.writeDepth, (st.bookHandle ??= this.opts.topicHandle?.(st.bookTopic)));
      dw.book = undefined;
      if (ok) this.counters.published_books++;
      return;
    }
    const { bids, asks } = b.levels(this.depth);
    const depth: Unstamped<BookMessage> = {
      type: 'book',
      token_id: b.tokenId,
      market: info.conditionId,
      bids,
      asks,
      tick_size: tick,
      hash,
      venue_ts: b.venueTs,
      recv_ts: this.now,
    };
    if (this.opts.publish(st.bookTopic, depth)) this.counters.published_books++;
  }

  /** `books.snapshot` over scanner.rep: what a late joiner applies before the stream's newer updates. */
  snapshot(ids: readonly string[] | undefined, depth: number, seq: number): RpcResult<'books.snapshot'> {
    const out: RpcResult<'books.snapshot'>['books'] = [];
    for (const id of ids ?? [...this.states.keys()]) {
      const st = this.states.get(id);
      const info = this.tokens.get(id);
      if (!st || !info || !st.book.hasSnapshot) continue;
      const b = st.book;
      const { bids, asks } = b.levels(depth);
      const tick = Number(b.tickSize);
      out.push({
        token_id: id,
        market: info.conditionId,
        trusted: b.trusted,
        bids,
        asks,
        tick_size: tick > 0 && tick <= 1 ? tick : 0.01,
        ...(b.hash ? { hash: b.hash.slice(0, 128) } : {}),
        venue_ts: b.venueTs,
      });
    }
    return { seq, books: out };
  }

  /** The trusted books as they are, for the start of a recording. */
  checkpoint(): BookCheckpoint[] {
    const out: BookCheckpoint[] = [];
    for (const [id, st] of this.states) {
      const b = st.book;
      if (!b.hasSnapshot || !b.trusted) continue;
      const side = (m: ReadonlyMap<number, number>) => [...m].map(([p, s]) => ({ price: microsToString(p), size: microsToString(s) }));
      out.push({
        token: id,
        bids: side(b.bids),
        asks: side(b.asks),
        tickSize: b.tickSize,
        ...(b.hash !== undefined ? { hash: b.hash } : {}),
        venueTs: b.venueTs,
        origin: b.snapshotOrigin,
        lastTop: topKey(st.lastTop),
        lastBookAt: Number.isFinite(st.lastBookAt) ? st.lastBookAt : -1,
      });
    }
    return out;
  }

  /** Puts books back as a checkpoint had them, publishing nothing (the live run published it before). */
  restore(cps: readonly BookCheckpoint[], at: number): void {
    this.now = Math.max(this.now, at);
    for (const cp of cps) {
      const st = this.states.get(cp.token);
      if (!st) continue;
      st.book.applySnapshot(cp.bids, cp.asks, cp.venueTs, cp.hash);
      st.book.snapshotOrigin = cp.origin;
      st.book.tickSize = cp.tickSize;
      st.lastTop = cp.lastTop ? parseTopKey(cp.lastTop) : undefined;
      st.lastBookAt = cp.lastBookAt >= 0 ? cp.lastBookAt : -Infinity;
      st.lastEventAt = at;
      st.announced = true;
      st.untrustedSince = undefined;
    }
  }

  /** Forgets every level (before a replay, or after one, to rebuild from the live feed). */
  reset(): void {
    for (const st of this.states.values()) {
      st.book.invalidate();
      st.book.trusted = true;
      st.lastTop = undefined;
      st.bookDirty = false;
      st.lastBookAt = -Infinity;
      this.dirty.delete(st);
      st.untrustedSince = undefined;
      st.announced = undefined;
    }
    this.now = 0;
    this.nextFlushAt = Infinity;
  }
}

/** Whether a snapshot holds exactly the levels of a local book. */
function sameLevels(b: L2Book, ev: NBook): boolean {
  const side = (levels: readonly { price: string; size: string }[], map: ReadonlyMap<number, number>): boolean => {
    let n = 0;
    for (const l of levels) {
      const s = parseMicros(l.size);
      if (!(s > 0)) continue;
      n++;
      if (map.get(parseMicros(l.price)) !== s) return false;
    }
    return n === map.size;
  };
  return side(ev.bids, b.bids) && side(ev.asks, b.asks);
}
