import type { MarketInfo } from '@polybot/polymarket';
import Type from 'typebox';
import Compile from 'typebox/compile';

const MarketInfoSchema = Type.Object({
  conditionId: Type.String({ minLength: 1, maxLength: 100 }),
  gammaId: Type.String({ maxLength: 100 }),
  question: Type.String({ maxLength: 2000 }),
  slug: Type.String({ maxLength: 300 }),
  active: Type.Boolean(),
  closed: Type.Boolean(),
  negRisk: Type.Boolean(),
  tickSize: Type.String({ pattern: '^0?\\.[0-9]+$|^1$' }),
  minOrderSize: Type.String({ maxLength: 40 }),
  endDate: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
  tokens: Type.Array(
    Type.Object({
      tokenId: Type.String({ pattern: '^[0-9A-Za-z_-]{1,100}$' }),
      outcome: Type.String({ maxLength: 200 }),
      outcomeIndex: Type.Integer({ minimum: 0, maximum: 100 }),
    }),
    { maxItems: 100 },
  ),
});
const checkMarkets = Compile(Type.Array(MarketInfoSchema, { maxItems: 100_000 }));

/** A `gamma` frame (the discovered market list) → markets, or a reason it is unusable. */
export function processGammaFrame(text: string): MarketInfo[] | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return 'json';
  }
  return checkMarkets.Check(data) ? (data as MarketInfo[]) : 'schema';
}
