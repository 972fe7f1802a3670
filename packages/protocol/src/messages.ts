import Type, { type Static, type TSchema } from 'typebox';

/**
 * Every bus message is a flat msgpack map: `type`, the payload fields, then the envelope
 * (`v`, `src`, `seq`, `ts`). Field names are snake_case so a Python peer (pyzmq + msgpack)
 * reads and writes them as plain dicts.
 */
export const PROTOCOL_VERSION = 1;

const Envelope = {
  v: Type.Integer({ minimum: 1, maximum: 255 }),
  src: Type.String({ minLength: 1, maxLength: 128 }),
  seq: Type.Integer({ minimum: 0 }),
  ts: Type.Number({ minimum: 0 }),
};

export const TokenId = Type.String({ minLength: 1, maxLength: 100, pattern: '^[0-9A-Za-z_-]+$' });
/** Condition id of a market (0x + 64 hex on Polymarket; the simulator uses the same form). */
export const MarketId = Type.String({ minLength: 1, maxLength: 100 });
/** A probability price on the venue's tick grid. */
export const Price = Type.Number({ minimum: 0, maximum: 1 });
export const Size = Type.Number({ minimum: 0, maximum: 1e12 });
/** Exact decimal as a string ("12.345678"); used for money on events. */
export const DecimalString = Type.String({ pattern: '^-?[0-9]+(\\.[0-9]+)?$', maxLength: 40 });
export const Side = Type.Union([Type.Literal('BUY'), Type.Literal('SELL')]);
export const OrderType = Type.Union([Type.Literal('GTC'), Type.Literal('GTD'), Type.Literal('FOK'), Type.Literal('FAK')]);
export const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });

function message<T extends Record<string, TSchema>>(type: string, fields: T) {
  return Type.Object({ type: Type.Literal(type), ...fields, ...Envelope });
}

/** Top of book for one token, published by the scanner on `price.<token_id>`. */
export const PriceMessage = message('price', {
  token_id: TokenId,
  market: MarketId,
  outcome: Type.Optional(Type.String({ maxLength: 64 })),
  bid: Type.Union([Price, Type.Null()]),
  ask: Type.Union([Price, Type.Null()]),
  mid: Type.Union([Price, Type.Null()]),
  bid_size: Size,
  ask_size: Size,
  /** Venue time of the update (ms). */
  venue_ts: Type.Number({ minimum: 0 }),
  /** When the scanner received the frame that caused it (ms); venue-to-publish lag is `ts - venue_ts`. */
  recv_ts: Type.Optional(Type.Number({ minimum: 0 })),
});

export const Level = Type.Tuple([Price, Size]);

/** L2 depth for one token on `book.<token_id>`; levels are best first (bids descending, asks ascending). */
export const BookMessage = message('book', {
  token_id: TokenId,
  market: MarketId,
  bids: Type.Array(Level, { maxItems: 1000 }),
  asks: Type.Array(Level, { maxItems: 1000 }),
  tick_size: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
  hash: Type.Optional(Type.String({ maxLength: 128 })),
  venue_ts: Type.Number({ minimum: 0 }),
  recv_ts: Type.Optional(Type.Number({ minimum: 0 })),
});

/**
 * Whether a token's local book can be trusted, on `book.status.<token_id>`: false after a crossed
 * update, a disconnect or a gap, until a fresh snapshot has been applied. Consumers must not act on
 * an untrusted book.
 */
export const BookStatusMessage = message('book_status', {
  token_id: TokenId,
  market: MarketId,
  trusted: Type.Boolean(),
  reason: Type.String({ maxLength: 64 }),
  venue_ts: Type.Number({ minimum: 0 }),
});

/** A trade printed by the venue on `trade.<token_id>`. */
export const TradeMessage = message('trade', {
  token_id: TokenId,
  market: MarketId,
  price: Price,
  size: Size,
  side: Side,
  venue_ts: Type.Number({ minimum: 0 }),
  recv_ts: Type.Optional(Type.Number({ minimum: 0 })),
});

/**
 * A crypto up/down round on `round.<asset>` (BTC, ETH, SOL, XRP): `started` at the window start,
 * `ending` a configurable lead before its end, `resolved` once the venue names the winner.
 */
export const RoundMessage = message('round', {
  event: Type.Union([Type.Literal('started'), Type.Literal('ending'), Type.Literal('resolved')]),
  asset: Type.String({ minLength: 1, maxLength: 16, pattern: '^[A-Z0-9]+$' }),
  slug: Type.String({ minLength: 1, maxLength: 200 }),
  market: MarketId,
  up_token_id: TokenId,
  down_token_id: TokenId,
  /** Window start and end (ms). */
  start_ts: Type.Number({ minimum: 0 }),
  end_ts: Type.Number({ minimum: 0 }),
  /** On `resolved`: the winning outcome and its token. */
  winner: Type.Optional(Type.Union([Type.Literal('Up'), Type.Literal('Down')])),
  winning_token_id: Type.Optional(TokenId),
});

/** A reference price (e.g. Chainlink BTC/USD) from the RTDS feed, on `ref.<symbol>` (`ref.btc-usd`). */
export const RefPriceMessage = message('ref_price', {
  symbol: Type.String({ minLength: 1, maxLength: 32 }),
  source: Type.String({ minLength: 1, maxLength: 32 }),
  value: Type.Number({ exclusiveMinimum: 0, maximum: 1e12 }),
  venue_ts: Type.Number({ minimum: 0 }),
  recv_ts: Type.Optional(Type.Number({ minimum: 0 })),
});

/** A market listed or resolved on the venue, on `market.<condition_id>`. */
export const MarketMessage = message('market', {
  event: Type.Union([Type.Literal('new'), Type.Literal('resolved')]),
  market: MarketId,
  slug: Type.Optional(Type.String({ maxLength: 300 })),
  question: Type.Optional(Type.String({ maxLength: 1000 })),
  token_ids: Type.Array(TokenId, { maxItems: 100 }),
  winning_token_id: Type.Optional(TokenId),
  winning_outcome: Type.Optional(Type.String({ maxLength: 200 })),
  venue_ts: Type.Number({ minimum: 0 }),
  recv_ts: Type.Optional(Type.Number({ minimum: 0 })),
});

/** What a strategy wants done, pushed to the executor on topic `signal`. */
export const SignalMessage = message('signal', {
  id: Type.String({ minLength: 8, maxLength: 128 }),
  strategy: Name,
  token_id: TokenId,
  market: MarketId,
  side: Side,
  price: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }),
  size: Type.Number({ exclusiveMinimum: 0, maximum: 1e9 }),
  order_type: OrderType,
  /** GTD only: unix seconds when the order ends; the venue keeps a 60 s security buffer, so more than 60 s ahead. */
  expiration: Type.Optional(Type.Integer({ minimum: 1, maximum: 4_102_444_800 })),
  /** GTC/GTD only: the venue refuses the order instead of letting it cross the book. */
  post_only: Type.Optional(Type.Boolean()),
  reason: Type.Optional(Type.String({ maxLength: 500 })),
});

export const OrderStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('live'),
  Type.Literal('partially_filled'),
  Type.Literal('filled'),
  Type.Literal('canceled'),
  Type.Literal('rejected'),
  Type.Literal('unknown'),
]);

const OrderEventFields = {
  kind: Type.Literal('order'),
  strategy: Name,
  signal_id: Type.String({ maxLength: 128 }),
  order_id: Type.String({ maxLength: 128 }),
  venue_order_id: Type.Union([Type.String({ maxLength: 128 }), Type.Null()]),
  token_id: TokenId,
  market: MarketId,
  side: Side,
  order_type: OrderType,
  price: DecimalString,
  size: DecimalString,
  filled: DecimalString,
  status: OrderStatus,
  reason: Type.Optional(Type.String({ maxLength: 500 })),
};

const FillEventFields = {
  kind: Type.Literal('fill'),
  strategy: Name,
  order_id: Type.String({ maxLength: 128 }),
  trade_id: Type.String({ maxLength: 128 }),
  token_id: TokenId,
  market: MarketId,
  side: Side,
  price: DecimalString,
  size: DecimalString,
  fee: DecimalString,
};

const PositionEventFields = {
  kind: Type.Literal('position'),
  strategy: Name,
  token_id: TokenId,
  market: MarketId,
  size: DecimalString,
  avg_price: DecimalString,
  cost: DecimalString,
  realized_pnl: DecimalString,
};

const SignalEventFields = {
  kind: Type.Literal('signal'),
  strategy: Name,
  signal_id: Type.String({ maxLength: 128 }),
  status: Type.Union([Type.Literal('accepted'), Type.Literal('denied'), Type.Literal('dead_lettered')]),
  code: Type.Optional(Type.String({ maxLength: 64 })),
  reason: Type.Optional(Type.String({ maxLength: 500 })),
};

/** Executor events on `event.<kind>.<strategy>` through the events forwarder. */
export const OrderEvent = message('event', OrderEventFields);
export const FillEvent = message('event', FillEventFields);
export const PositionEvent = message('event', PositionEventFields);
export const SignalEvent = message('event', SignalEventFields);
export const EventMessage = Type.Union([OrderEvent, FillEvent, PositionEvent, SignalEvent]);

export const ServiceState = Type.Union([
  Type.Literal('starting'),
  Type.Literal('running'),
  Type.Literal('degraded'),
  Type.Literal('stopping'),
  Type.Literal('stopped'),
  Type.Literal('faulted'),
]);

/** Lifecycle heartbeat of every process, on `status.<service>` every few seconds. */
export const StatusMessage = message('status', {
  service: Name,
  state: ServiceState,
  since: Type.Number({ minimum: 0 }),
  pid: Type.Integer({ minimum: 0 }),
  interval_ms: Type.Integer({ minimum: 1 }),
  message: Type.Optional(Type.String({ maxLength: 1000 })),
  metrics: Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.Number(), Type.String({ maxLength: 256 })]), {
    maxProperties: 200,
  }),
});

/** Request over REQ/REP: frame 1 is the method name, frame 2 this map. */
export const RpcRequest = message('rpc', {
  id: Type.String({ minLength: 1, maxLength: 64 }),
  method: Type.String({ minLength: 1, maxLength: 128 }),
  params: Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), { maxProperties: 256 }),
});

export const RpcError = Type.Object({
  code: Type.String({ maxLength: 64 }),
  message: Type.String({ maxLength: 2000 }),
  retryable: Type.Boolean(),
});

export const RpcReply = message('rpc.reply', {
  id: Type.String({ maxLength: 64 }),
  ok: Type.Boolean(),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(RpcError),
});

export type Envelope = { v: number; src: string; seq: number; ts: number };
export type PriceMessage = Static<typeof PriceMessage>;
export type BookMessage = Static<typeof BookMessage>;
export type TradeMessage = Static<typeof TradeMessage>;
export type BookStatusMessage = Static<typeof BookStatusMessage>;
export type RoundMessage = Static<typeof RoundMessage>;
export type RefPriceMessage = Static<typeof RefPriceMessage>;
export type MarketMessage = Static<typeof MarketMessage>;
export type SignalMessage = Static<typeof SignalMessage>;
export type OrderEvent = Static<typeof OrderEvent>;
export type FillEvent = Static<typeof FillEvent>;
export type PositionEvent = Static<typeof PositionEvent>;
export type SignalEvent = Static<typeof SignalEvent>;
export type EventMessage = Static<typeof EventMessage>;
export type StatusMessage = Static<typeof StatusMessage>;
export type ServiceState = Static<typeof ServiceState>;
export type OrderStatus = Static<typeof OrderStatus>;
export type Side = Static<typeof Side>;
export type OrderType = Static<typeof OrderType>;
export type RpcRequest = Static<typeof RpcRequest>;
export type RpcReply = Static<typeof RpcReply>;
export type RpcErrorShape = Static<typeof RpcError>;

export type BusMessage =
  | PriceMessage
  | BookMessage
  | TradeMessage
  | BookStatusMessage
  | RoundMessage
  | RefPriceMessage
  | MarketMessage
  | SignalMessage
  | EventMessage
  | StatusMessage
  | RpcRequest
  | RpcReply;

/** A message before the publisher stamps the envelope. */
export type Unstamped<M> = M extends unknown ? Omit<M, keyof Envelope> : never;

/** Schema for each `type`, used by the codec to validate inbound frames. */
export const SCHEMAS = {
  price: PriceMessage,
  book: BookMessage,
  trade: TradeMessage,
  book_status: BookStatusMessage,
  round: RoundMessage,
  ref_price: RefPriceMessage,
  market: MarketMessage,
  signal: SignalMessage,
  event: EventMessage,
  status: StatusMessage,
  rpc: RpcRequest,
  'rpc.reply': RpcReply,
} as const;

export type MessageType = keyof typeof SCHEMAS;
export type MessageOf<T extends MessageType> = Static<(typeof SCHEMAS)[T]>;
