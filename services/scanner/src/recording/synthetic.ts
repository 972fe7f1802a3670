/**
 * Seeded, deterministic market-channel data in the venue's current formats (PROTOCOL.md §1): for
 * tests, benchmarks and the recording size target. The same options always give the same frames.
 *
 * - `syntheticMarkets(opts)` → the markets (condition id, YES/NO token ids) the stream covers.
 * - `syntheticFrames(opts)` → iterator of `RawFrame`s; `generateFrames(opts)` → the same as an array.
 *   Per connection first one array frame of `book` events (every token it serves), then a stream of
 *   `price_change` (current `price_changes[]` shape, both tokens of the market), `last_trade_price`
 *   (each followed by the `price_change` of the level it consumed), rarely `tick_size_change`, and
 *   `PONG` answers every 10 s per connection.
 * - `syntheticBusEvents(frames)` / `syntheticRecording(opts)` → the bus messages a scanner publishes
 *   for those frames (`price` + 20-level `book` per touched token, `trade` per last trade), encoded
 *   with the bus `Codec`, as `event` records; `syntheticRecording` interleaves them with the frames.
 *
 * Book model: each market has one book (the YES token's); the NO token's book is its mirror (a YES
 * bid at p is a NO ask at 1-p of the same size), as on the venue, so both tokens stay consistent and
 * neither is ever crossed. Prices are integers in 1/1000, sizes in micro-shares, formatted the way
 * the venue prints them (no trailing zeros).
 */
import { Codec, type BookMessage, type PriceMessage, type TradeMessage } from '@polybot/protocol';
import type { RawFrame, RecordingRecord } from '../pipeline/types.js';

export interface SyntheticOptions {
  /** PRNG seed (default 1). */
  seed?: number;
  /** Binary markets (default 50). */
  markets?: number;
  /** Stream events after the initial book dump (default 10,000); a trade counts once (two frames). */
  events?: number;
  /** Mean stream events per second over all markets (default 3,000). */
  ratePerSec?: number;
  /** Receive time of the first frame, ms (default 2026-01-01T00:00:00Z). */
  startTs?: number;
  /** Tokens per market-channel connection (default 200, nautilus's default shard size). */
  tokensPerConn?: number;
}

export interface SyntheticMarket {
  conditionId: string;
  yesToken: string;
  noToken: string;
  conn: number;
}

/** sfc32: small, fast, good enough for test data, and identical on every platform. */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.u32() / 4294967296;
  }

  int(lo: number, hiExclusive: number): number {
    return lo + Math.floor(this.next() * (hiExclusive - lo));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  hex(n: number): string {
    let s = '';
    while (s.length < n) s += this.u32().toString(16).padStart(8, '0');
    return s.slice(0, n);
  }

  digits(n: number): string {
    let s = String(this.int(1, 10));
    while (s.length < n) s += String(this.u32() % 1_000_000_000).padStart(9, '0');
    return s.slice(0, n);
  }

  /** Exponential with the given mean. */
  exp(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }
}

const MICRO = 1_000_000;

/** Price in 1/1000 → venue string ("0.52", "0.5", "0.001"). */
function fmtPrice(milli: number): string {
  const s = (milli / 1000).toFixed(3);
  return s.replace(/0+$/, '').replace(/\.$/, '');
}

/** Micro-shares → venue string ("1500", "199.31", "219.217767"). */
function fmtSize(micros: number): string {
  const int = Math.floor(micros / MICRO);
  const frac = micros % MICRO;
  if (frac === 0) return String(int);
  return `${int}.${String(frac).padStart(6, '0').replace(/0+$/, '')}`;
}

/** Resting sizes as people type them: mostly round share counts or cents, rarely odd remainders. */
function randomSize(rng: Rng): number {
  const shares = Math.exp(Math.log(5) + rng.next() * (Math.log(50_000) - Math.log(5)));
  const r = rng.next();
  if (r < 0.45) return Math.max(5, Math.round(shares)) * MICRO;
  if (r < 0.95) return Math.max(500, Math.round(shares * 100)) * 10_000;
  return Math.max(5 * MICRO, Math.round(shares * MICRO));
}

interface MarketState extends SyntheticMarket {
  /** YES book: price (1/1000) → size (micro-shares). */
  bids: Map<number, number>;
  asks: Map<number, number>;
  tick: number;
  negRisk: boolean;
  lastTrade: number;
  venueTs: number;
}

function best(side: Map<number, number>, highest: boolean): number {
  let b = highest ? 0 : 1000;
  for (const p of side.keys()) if (highest ? p > b : p < b) b = p;
  return b;
}

/** The markets a given seed and count produce (same ids as the frames use). */
export function syntheticMarkets(opts: SyntheticOptions = {}): SyntheticMarket[] {
  return buildMarkets(opts).markets.map(({ conditionId, yesToken, noToken, conn }) => ({ conditionId, yesToken, noToken, conn }));
}

function buildMarkets(opts: SyntheticOptions): { rng: Rng; markets: MarketState[] } {
  const rng = new Rng(opts.seed ?? 1);
  const n = opts.markets ?? 50;
  const perConn = Math.max(2, opts.tokensPerConn ?? 200);
  const markets: MarketState[] = [];
  for (let i = 0; i < n; i++) {
    const tick = 10;
    const mid = rng.int(5, 96) * 10;
    const spreadTicks = rng.int(1, 4);
    const bestBid = Math.max(tick, mid - Math.floor(spreadTicks / 2) * tick);
    const bestAsk = Math.min(1000 - tick, bestBid + spreadTicks * tick);
    const m: MarketState = {
      conditionId: `0x${rng.hex(64)}`,
      yesToken: rng.digits(77),
      noToken: rng.digits(77),
      conn: Math.floor((i * 2) / perConn),
      bids: new Map(),
      asks: new Map(),
      tick,
      negRisk: rng.chance(0.3),
      lastTrade: mid,
      venueTs: 0,
    };
    const depth = rng.int(8, 40);
    for (let k = 0, p = bestBid; k < depth && p >= tick; k++, p -= tick) if (k === 0 || rng.chance(0.7)) m.bids.set(p, randomSize(rng));
    for (let k = 0, p = bestAsk; k < depth && p <= 1000 - tick; k++, p += tick) if (k === 0 || rng.chance(0.7)) m.asks.set(p, randomSize(rng));
    markets.push(m);
  }
  return { rng, markets };
}

interface Level {
  price: string;
  size: string;
}

/** Venue order: bids ascending, asks descending, so the best level is LAST. */
function tokenBook(m: MarketState, yes: boolean): { bids: Level[]; asks: Level[] } {
  const lv = (p: number, s: number): Level => ({ price: fmtPrice(p), size: fmtSize(s) });
  if (yes) {
    return {
      bids: [...m.bids.entries()].sort((a, b) => a[0] - b[0]).map(([p, s]) => lv(p, s)),
      asks: [...m.asks.entries()].sort((a, b) => b[0] - a[0]).map(([p, s]) => lv(p, s)),
    };
  }
  return {
    bids: [...m.asks.entries()].sort((a, b) => b[0] - a[0]).map(([p, s]) => lv(1000 - p, s)),
    asks: [...m.bids.entries()].sort((a, b) => a[0] - b[0]).map(([p, s]) => lv(1000 - p, s)),
  };
}

function bookEvent(rng: Rng, m: MarketState, yes: boolean, ts: number): string {
  const { bids, asks } = tokenBook(m, yes);
  // Key order as in recorded venue data (alphabetical, like the 2024 capture), newer fields included.
  return JSON.stringify({
    asks,
    asset_id: yes ? m.yesToken : m.noToken,
    bids,
    event_type: 'book',
    hash: rng.hex(40),
    last_trade_price: fmtPrice(yes ? m.lastTrade : 1000 - m.lastTrade),
    market: m.conditionId,
    min_order_size: '5',
    neg_risk: m.negRisk,
    tick_size: fmtPrice(m.tick),
    timestamp: String(ts),
  });
}

interface Change {
  asset_id: string;
  price: string;
  size: string;
  side: 'BUY' | 'SELL';
  hash: string;
  best_bid: string;
  best_ask: string;
}

/** Sets a YES level and returns the two entries (YES, mirrored NO) with tops after the change. */
function setLevel(rng: Rng, m: MarketState, bid: boolean, price: number, size: number): Change[] {
  const side = bid ? m.bids : m.asks;
  if (size === 0) side.delete(price);
  else side.set(price, size);
  const bb = best(m.bids, true);
  const ba = best(m.asks, false);
  return [
    { asset_id: m.yesToken, price: fmtPrice(price), size: fmtSize(size), side: bid ? 'BUY' : 'SELL', hash: rng.hex(40), best_bid: fmtPrice(bb), best_ask: fmtPrice(ba) },
    {
      asset_id: m.noToken,
      price: fmtPrice(1000 - price),
      size: fmtSize(size),
      side: bid ? 'SELL' : 'BUY',
      hash: rng.hex(40),
      best_bid: fmtPrice(1000 - ba),
      best_ask: fmtPrice(1000 - bb),
    },
  ];
}

function priceChangeFrame(m: MarketState, changes: Change[], ts: number): string {
  // Key order of the migration guide's example.
  return JSON.stringify({ market: m.conditionId, price_changes: changes, timestamp: String(ts), event_type: 'price_change' });
}

/** One order placed, changed or cancelled near the top of the YES book; never crosses, never empties a side. */
function randomLevelChange(rng: Rng, m: MarketState): Change[] {
  const bid = rng.chance(0.5);
  const side = bid ? m.bids : m.asks;
  const bb = best(m.bids, true);
  const ba = best(m.asks, false);
  const spread = ba - bb;
  let price: number;
  if (spread > m.tick && rng.chance(0.15)) {
    // Improve inside the spread.
    const steps = rng.int(1, spread / m.tick);
    price = bid ? bb + steps * m.tick : ba - steps * m.tick;
  } else {
    let d = 0;
    while (rng.chance(0.6) && d < 30) d++;
    price = bid ? bb - d * m.tick : ba + d * m.tick;
  }
  price = Math.round(price / m.tick) * m.tick;
  if (price < m.tick) price = m.tick;
  if (price > 1000 - m.tick) price = 1000 - m.tick;
  if (bid ? price >= ba : price <= bb) price = bid ? bb : ba;
  const exists = side.has(price);
  const size = exists && side.size > 3 && rng.chance(0.35) ? 0 : randomSize(rng);
  return setLevel(rng, m, bid, price, size);
}

function zipfWeights(n: number): number[] {
  const w: number[] = [];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = 1 / Math.pow(i + 1, 0.9);
    w.push(x);
    sum += x;
  }
  let acc = 0;
  return w.map((x) => (acc += x / sum));
}

/** Market-channel frames as an adapter would hand them over; see the module comment. */
export function* syntheticFrames(opts: SyntheticOptions = {}): Generator<RawFrame> {
  const { rng, markets } = buildMarkets(opts);
  const total = opts.events ?? 10_000;
  const meanGapMs = 1000 / (opts.ratePerSec ?? 3000);
  let clock = opts.startTs ?? 1_767_225_600_000;
  const cum = zipfWeights(markets.length);
  const conns = new Map<number, MarketState[]>();
  for (const m of markets) conns.set(m.conn, [...(conns.get(m.conn) ?? []), m]);
  const nextPong = new Map<number, number>();

  // The venue stamps events a little before we receive them; its clock never runs backwards.
  let lastVenue = 0;
  const venueTs = (recv: number) => (lastVenue = Math.max(lastVenue, recv - rng.int(5, 60)));

  for (const [conn, ms] of conns) {
    const recvTs = Math.floor(clock);
    const ts = venueTs(recvTs);
    const books = ms.flatMap((m) => [bookEvent(rng, m, true, ts), bookEvent(rng, m, false, ts)]);
    yield { source: 'market', conn, recvTs, data: `[${books.join(',')}]` };
    nextPong.set(conn, recvTs + rng.int(1000, 10_000));
    clock += rng.exp(meanGapMs);
  }

  for (let i = 0; i < total; i++) {
    clock += rng.exp(meanGapMs);
    const recvTs = Math.floor(clock);
    for (const [conn, at] of nextPong) {
      if (recvTs >= at) {
        nextPong.set(conn, at + 10_000);
        yield { source: 'market', conn, recvTs: at, data: 'PONG' };
      }
    }
    const r = rng.next();
    let k = 0;
    while (k < cum.length - 1 && cum[k]! < r) k++;
    const m = markets[k]!;
    const ts = venueTs(recvTs);
    const kind = rng.next();
    if (kind < 0.05) {
      // A taker hits the top of the YES book; reported on either token.
      const buy = rng.chance(0.5);
      const levelPrice = buy ? best(m.asks, false) : best(m.bids, true);
      const side = buy ? m.asks : m.bids;
      const avail = side.get(levelPrice) ?? 0;
      // Take the whole level only while the side keeps a few; otherwise a part of it (in cents).
      const whole = side.size > 3 && rng.chance(0.3);
      const part = Math.floor((avail * rng.next()) / 10_000) * 10_000;
      const filled = whole ? avail : Math.min(Math.max(10_000, part), avail - 10_000);
      if (filled <= 0) continue;
      m.lastTrade = levelPrice;
      const onYes = rng.chance(0.5);
      yield {
        source: 'market',
        conn: m.conn,
        recvTs,
        data: JSON.stringify({
          asset_id: onYes ? m.yesToken : m.noToken,
          event_type: 'last_trade_price',
          fee_rate_bps: '0',
          market: m.conditionId,
          price: fmtPrice(onYes ? levelPrice : 1000 - levelPrice),
          side: onYes === buy ? 'BUY' : 'SELL',
          size: fmtSize(filled),
          timestamp: String(ts),
          transaction_hash: `0x${rng.hex(64)}`,
        }),
      };
      const changes = setLevel(rng, m, !buy, levelPrice, avail - filled);
      yield { source: 'market', conn: m.conn, recvTs, data: priceChangeFrame(m, changes, ts) };
    } else if (kind < 0.05005 && m.tick === 10) {
      // Finer grid, as the venue does near the extremes; existing levels stay valid on it.
      m.tick = 1;
      for (const token of [m.yesToken, m.noToken]) {
        yield {
          source: 'market',
          conn: m.conn,
          recvTs,
          data: JSON.stringify({ asset_id: token, event_type: 'tick_size_change', market: m.conditionId, new_tick_size: '0.001', old_tick_size: '0.01', timestamp: String(ts) }),
        };
      }
    } else {
      const changes = randomLevelChange(rng, m);
      if (rng.chance(0.15)) changes.push(...randomLevelChange(rng, m));
      yield { source: 'market', conn: m.conn, recvTs, data: priceChangeFrame(m, changes, ts) };
    }
  }
}

export function generateFrames(opts: SyntheticOptions = {}): RawFrame[] {
  return [...syntheticFrames(opts)];
}

// ------------------------------------------------------------------ bus events

interface TrackedBook {
  market: string;
  outcome: string;
  tick: number;
  bids: Map<number, number>;
  asks: Map<number, number>;
  hash: string | undefined;
  venueTs: number;
}

/** Decimal string → integer micros, exact for venue prices and sizes (≤ 6 decimals). */
function micros(s: string): number {
  const [i = '0', f = ''] = s.split('.');
  return Number(i || '0') * MICRO + Number(f.padEnd(6, '0').slice(0, 6));
}

export interface BusEventOptions {
  /** Publisher id in the envelope (default `scanner`). */
  src?: string;
  /** Levels per side in `book` messages (default 20, as the scanner publishes). */
  depth?: number;
  /** Also publish `book` depth messages, as the scanner does on every change (default true). */
  books?: boolean;
}

/**
 * The bus messages the scanner publishes for these frames, in order, each right after its frame:
 * `price` and `book` for every token a frame touched, `trade` per `last_trade_price`.
 */
export function syntheticBusEvents(frames: Iterable<RawFrame>, opts: BusEventOptions = {}): RecordingRecord[] {
  const out: RecordingRecord[] = [];
  for (const r of withBusEvents(frames, opts)) if (r.kind === 'event') out.push(r);
  return out;
}

/** Frames and their bus events interleaved, as a scanner recording holds them. */
export function syntheticRecording(opts: SyntheticOptions & BusEventOptions = {}): RecordingRecord[] {
  return [...withBusEvents(syntheticFrames(opts), opts)];
}

function* withBusEvents(frames: Iterable<RawFrame>, opts: BusEventOptions): Generator<RecordingRecord> {
  const codec = new Codec();
  const src = opts.src ?? 'scanner';
  const depth = opts.depth ?? 20;
  const withBooks = opts.books ?? true;
  const books = new Map<string, TrackedBook>();
  let seq = 0;

  const num = (u: number) => u / MICRO;
  const event = (topic: string, msg: object, ts: number): RecordingRecord => ({
    kind: 'event',
    recvTs: ts,
    topic,
    payload: codec.encodePayload({ ...msg, v: 1, src, seq: seq++, ts } as never),
  });

  function* publish(token: string, b: TrackedBook, ts: number, recvTs: number): Generator<RecordingRecord> {
    let bb = -1;
    let ba = -1;
    for (const p of b.bids.keys()) if (p > bb) bb = p;
    for (const p of b.asks.keys()) if (ba < 0 || p < ba) ba = p;
    const price: PriceMessage = {
      type: 'price',
      token_id: token,
      market: b.market,
      outcome: b.outcome,
      bid: bb < 0 ? null : num(bb),
      ask: ba < 0 ? null : num(ba),
      mid: bb < 0 || ba < 0 ? null : num(Math.round((bb + ba) / 2)),
      bid_size: bb < 0 ? 0 : num(b.bids.get(bb)!),
      ask_size: ba < 0 ? 0 : num(b.asks.get(ba)!),
      venue_ts: b.venueTs,
      recv_ts: recvTs,
      v: 1,
      src,
      seq: 0,
      ts,
    };
    yield event(`price.${token}`, price, ts);
    if (!withBooks) return;
    const lv = (m: Map<number, number>, desc: boolean): [number, number][] =>
      [...m.entries()]
        .sort((x, y) => (desc ? y[0] - x[0] : x[0] - y[0]))
        .slice(0, depth)
        .map(([p, s]) => [num(p), num(s)]);
    const book: BookMessage = {
      type: 'book',
      token_id: token,
      market: b.market,
      bids: lv(b.bids, true),
      asks: lv(b.asks, false),
      tick_size: num(b.tick),
      ...(b.hash ? { hash: b.hash } : {}),
      venue_ts: b.venueTs,
      recv_ts: recvTs,
      v: 1,
      src,
      seq: 0,
      ts,
    };
    yield event(`book.${token}`, book, ts);
  }

  for (const f of frames) {
    yield { kind: 'raw', ...f };
    if (f.data.charCodeAt(0) !== 0x7b && f.data.charCodeAt(0) !== 0x5b) continue;
    const parsed = JSON.parse(f.data) as unknown;
    const objs = (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, unknown>[];
    // Published within the millisecond of receipt, so record times stay in order.
    const ts = f.recvTs;
    for (const o of objs) {
      const venueTs = Number(o.timestamp);
      if (o.event_type === 'book') {
        const token = String(o.asset_id);
        const prev = books.get(token);
        const b: TrackedBook = {
          market: String(o.market),
          outcome: prev?.outcome ?? (books.size % 2 === 0 ? 'Yes' : 'No'),
          tick: micros(String(o.tick_size ?? '0.01')),
          bids: new Map(),
          asks: new Map(),
          hash: o.hash as string | undefined,
          venueTs,
        };
        for (const l of o.bids as Level[]) b.bids.set(micros(l.price), micros(l.size));
        for (const l of o.asks as Level[]) b.asks.set(micros(l.price), micros(l.size));
        books.set(token, b);
        yield* publish(token, b, ts, f.recvTs);
      } else if (o.event_type === 'price_change') {
        const touched = new Map<string, TrackedBook>();
        for (const c of o.price_changes as Change[]) {
          const b = books.get(c.asset_id);
          if (!b) continue;
          const side = c.side === 'BUY' ? b.bids : b.asks;
          const s = micros(c.size);
          if (s === 0) side.delete(micros(c.price));
          else side.set(micros(c.price), s);
          b.hash = c.hash;
          b.venueTs = venueTs;
          touched.set(c.asset_id, b);
        }
        for (const [token, b] of touched) yield* publish(token, b, ts, f.recvTs);
      } else if (o.event_type === 'last_trade_price') {
        const token = String(o.asset_id);
        const b = books.get(token);
        if (!b) continue;
        const trade: TradeMessage = {
          type: 'trade',
          token_id: token,
          market: b.market,
          price: num(micros(String(o.price))),
          size: num(micros(String(o.size))),
          side: o.side === 'SELL' ? 'SELL' : 'BUY',
          venue_ts: venueTs,
          recv_ts: f.recvTs,
          v: 1,
          src,
          seq: 0,
          ts,
        };
        yield event(`trade.${token}`, trade, ts);
      } else if (o.event_type === 'tick_size_change') {
        const b = books.get(String(o.asset_id));
        if (b) b.tick = micros(String(o.new_tick_size));
      }
    }
  }
}

/** The `gamma` frame a scanner would have recorded for the synthetic markets (so a replay follows them). */
export function syntheticGammaFrame(opts: SyntheticOptions = {}): RawFrame {
  const markets = syntheticMarkets(opts).map((m, i) => ({
    conditionId: m.conditionId,
    gammaId: String(100_000 + i),
    question: `Synthetic market ${i + 1}?`,
    slug: `synthetic-market-${i + 1}`,
    active: true,
    closed: false,
    negRisk: false,
    tickSize: '0.01',
    minOrderSize: '5',
    endDate: null,
    tokens: [
      { tokenId: m.yesToken, outcome: 'Yes', outcomeIndex: 0 },
      { tokenId: m.noToken, outcome: 'No', outcomeIndex: 1 },
    ],
  }));
  return { source: 'gamma', conn: 0, recvTs: (opts.startTs ?? 1_767_225_600_000) - 1, data: JSON.stringify(markets) };
}
