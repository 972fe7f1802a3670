import Type, { type Static, type TSchema } from 'typebox';
import { TokenId } from './messages.js';

const RecordStatus = Type.Object({
  recording: Type.Boolean(),
  /** Recording name: a directory under `<data>/recordings/`. */
  name: Type.Optional(Type.String()),
  dir: Type.Optional(Type.String()),
  started_at: Type.Optional(Type.Number()),
  records: Type.Integer({ minimum: 0 }),
  raw_frames: Type.Integer({ minimum: 0 }),
  events: Type.Integer({ minimum: 0 }),
  bytes: Type.Integer({ minimum: 0 }),
  segments: Type.Integer({ minimum: 0 }),
});

const ReplayStatus = Type.Object({
  state: Type.Union([Type.Literal('idle'), Type.Literal('running'), Type.Literal('done'), Type.Literal('stopped'), Type.Literal('failed')]),
  recording: Type.Optional(Type.String()),
  /** Multiple of real time; 0 means as fast as possible. */
  speed: Type.Optional(Type.Number({ minimum: 0 })),
  records_done: Type.Integer({ minimum: 0 }),
  records_total: Type.Integer({ minimum: 0 }),
  events_per_s: Type.Number({ minimum: 0 }),
  /** Recorded time reached (ms). */
  position_ts: Type.Optional(Type.Number()),
  error: Type.Optional(Type.String()),
});

const Dec = Type.String({ pattern: '^[0-9]+(\\.[0-9]{1,6})?$', maxLength: 40 });
const RiskLimitsWire = Type.Object({
  max_open_orders: Type.Integer({ minimum: 0, maximum: 100_000 }),
  max_market_exposure: Dec,
  max_total_exposure: Dec,
  max_daily_loss: Dec,
  price_band: Dec,
});
const RiskStatus = Type.Object({
  /** What the operator set; `effective` adds the daily loss limit's reduce-only. */
  state: Type.Union([Type.Literal('ACTIVE'), Type.Literal('REDUCING'), Type.Literal('HALTED')]),
  effective: Type.Union([Type.Literal('ACTIVE'), Type.Literal('REDUCING'), Type.Literal('HALTED')]),
  reason: Type.Optional(Type.String({ maxLength: 500 })),
  limits: RiskLimitsWire,
  open_orders: Type.Integer({ minimum: 0 }),
  total_exposure: Type.String(),
  realized_today: Type.String(),
});
const CancelResult = Type.Object({
  canceled: Type.Array(Type.String()),
  not_canceled: Type.Record(Type.String(), Type.String()),
});

const OrderView = Type.Object({
  order_id: Type.String(),
  signal_id: Type.Union([Type.String(), Type.Null()]),
  strategy: Type.String(),
  token_id: Type.String(),
  market: Type.String(),
  side: Type.String(),
  order_type: Type.String(),
  price: Type.String(),
  size: Type.String(),
  filled: Type.String(),
  status: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.Number(),
  updated_at: Type.Number(),
});

const RecordingName = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_.-]+$' });

/**
 * Every REQ/REP method with its params and result schema. A replier validates params against
 * these; requesters get typed results.
 */
export const RpcMethods = {
  /** Recent top-of-book samples of one token from analytics' price_history, newest first. */
  'prices.recent': {
    params: Type.Object({
      token_id: TokenId,
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000 })),
      since_ts: Type.Optional(Type.Number({ minimum: 0 })),
    }),
    result: Type.Object({
      token_id: Type.String(),
      rows: Type.Array(
        Type.Object({
          ts: Type.Number(),
          bid: Type.Union([Type.Number(), Type.Null()]),
          ask: Type.Union([Type.Number(), Type.Null()]),
          mid: Type.Union([Type.Number(), Type.Null()]),
        }),
      ),
    }),
  },
  /**
   * The scanner's local books, for late joiners (the zguide's Clone pattern): subscribe to `book.`
   * first, then ask; apply only updates whose `seq` from the scanner is above the snapshot's `seq`.
   */
  'books.snapshot': {
    params: Type.Object({
      token_ids: Type.Optional(Type.Array(TokenId, { maxItems: 1000 })),
      depth: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    }),
    result: Type.Object({
      /** The scanner's publisher sequence number when the snapshot was taken. */
      seq: Type.Integer({ minimum: 0 }),
      books: Type.Array(
        Type.Object({
          token_id: Type.String(),
          market: Type.String(),
          trusted: Type.Boolean(),
          bids: Type.Array(Type.Tuple([Type.Number(), Type.Number()])),
          asks: Type.Array(Type.Tuple([Type.Number(), Type.Number()])),
          tick_size: Type.Number(),
          hash: Type.Optional(Type.String()),
          venue_ts: Type.Number(),
        }),
      ),
    }),
  },
  /** The executor's current positions, optionally of one strategy (strategies ask at start). */
  'positions.list': {
    params: Type.Object({ strategy: Type.Optional(Type.String({ maxLength: 64 })) }),
    result: Type.Object({
      positions: Type.Array(
        Type.Object({
          strategy: Type.String(),
          token_id: Type.String(),
          market: Type.String(),
          size: Type.String(),
          avg_price: Type.String(),
          cost: Type.String(),
          realized_pnl: Type.String(),
          /** Shares of confirmed trades; the rest of `size` is still settling. */
          settled: Type.Optional(Type.String()),
          pending_buy: Type.Optional(Type.String()),
          pending_sell: Type.Optional(Type.String()),
          fees: Type.Optional(Type.String()),
          /** Mid of the scanner's last top of book, and size × mark − cost at it. */
          mark: Type.Optional(Type.String()),
          unrealized_pnl: Type.Optional(Type.String()),
          /** Payout per share once the market resolved. */
          resolved: Type.Optional(Type.String()),
        }),
      ),
    }),
  },
  /** The executor's orders, newest first: open ones only by default. */
  'orders.list': {
    params: Type.Object({
      strategy: Type.Optional(Type.String({ maxLength: 64 })),
      all: Type.Optional(Type.Boolean()),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    }),
    result: Type.Object({ orders: Type.Array(OrderView) }),
  },
  /** The executor's venue side: session state and why, wallet collateral, balance differences, counters. */
  'venue.status': {
    params: Type.Object({}),
    result: Type.Object({
      mode: Type.String(),
      state: Type.String(),
      reason: Type.Optional(Type.String()),
      taking_signals: Type.Boolean(),
      can_trade: Type.Boolean(),
      can_trade_reason: Type.Optional(Type.String()),
      address: Type.Optional(Type.String()),
      collateral: Type.Optional(Type.String()),
      balance_mismatches: Type.Array(Type.String()),
      counters: Type.Record(Type.String(), Type.Number()),
    }),
  },
  /** Starts recording the scanner's raw venue frames and published events under `<data>/recordings/<name>`. */
  'record.start': {
    params: Type.Object({ name: Type.Optional(RecordingName) }),
    result: RecordStatus,
  },
  'record.stop': { params: Type.Object({}), result: RecordStatus },
  'record.status': { params: Type.Object({}), result: RecordStatus },
  /**
   * Replays a recording through the scanner's processors and publishers instead of the live feed
   * (which resumes when the replay ends or is stopped). `speed` 0 = as fast as possible.
   */
  'replay.start': {
    params: Type.Object({ recording: Type.String({ minLength: 1, maxLength: 1000 }), speed: Type.Number({ minimum: 0, maximum: 1e6 }) }),
    result: ReplayStatus,
  },
  'replay.stop': { params: Type.Object({}), result: ReplayStatus },
  'replay.status': { params: Type.Object({}), result: ReplayStatus },
  /** The executor's trading state, limits and exposure. */
  'risk.status': { params: Type.Object({}), result: RiskStatus },
  /** Changes limits at run time (persisted); a bad value is refused and nothing changes. */
  'risk.set_limits': { params: Type.Partial(RiskLimitsWire), result: RiskStatus },
  /** Kill switch: no new orders; `cancel_open` also cancels every open order at the venue. Cancels always pass. */
  'trading.halt': {
    params: Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })), cancel_open: Type.Optional(Type.Boolean()) }),
    result: RiskStatus,
  },
  /** Reduce-only: only sells of held shares are taken. */
  'trading.reduce': { params: Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }), result: RiskStatus },
  'trading.resume': { params: Type.Object({}), result: RiskStatus },
  /** Cancels one order (our order id = its hash) or all open orders (optionally of one strategy). */
  'orders.cancel': { params: Type.Object({ order_id: Type.String({ minLength: 1, maxLength: 100 }) }), result: CancelResult },
  'orders.cancel_all': { params: Type.Object({ strategy: Type.Optional(Type.String({ maxLength: 64 })) }), result: CancelResult },
  /** Liveness probe every replier answers. */
  ping: {
    params: Type.Object({}),
    result: Type.Object({ service: Type.String(), ts: Type.Number() }),
  },
} satisfies Record<string, { params: TSchema; result: TSchema }>;

export type RpcMethod = keyof typeof RpcMethods;
export type RpcParams<M extends RpcMethod> = Static<(typeof RpcMethods)[M]['params']>;
export type RpcResult<M extends RpcMethod> = Static<(typeof RpcMethods)[M]['result']>;
