import type { BookSummary } from '@polybot/polymarket';
import { toMicros } from '@polybot/protocol';

/** Best levels of a book in micro units; `undefined` when that side is empty. */
export interface TopOfBook {
  bid: bigint | undefined;
  ask: bigint | undefined;
  last: bigint;
}

/** Reads the best levels of a BookSummary (the venue lists the best level LAST on both sides). */
export function topOfBook(b: Pick<BookSummary, 'bids' | 'asks' | 'last_trade_price'>): TopOfBook {
  const bid = b.bids[b.bids.length - 1];
  const ask = b.asks[b.asks.length - 1];
  return {
    bid: bid ? toMicros(bid.price) : undefined,
    ask: ask ? toMicros(ask.price) : undefined,
    last: toMicros(b.last_trade_price ?? '0'),
  };
}

/**
 * Mid of the best bid and ask; with a side empty, the last trade price. Same rule as the
 * exchange's Gamma `outcomePrices`, so every view of a token reports the same mid.
 */
export function midMicros(t: TopOfBook): bigint {
  return t.bid !== undefined && t.ask !== undefined ? (t.bid + t.ask) / 2n : t.last;
}

/** Best bid, or 0 with no bids (the WS `best_bid` convention). */
export const bidOrZero = (t: TopOfBook): bigint => t.bid ?? 0n;
/** Best ask, or 1 with no asks (the WS `best_ask` convention). */
export const askOrOne = (t: TopOfBook): bigint => t.ask ?? 1_000_000n;
