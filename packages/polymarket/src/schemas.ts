import Type, { type Static, type TSchema } from 'typebox';

/**
 * Polymarket's wire shapes, as documented in shared/polymarket/PROTOCOL.md. The simulator emits
 * exactly these and our venue clients parse them; nothing else defines a venue shape. Object
 * schemas allow extra properties: the venue adds fields over time and a client must not break.
 */

/** Decimal string as the venue sends it: "0.5", ".48", "100.0000". */
export const VDecimal = Type.String({ pattern: '^-?[0-9]*\\.?[0-9]+$', maxLength: 40 });
/** A JSON-encoded array inside a string, e.g. Gamma's `outcomes` = "[\"Yes\", \"No\"]". */
export const JsonArrayString = Type.String({ pattern: '^\\s*\\[', maxLength: 100_000 });
export const VSide = Type.Union([Type.Literal('BUY'), Type.Literal('SELL')]);
export const VOrderType = Type.Union([Type.Literal('GTC'), Type.Literal('GTD'), Type.Literal('FOK'), Type.Literal('FAK')]);

// ---------------------------------------------------------------- Gamma

export const GammaMarket = Type.Object({
  id: Type.String(),
  question: Type.String(),
  conditionId: Type.String(),
  slug: Type.String(),
  description: Type.Optional(Type.String()),
  outcomes: JsonArrayString,
  outcomePrices: Type.Optional(JsonArrayString),
  clobTokenIds: JsonArrayString,
  active: Type.Boolean(),
  closed: Type.Boolean(),
  archived: Type.Optional(Type.Boolean()),
  acceptingOrders: Type.Optional(Type.Boolean()),
  enableOrderBook: Type.Optional(Type.Boolean()),
  negRisk: Type.Optional(Type.Boolean()),
  orderPriceMinTickSize: Type.Optional(Type.Number()),
  orderMinSize: Type.Optional(Type.Number()),
  startDate: Type.Optional(Type.String()),
  endDate: Type.Optional(Type.String()),
  bestBid: Type.Optional(Type.Number()),
  bestAsk: Type.Optional(Type.Number()),
  lastTradePrice: Type.Optional(Type.Number()),
  volume: Type.Optional(Type.String()),
  liquidity: Type.Optional(Type.String()),
  volumeNum: Type.Optional(Type.Number()),
  liquidityNum: Type.Optional(Type.Number()),
});
export type GammaMarket = Static<typeof GammaMarket>;

// ---------------------------------------------------------------- CLOB REST

export const VLevel = Type.Object({ price: VDecimal, size: VDecimal });
export type VLevel = Static<typeof VLevel>;

/** `GET /book?token_id=`; bids ascending and asks descending by price: the best level is LAST. */
export const BookSummary = Type.Object({
  market: Type.String(),
  asset_id: Type.String(),
  timestamp: Type.String(),
  hash: Type.String(),
  bids: Type.Array(VLevel),
  asks: Type.Array(VLevel),
  min_order_size: Type.Optional(VDecimal),
  tick_size: Type.Optional(VDecimal),
  neg_risk: Type.Optional(Type.Boolean()),
  last_trade_price: Type.Optional(VDecimal),
});
export type BookSummary = Static<typeof BookSummary>;

/** CLOB V2 signed order as it travels in the `POST /order` body. */
export const SignedOrderV2 = Type.Object({
  salt: Type.Integer({ minimum: 0 }),
  maker: Type.String({ pattern: '^0x[0-9a-fA-F]{40}$' }),
  signer: Type.String({ pattern: '^0x[0-9a-fA-F]{40}$' }),
  tokenId: Type.String({ pattern: '^[0-9]+$', maxLength: 80 }),
  makerAmount: Type.String({ pattern: '^[0-9]+$', maxLength: 40 }),
  takerAmount: Type.String({ pattern: '^[0-9]+$', maxLength: 40 }),
  side: VSide,
  signatureType: Type.Integer({ minimum: 0, maximum: 3 }),
  timestamp: Type.String({ pattern: '^[0-9]+$' }),
  expiration: Type.String({ pattern: '^[0-9]+$' }),
  metadata: Type.String({ pattern: '^0x[0-9a-fA-F]{64}$' }),
  builder: Type.String({ pattern: '^0x[0-9a-fA-F]{64}$' }),
  signature: Type.String({ pattern: '^0x[0-9a-fA-F]*$', maxLength: 4000 }),
});
export type SignedOrderV2 = Static<typeof SignedOrderV2>;

export const PostOrderBody = Type.Object({
  order: SignedOrderV2,
  owner: Type.String({ maxLength: 128 }),
  orderType: VOrderType,
  deferExec: Type.Optional(Type.Boolean()),
  postOnly: Type.Optional(Type.Boolean()),
});
export type PostOrderBody = Static<typeof PostOrderBody>;

export const OrderPlacementStatus = Type.Union([
  Type.Literal('live'),
  Type.Literal('matched'),
  Type.Literal('delayed'),
  Type.Literal('unmatched'),
]);

/** Answer to `POST /order` (also each element of `POST /orders`). */
export const OrderResponse = Type.Object({
  success: Type.Boolean(),
  errorMsg: Type.Union([Type.String(), Type.Null()]),
  orderID: Type.Union([Type.String(), Type.Null()]),
  status: Type.Optional(OrderPlacementStatus),
  makingAmount: Type.Optional(Type.String()),
  takingAmount: Type.Optional(Type.String()),
  transactionsHashes: Type.Optional(Type.Array(Type.String())),
  tradeIDs: Type.Optional(Type.Array(Type.String())),
});
export type OrderResponse = Static<typeof OrderResponse>;

/** HTTP error body: `{"error": "<message>"}`. */
export const ErrorBody = Type.Object({ error: Type.String() });

// ---------------------------------------------------------------- market WebSocket

export const MarketSubscribe = Type.Object({
  assets_ids: Type.Array(Type.String({ maxLength: 100 }), { maxItems: 10_000 }),
  type: Type.Optional(Type.String()),
  operation: Type.Optional(Type.Union([Type.Literal('subscribe'), Type.Literal('unsubscribe')])),
  custom_feature_enabled: Type.Optional(Type.Boolean()),
  initial_dump: Type.Optional(Type.Boolean()),
});
export type MarketSubscribe = Static<typeof MarketSubscribe>;

export const WsBook = Type.Object({
  event_type: Type.Literal('book'),
  asset_id: Type.String(),
  market: Type.String(),
  timestamp: Type.String(),
  hash: Type.Optional(Type.String()),
  bids: Type.Array(VLevel),
  asks: Type.Array(VLevel),
  tick_size: Type.Optional(VDecimal),
  min_order_size: Type.Optional(VDecimal),
  neg_risk: Type.Optional(Type.Boolean()),
  last_trade_price: Type.Optional(VDecimal),
});
export type WsBook = Static<typeof WsBook>;

export const WsPriceChangeItem = Type.Object({
  asset_id: Type.String(),
  price: VDecimal,
  size: Type.Optional(VDecimal),
  side: VSide,
  hash: Type.Optional(Type.String()),
  best_bid: Type.Optional(VDecimal),
  best_ask: Type.Optional(VDecimal),
});

/** Current `price_change` format (since 2025-09-15): one message, many levels, several assets. */
export const WsPriceChange = Type.Object({
  event_type: Type.Literal('price_change'),
  market: Type.String(),
  timestamp: Type.String(),
  price_changes: Type.Array(WsPriceChangeItem),
});
export type WsPriceChange = Static<typeof WsPriceChange>;

export const WsLastTradePrice = Type.Object({
  event_type: Type.Literal('last_trade_price'),
  asset_id: Type.String(),
  market: Type.String(),
  price: VDecimal,
  side: Type.Optional(VSide),
  size: Type.Optional(VDecimal),
  fee_rate_bps: Type.Optional(Type.String()),
  timestamp: Type.String(),
  transaction_hash: Type.Optional(Type.String()),
});
export type WsLastTradePrice = Static<typeof WsLastTradePrice>;

export const WsTickSizeChange = Type.Object({
  event_type: Type.Literal('tick_size_change'),
  asset_id: Type.String(),
  market: Type.String(),
  old_tick_size: VDecimal,
  new_tick_size: VDecimal,
  timestamp: Type.String(),
});
export type WsTickSizeChange = Static<typeof WsTickSizeChange>;

/** Top of book (custom feature, `custom_feature_enabled: true`). */
export const WsBestBidAsk = Type.Object({
  event_type: Type.Literal('best_bid_ask'),
  asset_id: Type.String(),
  market: Type.String(),
  best_bid: VDecimal,
  best_ask: VDecimal,
  spread: Type.Optional(VDecimal),
  timestamp: Type.String(),
});
export type WsBestBidAsk = Static<typeof WsBestBidAsk>;

const EventMessageInfo = Type.Object({
  id: Type.Optional(Type.String()),
  ticker: Type.Optional(Type.String()),
  slug: Type.Optional(Type.String()),
  title: Type.Optional(Type.String()),
});

/** A market was listed (custom feature). Note the venue's spelling `assets_ids`. */
export const WsNewMarket = Type.Object({
  event_type: Type.Literal('new_market'),
  id: Type.Optional(Type.String()),
  market: Type.String(),
  question: Type.Optional(Type.String()),
  slug: Type.Optional(Type.String()),
  assets_ids: Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 }),
  outcomes: Type.Optional(Type.Array(Type.String())),
  event_message: Type.Optional(EventMessageInfo),
  order_price_min_tick_size: Type.Optional(VDecimal),
  timestamp: Type.String(),
});
export type WsNewMarket = Static<typeof WsNewMarket>;

/** A market was resolved (custom feature). */
export const WsMarketResolved = Type.Object({
  event_type: Type.Literal('market_resolved'),
  id: Type.Optional(Type.String()),
  market: Type.String(),
  question: Type.Optional(Type.String()),
  slug: Type.Optional(Type.String()),
  assets_ids: Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 }),
  outcomes: Type.Optional(Type.Array(Type.String())),
  winning_asset_id: Type.String(),
  winning_outcome: Type.Optional(Type.String()),
  event_message: Type.Optional(EventMessageInfo),
  timestamp: Type.String(),
});
export type WsMarketResolved = Static<typeof WsMarketResolved>;

export type WsMarketEvent =
  | WsBook
  | WsPriceChange
  | WsLastTradePrice
  | WsTickSizeChange
  | WsBestBidAsk
  | WsNewMarket
  | WsMarketResolved;

/** Gamma's JSON-in-a-string arrays; returns [] for anything that is not an array of strings. */
export function parseJsonArray(s: string | undefined): string[] {
  if (!s) return [];
  try {
    const v: unknown = JSON.parse(s);
    return Array.isArray(v) ? v.map((x) => String(x)) : [];
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- user WebSocket and order/trade records

export const WsUserOrder = Type.Object({
  event_type: Type.Literal('order'),
  id: Type.String(),
  owner: Type.String(),
  order_owner: Type.Optional(Type.String()),
  market: Type.String(),
  asset_id: Type.String(),
  side: VSide,
  price: VDecimal,
  original_size: VDecimal,
  size_matched: VDecimal,
  outcome: Type.Optional(Type.String()),
  type: Type.Union([Type.Literal('PLACEMENT'), Type.Literal('UPDATE'), Type.Literal('CANCELLATION')]),
  /** LIVE, MATCHED, CANCELED, INVALID, DELAYED, UNMATCHED, CANCELED_MARKET_RESOLVED, or CANCELED_<reason>: parse by prefix. */
  status: Type.String(),
  associate_trades: Type.Union([Type.Array(Type.String()), Type.Null()]),
  maker_address: Type.Optional(Type.String()),
  order_type: Type.Optional(VOrderType),
  expiration: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  created_at: Type.Optional(Type.String()),
  timestamp: Type.String(),
});
export type WsUserOrder = Static<typeof WsUserOrder>;

export const TradeStatus = Type.Union([
  Type.Literal('MATCHED'),
  Type.Literal('MINED'),
  Type.Literal('CONFIRMED'),
  Type.Literal('RETRYING'),
  Type.Literal('FAILED'),
]);

export const MakerOrderFill = Type.Object({
  order_id: Type.String(),
  owner: Type.String(),
  maker_address: Type.String(),
  matched_amount: VDecimal,
  price: VDecimal,
  fee_rate_bps: Type.String(),
  asset_id: Type.String(),
  outcome: Type.String(),
  side: Type.Optional(VSide),
});

export const WsUserTrade = Type.Object({
  event_type: Type.Literal('trade'),
  type: Type.Literal('TRADE'),
  id: Type.String(),
  taker_order_id: Type.String(),
  market: Type.String(),
  asset_id: Type.String(),
  side: VSide,
  size: VDecimal,
  price: VDecimal,
  fee_rate_bps: Type.String(),
  status: TradeStatus,
  match_time: Type.String(),
  last_update: Type.String(),
  timestamp: Type.String(),
  outcome: Type.String(),
  owner: Type.String(),
  trade_owner: Type.Optional(Type.String()),
  maker_address: Type.String(),
  transaction_hash: Type.Optional(Type.String()),
  bucket_index: Type.Optional(Type.Number()),
  trader_side: Type.Union([Type.Literal('TAKER'), Type.Literal('MAKER')]),
  maker_orders: Type.Array(MakerOrderFill),
});
export type WsUserTrade = Static<typeof WsUserTrade>;

/** `GET /data/order/{id}` and each element of `GET /data/orders` `data`. */
export const OpenOrder = Type.Object({
  id: Type.String(),
  status: Type.String(),
  owner: Type.String(),
  maker_address: Type.String(),
  market: Type.String(),
  asset_id: Type.String(),
  side: VSide,
  original_size: VDecimal,
  size_matched: VDecimal,
  price: VDecimal,
  associate_trades: Type.Array(Type.String()),
  outcome: Type.String(),
  created_at: Type.Number(),
  expiration: Type.String(),
  order_type: VOrderType,
});
export type OpenOrder = Static<typeof OpenOrder>;

/** `{ canceled: [ids], not_canceled: { id: reason } }` from every cancel route. */
export const CancelResponse = Type.Object({
  canceled: Type.Array(Type.String()),
  not_canceled: Type.Record(Type.String(), Type.String()),
});
export type CancelResponse = Static<typeof CancelResponse>;

/** Paged listings (`/data/orders`, `/data/trades`, CLOB `/markets`): cursors start at "MA==" and end at "LTE=". */
export const Paged = <T extends TSchema>(item: T) =>
  Type.Object({ limit: Type.Number(), count: Type.Number(), next_cursor: Type.String(), data: Type.Array(item) });

export const ApiCreds = Type.Object({ apiKey: Type.String(), secret: Type.String(), passphrase: Type.String() });
export type ApiCreds = Static<typeof ApiCreds>;
