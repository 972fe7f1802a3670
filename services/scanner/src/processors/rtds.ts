/**
 * RTDS processor: one reference-price frame (PROTOCOL.md §6, `{topic, type, timestamp, payload}`)
 * in, normalized reference-price events out. Pure: the same frame text and receive time always give
 * the same result, which is what lets a recording replay through it.
 *
 * API:
 * - `parseRtdsFrame(text, recvTs)` → `{ events, invalid, ignored, pong }`; never throws.
 *   `subscribe` dumps (the last minute, many points) and `update`s both yield events, oldest first;
 *   dump points carry `snapshot: true`.
 * - `processRtdsFrame(frame: RawFrame)` → the same, from an adapter's raw frame.
 * - `newerOnly(events, lastTs)` drops points not newer than the last one seen per symbol (a reconnect
 *   repeats the minute already published) and advances `lastTs`.
 * - `refPriceMessage(event)` → the unstamped `RefPriceMessage`; publish it on `refPriceTopic(event)`
 *   (= `topics.ref(symbol)`, e.g. `ref.btc-usd`).
 */
import { topics, type RefPriceMessage, type Unstamped } from '@polybot/protocol';
import type { RawFrame } from '../pipeline/types.js';

/** RTDS topics and the reference source each one carries. */
export const RTDS_TOPIC_CHAINLINK = 'crypto_prices_chainlink';
export const RTDS_TOPIC_BINANCE = 'crypto_prices';
const SOURCE_OF_TOPIC: Record<string, string> = {
  [RTDS_TOPIC_CHAINLINK]: 'chainlink',
  [RTDS_TOPIC_BINANCE]: 'binance',
};

export interface RefPriceEvent {
  /** Lower-case venue symbol: `btc/usd` (Chainlink), `btcusdt` (Binance). */
  symbol: string;
  /** `chainlink` or `binance`. */
  source: string;
  value: number;
  /** The point's own time (ms), not the frame's send time. */
  venueTs: number;
  /** Our receive time of the frame (ms). */
  recvTs: number;
  /** Part of a `subscribe` dump (history), not a live update. */
  snapshot: boolean;
}

export interface ParsedRtdsFrame {
  events: RefPriceEvent[];
  /** Frames or points that were not JSON, lacked fields, or carried impossible values. */
  invalid: number;
  /** Well-formed messages we do not consume (other topics, status messages). */
  ignored: number;
  /** The frame was the heartbeat answer. */
  pong: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Mirrors the RefPriceMessage schema bounds so a point we accept is one the bus accepts. */
const MAX_VALUE = 1e12;
const MAX_SYMBOL = 32;

/** Numbers arrive as JSON numbers, but some feeds send decimal strings; both are accepted. */
function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v.trim())) return Number(v);
  return undefined;
}

function point(symbol: string, source: string, raw: unknown, recvTs: number, snapshot: boolean): RefPriceEvent | undefined {
  if (!isObj(raw)) return undefined;
  const value = num(raw.value);
  const venueTs = num(raw.timestamp);
  if (value === undefined || !(value > 0) || value > MAX_VALUE) return undefined;
  if (venueTs === undefined || venueTs < 0) return undefined;
  return { symbol, source, value, venueTs, recvTs, snapshot };
}

function parseMessage(o: unknown, recvTs: number, out: ParsedRtdsFrame): void {
  if (!isObj(o)) {
    out.invalid++;
    return;
  }
  const topic = o.topic;
  if (typeof topic !== 'string') {
    // Status or error answers (`{"message":…,"statusCode":…}`) carry no topic.
    if (o.payload === undefined) out.ignored++;
    else out.invalid++;
    return;
  }
  const source = SOURCE_OF_TOPIC[topic];
  if (!source) {
    out.ignored++;
    return;
  }
  const payload = o.payload;
  if (!isObj(payload) || typeof payload.symbol !== 'string' || payload.symbol.length === 0 || payload.symbol.length > MAX_SYMBOL) {
    out.invalid++;
    return;
  }
  const symbol = payload.symbol.toLowerCase();
  if (Array.isArray(payload.data)) {
    const pts: RefPriceEvent[] = [];
    for (const raw of payload.data) {
      const p = point(symbol, source, raw, recvTs, true);
      if (p) pts.push(p);
      else out.invalid++;
    }
    // Consumers keep the last value per symbol, so the dump must end on the newest point.
    pts.sort((a, b) => a.venueTs - b.venueTs);
    out.events.push(...pts);
    return;
  }
  const p = point(symbol, source, payload, recvTs, o.type === 'subscribe');
  if (p) out.events.push(p);
  else out.invalid++;
}

/** Parses one RTDS text frame (an object, an array of objects, or `pong`); never throws. */
export function parseRtdsFrame(text: string, recvTs: number): ParsedRtdsFrame {
  const out: ParsedRtdsFrame = { events: [], invalid: 0, ignored: 0, pong: false };
  const t = text.trim();
  if (t === 'pong' || t === 'PONG') {
    out.pong = true;
    return out;
  }
  // The venue sends empty keep-alive frames now and then; they are not malformed data.
  if (t.length === 0) {
    out.ignored++;
    return out;
  }
  let data: unknown;
  try {
    data = JSON.parse(t);
  } catch {
    out.invalid++;
    return out;
  }
  if (Array.isArray(data)) for (const item of data) parseMessage(item, recvTs, out);
  else parseMessage(data, recvTs, out);
  return out;
}

/** `parseRtdsFrame` for a raw frame of an adapter or a recording. */
export function processRtdsFrame(frame: RawFrame): ParsedRtdsFrame {
  return parseRtdsFrame(frame.data, frame.recvTs);
}

/** Keeps only points newer than the last seen for their source and symbol; advances `lastTs`. */
export function newerOnly(events: RefPriceEvent[], lastTs: Map<string, number>): RefPriceEvent[] {
  const out: RefPriceEvent[] = [];
  for (const e of events) {
    const key = `${e.source}:${e.symbol}`;
    const last = lastTs.get(key);
    if (last !== undefined && e.venueTs <= last) continue;
    lastTs.set(key, e.venueTs);
    out.push(e);
  }
  return out;
}

export function refPriceMessage(e: RefPriceEvent): Unstamped<RefPriceMessage> {
  return { type: 'ref_price', symbol: e.symbol, source: e.source, value: e.value, venue_ts: e.venueTs, recv_ts: e.recvTs };
}

export function refPriceTopic(e: Pick<RefPriceEvent, 'symbol'>): string {
  return topics.ref(e.symbol);
}
