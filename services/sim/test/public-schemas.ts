import { readFileSync } from 'node:fs';
import { GammaMarket, VDecimal, VSide } from '@polybot/polymarket';
import Type, { type TSchema } from 'typebox';
import Value from 'typebox/value';
import { expect } from 'vitest';

/**
 * Schemas of the public CLOB and Gamma answers, written from shared/polymarket/PROTOCOL.md §3/§6,
 * clob-client-v2's types and the recorded samples (copies under fixtures/public). Strict
 * (`additionalProperties: false`) where the documented shape is small and fixed.
 */

const strict = { additionalProperties: false };

export const Price = Type.Object({ price: VDecimal }, strict);
export const Prices = Type.Record(Type.String({ pattern: '^\\d+$' }), Type.Object({ BUY: Type.Optional(VDecimal), SELL: Type.Optional(VDecimal) }, strict));
export const Midpoint = Type.Object({ mid: VDecimal }, strict);
export const Spread = Type.Object({ spread: VDecimal }, strict);
/** Token id → decimal string (`/midpoints`, `/spreads`). */
export const TokenDecimals = Type.Record(Type.String({ pattern: '^\\d+$' }), VDecimal);
const TradeSide = Type.Union([VSide, Type.Literal('')]);
export const LastTradePrice = Type.Object({ price: VDecimal, side: TradeSide }, strict);
export const LastTradesPrices = Type.Array(Type.Object({ token_id: Type.String(), price: VDecimal, side: TradeSide }, strict));
export const TickSize = Type.Object({ minimum_tick_size: Type.Number({ exclusiveMinimum: 0, maximum: 0.1 }) }, strict);
export const NegRisk = Type.Object({ neg_risk: Type.Boolean() }, strict);
export const FeeRate = Type.Object({ base_fee: Type.Number({ minimum: 0 }) }, strict);
export const PricesHistory = Type.Object(
  { history: Type.Array(Type.Object({ t: Type.Integer({ minimum: 0 }), p: Type.Number({ minimum: 0, maximum: 1 }) }, strict)) },
  strict,
);
export const ErrorBody = Type.Object({ error: Type.String({ minLength: 1 }) }, strict);

export const ClobToken = Type.Object(
  { token_id: Type.String({ pattern: '^\\d+$' }), outcome: Type.String(), price: Type.Number({ minimum: 0, maximum: 1 }), winner: Type.Boolean() },
  strict,
);
const ClobRewards = Type.Object({
  rates: Type.Union([Type.Null(), Type.Array(Type.Object({ asset_address: Type.String(), rewards_daily_rate: Type.Number() }))]),
  min_size: Type.Number(),
  max_spread: Type.Number(),
});
const NullableString = Type.Union([Type.String(), Type.Null()]);
export const ClobMarket = Type.Object({
  enable_order_book: Type.Boolean(),
  active: Type.Boolean(),
  closed: Type.Boolean(),
  archived: Type.Boolean(),
  accepting_orders: Type.Boolean(),
  accepting_order_timestamp: NullableString,
  minimum_order_size: Type.Number(),
  minimum_tick_size: Type.Number(),
  condition_id: Type.String({ pattern: '^0x[0-9a-f]{64}$' }),
  question_id: Type.String({ pattern: '^0x[0-9a-f]{64}$' }),
  question: Type.String(),
  description: Type.String(),
  market_slug: Type.String(),
  end_date_iso: NullableString,
  game_start_time: NullableString,
  seconds_delay: Type.Number(),
  fpmm: Type.String(),
  maker_base_fee: Type.Number(),
  taker_base_fee: Type.Number(),
  notifications_enabled: Type.Boolean(),
  neg_risk: Type.Boolean(),
  neg_risk_market_id: Type.String(),
  neg_risk_request_id: Type.String(),
  icon: Type.String(),
  image: Type.String(),
  rewards: ClobRewards,
  is_50_50_outcome: Type.Boolean(),
  tokens: Type.Array(ClobToken, { minItems: 2, maxItems: 2 }),
  tags: Type.Array(Type.String()),
});
export const SimplifiedMarket = Type.Object(
  {
    condition_id: Type.String({ pattern: '^0x[0-9a-f]{64}$' }),
    rewards: ClobRewards,
    tokens: Type.Array(ClobToken, { minItems: 2, maxItems: 2 }),
    active: Type.Boolean(),
    closed: Type.Boolean(),
    archived: Type.Boolean(),
    accepting_orders: Type.Boolean(),
  },
  strict,
);
/** clob-client-v2 `MarketDetails`. */
export const ClobMarketInfo = Type.Object({
  c: Type.String({ pattern: '^0x[0-9a-f]{64}$' }),
  t: Type.Array(Type.Object({ t: Type.String({ pattern: '^\\d+$' }), o: Type.String() }, strict), { minItems: 2, maxItems: 2 }),
  mts: Type.Number(),
  nr: Type.Optional(Type.Boolean()),
  fd: Type.Optional(Type.Object({ r: Type.Optional(Type.Number()), e: Type.Optional(Type.Number()), to: Type.Optional(Type.Boolean()) }, strict)),
  mbf: Type.Optional(Type.Number()),
  tbf: Type.Optional(Type.Number()),
  r: Type.Union([Type.Null(), Type.Object({})]),
  ao: Type.Optional(Type.Boolean()),
  mos: Type.Optional(Type.Number()),
  sd: Type.Optional(Type.Number()),
  aot: Type.Optional(Type.String()),
});
export const MarketByToken = Type.Object({
  condition_id: Type.String({ pattern: '^0x[0-9a-f]{64}$' }),
  primary_token_id: Type.String({ pattern: '^\\d+$' }),
  secondary_token_id: Type.String({ pattern: '^\\d+$' }),
});
export const CursorPage = <T extends TSchema>(item: T) =>
  Type.Object(
    { limit: Type.Integer({ minimum: 1 }), count: Type.Integer({ minimum: 0 }), next_cursor: Type.String({ pattern: '^[A-Za-z0-9+/]+=*$' }), data: Type.Array(item) },
    strict,
  );

// ---------------------------------------------------------------- Gamma

export const GammaTag = Type.Object({ id: Type.String(), label: Type.String(), slug: Type.String() });
export const GammaSeries = Type.Object({
  id: Type.String(),
  ticker: Type.String(),
  slug: Type.String(),
  title: Type.String(),
  seriesType: Type.String(),
  recurrence: Type.String(),
  active: Type.Boolean(),
  closed: Type.Boolean(),
  archived: Type.Boolean(),
  volume: Type.Number(),
  liquidity: Type.Number(),
});
const EventCore = {
  id: Type.String({ pattern: '^\\d+$' }),
  ticker: Type.String(),
  slug: Type.String(),
  title: Type.String(),
  description: Type.String(),
  startDate: Type.String(),
  creationDate: Type.String(),
  endDate: Type.String(),
  active: Type.Boolean(),
  closed: Type.Boolean(),
  archived: Type.Boolean(),
  restricted: Type.Boolean(),
  liquidity: Type.Number(),
  volume: Type.Number(),
  openInterest: Type.Number(),
  enableOrderBook: Type.Boolean(),
  negRisk: Type.Boolean(),
  series: Type.Array(GammaSeries),
  seriesSlug: Type.String(),
  tags: Type.Array(GammaTag),
};
/** An event as `/events` lists it: with its markets. */
export const GammaEvent = Type.Object({ ...EventCore, markets: Type.Array(GammaMarket, { minItems: 1 }) });
/** An event inside a market's `events` or a series' `events`: without markets. */
export const GammaEventRef = Type.Object(EventCore);
export const ServedGammaMarket = Type.Intersect([GammaMarket, Type.Object({ events: Type.Array(GammaEventRef, { minItems: 1, maxItems: 1 }) })]);
export const GammaSeriesWithEvents = Type.Intersect([GammaSeries, Type.Object({ events: Type.Array(GammaEventRef) })]);

// ---------------------------------------------------------------- helpers

export function fixture(name: string): any {
  return JSON.parse(readFileSync(new URL(`./fixtures/public/${name}`, import.meta.url), 'utf8'));
}

/** Asserts `v` matches `schema`, showing the first errors on failure. */
export function expectSchema(schema: TSchema, v: unknown, what = ''): void {
  const errors = Value.Check(schema, v) ? [] : [...Value.Errors(schema, v)].slice(0, 3);
  expect(errors, `${what} ${JSON.stringify(v).slice(0, 300)}`).toEqual([]);
}

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/**
 * Field-by-field type comparison with recorded samples: every field we emit that a sample also
 * has must have the JSON type it has in at least one sample (samples disagree on nullables).
 * Returns how many fields were compared, so a test can insist the overlap is real.
 */
export function expectSampleTypes(ours: Record<string, unknown>, samples: Array<Record<string, unknown>>, what = ''): number {
  let compared = 0;
  for (const [k, v] of Object.entries(ours)) {
    const seen = samples.filter((s) => k in s).map((s) => kind(s[k]));
    if (seen.length === 0) continue;
    compared++;
    expect(seen, `${what} field ${k}: ours is ${kind(v)}`).toContain(kind(v));
  }
  return compared;
}
