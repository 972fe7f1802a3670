import { MARKET_EVENT_PARSERS, marketEventType, type WsMarketEvent } from '@polybot/polymarket';

/**
 * Market-channel processors: one per venue event type, each turning a validated venue object into a
 * normalized event — one timestamp convention (ms numbers), the venue's time and ours, token ids
 * under one name, prices and sizes kept as the venue's exact decimal strings. Values no real book
 * can hold (a price outside 0..1, a negative or absurd size, a timestamp that is not ms since 2001)
 * make the whole object invalid: better skipped and counted than let into a book.
 */

export interface NLevel {
  price: string;
  size: string;
}

export interface NBook {
  type: 'book';
  token: string;
  market: string;
  /** As the venue lists them (best last); books do not care about order. */
  bids: NLevel[];
  asks: NLevel[];
  tickSize?: string;
  minOrderSize?: string;
  lastTradePrice?: string;
  hash?: string;
  /** `ws` from the market channel, `rest` from a `/book` re-snapshot. */
  origin: 'ws' | 'rest';
  venueTs: number;
  recvTs: number;
}

export interface NLevelChange {
  token: string;
  side: 'BUY' | 'SELL';
  price: string;
  /**
   * New aggregate size at the price; "0" removes the level. Absent when the venue left it out
   * (clients treat it as optional): the level's size is then unknown and the book needs a snapshot.
   */
  size?: string;
  hash?: string;
  bestBid?: string;
  bestAsk?: string;
}

export interface NPriceChange {
  type: 'price_change';
  market: string;
  changes: NLevelChange[];
  venueTs: number;
  recvTs: number;
}

export interface NTickSizeChange {
  type: 'tick_size_change';
  token: string;
  market: string;
  oldTickSize: string;
  newTickSize: string;
  venueTs: number;
  recvTs: number;
}

export interface NLastTrade {
  type: 'last_trade_price';
  token: string;
  market: string;
  price: string;
  size: string;
  side?: 'BUY' | 'SELL';
  feeRateBps?: string;
  venueTs: number;
  recvTs: number;
}

export interface NBestBidAsk {
  type: 'best_bid_ask';
  token: string;
  market: string;
  bestBid: string;
  bestAsk: string;
  spread?: string;
  venueTs: number;
  recvTs: number;
}

export interface NNewMarket {
  type: 'new_market';
  market: string;
  id?: string;
  slug?: string;
  question?: string;
  tokens: string[];
  outcomes: string[];
  tickSize?: string;
  venueTs: number;
  recvTs: number;
}

export interface NMarketResolved {
  type: 'market_resolved';
  market: string;
  id?: string;
  slug?: string;
  tokens: string[];
  winningToken: string;
  winningOutcome?: string;
  venueTs: number;
  recvTs: number;
}

export type NormalizedEvent = NBook | NPriceChange | NTickSizeChange | NLastTrade | NBestBidAsk | NNewMarket | NMarketResolved;
export type NormalizedType = NormalizedEvent['type'];
export const NORMALIZED_TYPES: readonly NormalizedType[] = [
  'book',
  'price_change',
  'tick_size_change',
  'last_trade_price',
  'best_bid_ask',
  'new_market',
  'market_resolved',
];

// ---------------------------------------------------------------- value checks

/** Up to 9 integer digits and any fraction: a level of 10^9 shares or more is not a real book. */
export const SIZE_RE = /^(?:\d{1,9}(?:\.\d*)?|\.\d+)$/;
/** A probability: 0, 1, or a fraction, with or without the leading zero (".48"). */
export const PRICE_RE = /^(?:0?\.\d+|0(?:\.0*)?|1(?:\.0*)?)$/;
/** Token ids are decimal on the venue; the simulator and tests use the same alphabet as the bus. */
export const TOKEN_RE = /^[0-9A-Za-z_-]{1,100}$/;
/** Below this a timestamp is in seconds (1e11 s is the year 5138; 1e11 ms is 1973). */
const SECONDS_BELOW = 1e11;
/** 1973 (the docs' own examples use such times) .. 2286, in ms. */
const MIN_TS = 1e11;
const MAX_TS = 1e13;

// The checks below run several times per event, so they walk the characters by hand; each
// accepts exactly what its regular expression above accepts (property-tested against it).

/** Characters `from`..end are all decimal digits (true for none). */
function digitsFrom(s: string, from: number): boolean {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** PRICE_RE */
export function isPrice(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  const c0 = s.charCodeAt(0);
  if (c0 === 46) return n > 1 && digitsFrom(s, 1); // ".48"
  if (n === 1) return c0 === 48 || c0 === 49; // "0", "1"
  if (s.charCodeAt(1) !== 46) return false;
  if (c0 === 48) return digitsFrom(s, 2); // "0.", "0.48"
  if (c0 !== 49) return false;
  for (let i = 2; i < n; i++) if (s.charCodeAt(i) !== 48) return false; // "1.", "1.00"
  return true;
}

/** SIZE_RE */
export function isSize(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  if (s.charCodeAt(0) === 46) return n > 1 && digitsFrom(s, 1); // ".5"
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i === 0 || i > 9) return false;
  if (i === n) return true;
  return s.charCodeAt(i) === 46 && digitsFrom(s, i + 1);
}

/** Token ids seen valid lately: the same few hundred ids come in every frame. */
const validTokens = new Set<string>();

/** TOKEN_RE */
export function isToken(s: string): boolean {
  if (validTokens.has(s)) return true;
  const n = s.length;
  if (n === 0 || n > 100) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    // 0-9, A-Z, a-z, '_', '-'
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45)) return false;
  }
  if (validTokens.size >= 4096) validTokens.clear();
  validTokens.add(s);
  return true;
}

/** The venue's timestamp string as ms since the epoch (seconds are scaled); undefined if absurd. */
export function venueTimestamp(s: string): number | undefined {
  if (s.length === 0 || s.length > 16 || !digitsFrom(s, 0)) return undefined;
  let n = Number(s);
  if (n < SECONDS_BELOW) n *= 1000;
  return n >= MIN_TS && n < MAX_TS ? n : undefined;
}

/** A reason string when invalid, else the normalized event. */
export type ProcessResult = NormalizedEvent | string;
export type Processor = (ev: WsMarketEvent, recvTs: number) => ProcessResult;

const noUndef = <T extends object>(o: T): T => {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
};

// ---------------------------------------------------------------- processors

export const PROCESSORS: Readonly<Record<NormalizedType, Processor>> = {
  // The two hot types are checked field by field (below); their venue object is already the right shape.
  book: (ev, recvTs) => (ev.event_type === 'book' ? fastBook(ev as unknown as Obj, recvTs, 'ws') : 'type'),
  price_change: (ev, recvTs) => (ev.event_type === 'price_change' ? fastPriceChange(ev as unknown as Obj, recvTs) : 'type'),
  tick_size_change(ev, recvTs) {
    if (ev.event_type !== 'tick_size_change') return 'type';
    const venueTs = venueTimestamp(ev.timestamp);
    if (venueTs === undefined) return 'timestamp';
    if (!isToken(ev.asset_id)) return 'token';
    if (!isPrice(ev.new_tick_size) || !isPrice(ev.old_tick_size) || Number(ev.new_tick_size) <= 0) return 'tick_size';
    return {
      type: 'tick_size_change',
      token: ev.asset_id,
      market: ev.market,
      oldTickSize: ev.old_tick_size,
      newTickSize: ev.new_tick_size,
      venueTs,
      recvTs,
    };
  },
  last_trade_price(ev, recvTs) {
    if (ev.event_type !== 'last_trade_price') return 'type';
    const venueTs = venueTimestamp(ev.timestamp);
    if (venueTs === undefined) return 'timestamp';
    if (!isToken(ev.asset_id)) return 'token';
    const size = ev.size ?? '0';
    if (!isPrice(ev.price) || !isSize(size)) return 'level';
    return noUndef<NLastTrade>({
      type: 'last_trade_price',
      token: ev.asset_id,
      market: ev.market,
      price: ev.price,
      size,
      side: ev.side,
      feeRateBps: ev.fee_rate_bps,
      venueTs,
      recvTs,
    });
  },
  best_bid_ask(ev, recvTs) {
    if (ev.event_type !== 'best_bid_ask') return 'type';
    const venueTs = venueTimestamp(ev.timestamp);
    if (venueTs === undefined) return 'timestamp';
    if (!isToken(ev.asset_id)) return 'token';
    if (!isPrice(ev.best_bid) || !isPrice(ev.best_ask)) return 'level';
    return noUndef<NBestBidAsk>({
      type: 'best_bid_ask',
      token: ev.asset_id,
      market: ev.market,
      bestBid: ev.best_bid,
      bestAsk: ev.best_ask,
      spread: ev.spread,
      venueTs,
      recvTs,
    });
  },
  new_market(ev, recvTs) {
    if (ev.event_type !== 'new_market') return 'type';
    const venueTs = venueTimestamp(ev.timestamp);
    if (venueTs === undefined) return 'timestamp';
    if (!ev.assets_ids.every(isToken)) return 'token';
    return noUndef<NNewMarket>({
      type: 'new_market',
      market: ev.market,
      id: ev.id,
      slug: ev.slug,
      question: ev.question,
      tokens: ev.assets_ids,
      outcomes: ev.outcomes ?? [],
      tickSize: ev.order_price_min_tick_size,
      venueTs,
      recvTs,
    });
  },
  market_resolved(ev, recvTs) {
    if (ev.event_type !== 'market_resolved') return 'type';
    const venueTs = venueTimestamp(ev.timestamp);
    if (venueTs === undefined) return 'timestamp';
    if (!ev.assets_ids.every(isToken) || !ev.assets_ids.includes(ev.winning_asset_id)) return 'token';
    return noUndef<NMarketResolved>({
      type: 'market_resolved',
      market: ev.market,
      id: ev.id,
      slug: ev.slug,
      tokens: ev.assets_ids,
      winningToken: ev.winning_asset_id,
      winningOutcome: ev.winning_outcome,
      venueTs,
      recvTs,
    });
  },
};

// ---------------------------------------------------------------- frames

export interface FrameResult {
  events: NormalizedEvent[];
  /**
   * Objects (or the whole frame) rejected, with the event type they claimed ('frame' if none) and
   * the assets they named, if any: those books missed an update and cannot be trusted.
   */
  invalid: Array<{ type: string; reason: string; assets?: string[] }>;
  /** Event types we do not consume. */
  unknown: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------- hot paths
// `book` and `price_change` are nearly all of the traffic: they are checked field by field here
// (types, then values) instead of by the generic schema plus the value checks above — the same
// rules, about three times cheaper. Rarer types and the legacy price_change shapes take the
// schema path.

const optString = (v: unknown): v is string | undefined => v === undefined || typeof v === 'string';

function levelsOf(v: unknown): NLevel[] | 'schema' | 'level' {
  if (!Array.isArray(v)) return 'schema';
  for (const l of v as unknown[]) {
    if (typeof l !== 'object' || l === null) return 'schema';
    const { price, size } = l as { price?: unknown; size?: unknown };
    if (typeof price !== 'string' || typeof size !== 'string') return 'schema';
    if (!isPrice(price) || !isSize(size)) return 'level';
  }
  return v as NLevel[];
}

function fastBook(o: Obj, recvTs: number, origin: 'ws' | 'rest'): ProcessResult {
  const { asset_id, market, timestamp, hash, tick_size, min_order_size, last_trade_price } = o;
  if (typeof asset_id !== 'string' || typeof market !== 'string' || typeof timestamp !== 'string') return 'schema';
  if (!optString(hash) || !optString(tick_size) || !optString(min_order_size) || !optString(last_trade_price)) return 'schema';
  const bids = levelsOf(o.bids);
  if (typeof bids === 'string') return bids;
  const asks = levelsOf(o.asks);
  if (typeof asks === 'string') return asks;
  const venueTs = venueTimestamp(timestamp);
  if (venueTs === undefined) return 'timestamp';
  if (!isToken(asset_id)) return 'token';
  if (tick_size !== undefined && !isPrice(tick_size)) return 'tick_size';
  const ev: NBook = { type: 'book', token: asset_id, market, bids, asks, origin, venueTs, recvTs };
  if (tick_size !== undefined) ev.tickSize = tick_size;
  if (min_order_size !== undefined) ev.minOrderSize = min_order_size;
  if (last_trade_price !== undefined) ev.lastTradePrice = last_trade_price;
  if (hash !== undefined) ev.hash = hash;
  return ev;
}

function fastPriceChange(o: Obj, recvTs: number): ProcessResult {
  const { market, timestamp, price_changes } = o;
  if (typeof market !== 'string' || typeof timestamp !== 'string' || !Array.isArray(price_changes)) return 'schema';
  const venueTs = venueTimestamp(timestamp);
  const changes: NLevelChange[] = [];
  for (const c of price_changes as unknown[]) {
    if (typeof c !== 'object' || c === null || Array.isArray(c)) return 'schema';
    const { asset_id, price, side, size, hash, best_bid, best_ask } = c as Obj;
    if (typeof asset_id !== 'string' || typeof price !== 'string' || (side !== 'BUY' && side !== 'SELL')) return 'schema';
    if (!optString(size) || !optString(hash) || !optString(best_bid) || !optString(best_ask)) return 'schema';
    if (!isToken(asset_id)) return 'token';
    if (!isPrice(price) || (size !== undefined && !isSize(size))) return 'level';
    if ((best_bid !== undefined && !isPrice(best_bid)) || (best_ask !== undefined && !isPrice(best_ask))) return 'best_price';
    // Every field in one literal (absent ones undefined): one object shape, no property store grown
    // field by field.
    changes.push({ token: asset_id, side, price, size, hash, bestBid: best_bid, bestAsk: best_ask });
  }
  if (venueTs === undefined) return 'timestamp';
  return { type: 'price_change', market, changes, venueTs, recvTs };
}

/** Level-changing events only: a bad trade print or listing does not make a book wrong. */
const BOOK_TYPES = new Set(['book', 'price_change', 'tick_size_change']);

/** The asset ids a rejected object names (strings that look like token ids), at most 100. */
function withAssets(bad: { type: string; reason: string }, o: Obj): { type: string; reason: string; assets?: string[] } {
  if (!BOOK_TYPES.has(bad.type)) return bad;
  const assets = new Set<string>();
  if (typeof o.asset_id === 'string' && isToken(o.asset_id)) assets.add(o.asset_id);
  if (Array.isArray(o.price_changes)) {
    for (const c of o.price_changes as unknown[]) {
      const a = isObj(c) ? c.asset_id : undefined;
      if (typeof a === 'string' && isToken(a) && assets.size < 100) assets.add(a);
    }
  }
  return assets.size > 0 ? { ...bad, assets: [...assets] } : bad;
}

function processObject(o: unknown, recvTs: number, out: FrameResult): void {
  if (!isObj(o)) {
    out.invalid.push({ type: 'frame', reason: 'not an object' });
    return;
  }
  const type = marketEventType(o);
  if (typeof type !== 'string' || !Object.hasOwn(PROCESSORS, type)) {
    out.unknown.push(typeof type === 'string' ? type.slice(0, 40) : '(none)');
    return;
  }
  const t = type as NormalizedType;
  let res: ProcessResult;
  if (t === 'book') res = fastBook(o, recvTs, 'ws');
  else if (t === 'price_change' && Array.isArray(o.price_changes)) res = fastPriceChange(o, recvTs);
  else {
    const ev = MARKET_EVENT_PARSERS[t]?.(o);
    if (!ev) {
      out.invalid.push(withAssets({ type: t, reason: 'schema' }, o));
      return;
    }
    res = PROCESSORS[t](ev, recvTs);
  }
  if (typeof res === 'string') out.invalid.push(withAssets({ type: t, reason: res }, o));
  else out.events.push(res);
}

/** One market-channel frame (an object or an array of them) → normalized events; never throws. */
export function processMarketFrame(text: string, recvTs: number, out: FrameResult = { events: [], invalid: [], unknown: [] }): FrameResult {
  // Heartbeat answers carry nothing (the live client drops them; recordings from elsewhere may not).
  if (text === 'PONG') return out;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    out.invalid.push({ type: 'frame', reason: 'json' });
    return out;
  }
  return processMarketValue(data, recvTs, out);
}

/** As `processMarketFrame`, for a frame already parsed (a replayed template frame). */
export function processMarketValue(data: unknown, recvTs: number, out: FrameResult = { events: [], invalid: [], unknown: [] }): FrameResult {
  if (Array.isArray(data)) for (const item of data) processObject(item, recvTs, out);
  else processObject(data, recvTs, out);
  return out;
}

/** A REST `GET /book` answer (no `event_type`) → a normalized book snapshot. */
export function processRestBook(text: string, recvTs: number): FrameResult {
  const out: FrameResult = { events: [], invalid: [], unknown: [] };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    out.invalid.push({ type: 'book', reason: 'json' });
    return out;
  }
  if (!isObj(data)) {
    out.invalid.push({ type: 'book', reason: 'not an object' });
    return out;
  }
  const res = fastBook(data, recvTs, 'rest');
  if (typeof res === 'string') out.invalid.push(withAssets({ type: 'book', reason: res }, data));
  else out.events.push(res);
  return out;
}
