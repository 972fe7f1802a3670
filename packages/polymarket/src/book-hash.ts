import { createHash } from 'node:crypto';

/**
 * Order-book `hash` (PROTOCOL.md §1.3, vectors/orderbook_hash.json): SHA-1 hex of the compact JSON of
 * the book with `hash: ""`. The serialization decides the result, and two rules are documented:
 * - `'server'` (default): py-clob-client-v2's server-compatible key order `market, asset_id, timestamp,
 *   hash, bids, asks, min_order_size, tick_size, neg_risk, last_trade_price`; absent (undefined) keys
 *   are left out, other keys dropped, and every level serialised as `{price, size}`.
 * - `'insertion'`: the old TS client (`@polymarket/clob-client` `generateOrderBookSummaryHash`): the
 *   object's own key order, with `hash` set to "" in place (appended last when the object has none).
 * Neither rule is verified against live venue hashes, so a mismatch is a hint, not proof of a bad book.
 */

export type BookHashKeyOrder = 'server' | 'insertion';

export const SERVER_BOOK_HASH_KEYS = ['market', 'asset_id', 'timestamp', 'hash', 'bids', 'asks', 'min_order_size', 'tick_size', 'neg_risk', 'last_trade_price'] as const;

export interface HashableBook {
  readonly market: string;
  readonly asset_id: string;
  readonly timestamp: string;
  readonly hash?: string;
  readonly bids: ReadonlyArray<{ readonly price: string; readonly size: string }>;
  readonly asks: ReadonlyArray<{ readonly price: string; readonly size: string }>;
  readonly min_order_size?: string;
  readonly tick_size?: string;
  readonly neg_risk?: boolean;
  readonly last_trade_price?: string;
}

/** The exact text that is hashed. */
export function bookHashInput(book: HashableBook, keyOrder: BookHashKeyOrder = 'server'): string {
  if (keyOrder === 'insertion') return JSON.stringify({ ...book, hash: '' });
  const levels = (ls: HashableBook['bids']) => ls.map((l) => ({ price: l.price, size: l.size }));
  const out: Record<string, unknown> = {};
  for (const k of SERVER_BOOK_HASH_KEYS) {
    if (k === 'hash') out.hash = '';
    else if (k === 'bids' || k === 'asks') out[k] = levels(book[k]);
    else if (book[k] !== undefined) out[k] = book[k];
  }
  return JSON.stringify(out);
}

/** SHA-1 (40 lowercase hex chars, no 0x) of `bookHashInput`. */
export function orderBookHash(book: HashableBook, keyOrder: BookHashKeyOrder = 'server'): string {
  return createHash('sha1').update(bookHashInput(book, keyOrder), 'utf8').digest('hex');
}

/** Whether `book.hash` (with or without `0x`, any case) equals the hash computed by `keyOrder`. */
export function bookHashMatches(book: HashableBook, keyOrder: BookHashKeyOrder = 'server'): boolean {
  const h = (book.hash ?? '').toLowerCase().replace(/^0x/, '');
  return h === orderBookHash(book, keyOrder);
}
