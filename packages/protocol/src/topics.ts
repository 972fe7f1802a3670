/**
 * Topic builders. Topics are hierarchical and dot-separated so subscribers can use ZeroMQ prefix
 * matching: `price.` gets every top of book, `event.order.` every order event.
 */
export const topics = {
  price: (tokenId: string) => `price.${tokenId}`,
  book: (tokenId: string) => `book.${tokenId}`,
  bookStatus: (tokenId: string) => `book.status.${tokenId}`,
  trade: (tokenId: string) => `trade.${tokenId}`,
  round: (asset: string) => `round.${asset}`,
  /** `btc/usd` → `ref.btc-usd` (a slash would read like a path). */
  ref: (symbol: string) => `ref.${symbol.replace(/\//g, '-')}`,
  market: (conditionId: string) => `market.${conditionId}`,
  signal: () => 'signal',
  event: (kind: string, owner: string) => `event.${kind}.${owner}`,
  status: (service: string) => `status.${service}`,
} as const;

/** The first topic segment each message type must travel under. */
export const TOPIC_ROOT: Record<string, string> = {
  price: 'price',
  book: 'book',
  trade: 'trade',
  book_status: 'book',
  round: 'round',
  ref_price: 'ref',
  market: 'market',
  signal: 'signal',
  event: 'event',
  status: 'status',
};

export const MAX_TOPIC_BYTES = 256;
