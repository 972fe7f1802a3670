import { parseJsonArray, type GammaMarket } from '@polybot/polymarket';
import { microsToNumber, toMicros } from '@polybot/protocol';
import type { Exchange } from './exchange.js';
import type { SimMarket } from './markets.js';
import { BadRequest, int, one, type Query } from './routes/util.js';

/**
 * The CLOB's views of the sim's markets (snake_case market objects, simplified and compact forms,
 * cursor paging), derived from the static market list plus the Gamma objects for live prices.
 */

export interface ClobToken {
  token_id: string;
  outcome: string;
  price: number;
  winner: boolean;
}

export interface ClobRewards {
  rates: null;
  min_size: number;
  max_spread: number;
}

/** `GET /markets/{conditionId}`, field order as in samples/rest/clob_market_recorded_2024.json. */
export interface ClobMarket {
  enable_order_book: boolean;
  active: boolean;
  closed: boolean;
  archived: boolean;
  accepting_orders: boolean;
  accepting_order_timestamp: string | null;
  minimum_order_size: number;
  minimum_tick_size: number;
  condition_id: string;
  question_id: string;
  question: string;
  description: string;
  market_slug: string;
  end_date_iso: string;
  game_start_time: string | null;
  seconds_delay: number;
  fpmm: string;
  maker_base_fee: number;
  taker_base_fee: number;
  notifications_enabled: boolean;
  neg_risk: boolean;
  neg_risk_market_id: string;
  neg_risk_request_id: string;
  icon: string;
  image: string;
  rewards: ClobRewards;
  is_50_50_outcome: boolean;
  tokens: ClobToken[];
  tags: string[];
}

/** `/simplified-markets` item. */
export interface SimplifiedMarket {
  condition_id: string;
  rewards: ClobRewards;
  tokens: ClobToken[];
  active: boolean;
  closed: boolean;
  archived: boolean;
  accepting_orders: boolean;
}

/** `GET /clob-markets/{conditionId}` (clob-client-v2 `MarketDetails`). */
export interface ClobMarketInfo {
  c: string;
  t: Array<{ t: string; o: string }>;
  mts: number;
  nr: boolean;
  fd: { r: number; e: number; to: boolean };
  mbf: number;
  tbf: number;
  r: null;
  ao: boolean;
  mos: number;
  sd: number;
  aot: string;
}

export interface Page<T> {
  limit: number;
  count: number;
  next_cursor: string;
  data: T[];
}

export const START_CURSOR = 'MA==';
export const END_CURSOR = 'LTE=';
/** Page size of the CLOB listings (the recorded page holds 100). */
export const CLOB_PAGE_SIZE = 100;

const encodeCursor = (offset: number) => Buffer.from(String(offset), 'utf8').toString('base64');

/** Offset of a cursor: "" or absent = start, "LTE=" = past the end; anything else must be ours. */
export function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined || cursor === '') return 0;
  if (cursor === END_CURSOR) return -1;
  const s = Buffer.from(cursor, 'base64').toString('utf8');
  if (!/^\d{1,9}$/.test(s) || encodeCursor(Number(s)) !== cursor) throw new BadRequest('invalid next_cursor');
  return Number(s);
}

/**
 * One page from the `next_cursor` query parameter; `next_cursor` is "LTE=" once the last item is
 * served. `limit` (1–1000) is a sim extension, as on the sim's `/data/*` listings.
 */
export function page<T>(items: T[], q: Query): Page<T> {
  const offset = decodeCursor(one(q, 'next_cursor'));
  const limit = int(q, 'limit', CLOB_PAGE_SIZE, 1000);
  if (limit < 1) throw new BadRequest('limit must be a positive integer');
  if (offset < 0 || offset >= items.length) return { limit, count: 0, next_cursor: END_CURSOR, data: [] };
  const data = items.slice(offset, offset + limit);
  const next = offset + data.length;
  return { limit, count: data.length, next_cursor: next >= items.length ? END_CURSOR : encodeCursor(next), data };
}

const NO_REWARDS = (): ClobRewards => ({ rates: null, min_size: 0, max_spread: 0 });

/** Lookups over the exchange's (growing: rounds are listed over time) market list, and the CLOB shapes built from it. */
export class ClobCatalog {
  constructor(private readonly exchange: Exchange) {}

  marketOfCondition(conditionId: string): SimMarket | undefined {
    return this.exchange.marketOfCondition(conditionId);
  }

  marketOfToken(tokenId: string): SimMarket | undefined {
    return this.exchange.marketOfToken(tokenId);
  }

  /** All markets in generation order with their Gamma objects (for live prices). */
  private withGamma(): Array<[SimMarket, GammaMarket | undefined]> {
    const gamma = new Map(this.exchange.gammaMarkets().map((g) => [g.conditionId, g]));
    return this.exchange.markets.map((m) => [m, gamma.get(m.conditionId)]);
  }

  private tokens(m: SimMarket, g: GammaMarket | undefined): ClobToken[] {
    // Token prices are numbers on the CLOB; they are the same mids Gamma reports in outcomePrices.
    const prices = g ? parseJsonArray(g.outcomePrices) : [];
    return m.tokenIds.map((token_id, i) => ({
      token_id,
      outcome: m.outcomes[i] as string,
      price: prices[i] !== undefined ? microsToNumber(toMicros(prices[i])) : 0,
      // Resolved markets report outcomePrices 1/0: the 1 is the winner.
      winner: g?.closed === true && prices[i] === '1',
    }));
  }

  private full(m: SimMarket, g: GammaMarket | undefined): ClobMarket {
    const live = g ? g.active && !g.closed : true;
    return {
      enable_order_book: true,
      active: g?.active ?? true,
      closed: g?.closed ?? false,
      archived: g?.archived ?? false,
      accepting_orders: g?.acceptingOrders ?? live,
      accepting_order_timestamp: m.event ? this.openedAt(g) : m.startDate,
      minimum_order_size: microsToNumber(m.minOrderSize),
      minimum_tick_size: microsToNumber(m.tickSize),
      condition_id: m.conditionId,
      question_id: m.questionId,
      question: m.question,
      description: m.description,
      market_slug: m.slug,
      end_date_iso: m.endDate,
      game_start_time: m.eventStartTime ?? null,
      seconds_delay: 0,
      fpmm: '',
      maker_base_fee: 0,
      taker_base_fee: 0,
      notifications_enabled: false,
      neg_risk: m.negRisk,
      neg_risk_market_id: m.negRiskMarketID ?? '',
      neg_risk_request_id: m.negRiskRequestID ?? '',
      icon: '',
      image: '',
      rewards: NO_REWARDS(),
      is_50_50_outcome: false,
      tokens: this.tokens(m, g),
      tags: m.tags ?? [],
    };
  }

  /** When a round started accepting orders (Gamma `acceptingOrdersTimestamp`), null before. */
  private openedAt(g: GammaMarket | undefined): string | null {
    const v = (g as { acceptingOrdersTimestamp?: unknown } | undefined)?.acceptingOrdersTimestamp;
    return typeof v === 'string' ? v : null;
  }

  private simplified(c: ClobMarket): SimplifiedMarket {
    return {
      condition_id: c.condition_id,
      rewards: c.rewards,
      tokens: c.tokens,
      active: c.active,
      closed: c.closed,
      archived: c.archived,
      accepting_orders: c.accepting_orders,
    };
  }

  market(conditionId: string): ClobMarket | undefined {
    const m = this.marketOfCondition(conditionId);
    if (!m) return undefined;
    const g = this.exchange.gammaMarket(m.gammaId);
    return this.full(m, g);
  }

  markets(): ClobMarket[] {
    return this.withGamma().map(([m, g]) => this.full(m, g));
  }

  simplifiedMarkets(): SimplifiedMarket[] {
    return this.markets().map((c) => this.simplified(c));
  }

  /** The venue samples markets with liquidity rewards; the sim has none, so every open market qualifies. */
  samplingMarkets(): ClobMarket[] {
    return this.markets().filter((c) => c.active && !c.closed && c.accepting_orders);
  }

  samplingSimplifiedMarkets(): SimplifiedMarket[] {
    return this.samplingMarkets().map((c) => this.simplified(c));
  }

  info(conditionId: string): ClobMarketInfo | undefined {
    const m = this.marketOfCondition(conditionId);
    if (!m) return undefined;
    const g = this.exchange.gammaMarket(m.gammaId);
    return {
      c: m.conditionId,
      t: m.tokenIds.map((t, i) => ({ t, o: m.outcomes[i] as string })),
      mts: microsToNumber(m.tickSize),
      nr: m.negRisk,
      // The V2 taker fee schedule (fee = shares × r × (p·(1−p))^e); fee-free markets read r=0.
      fd: m.feeSchedule
        ? { r: microsToNumber(toMicros(m.feeSchedule.rate)), e: m.feeSchedule.exponent, to: m.feeSchedule.takerOnly }
        : { r: 0, e: 0, to: true },
      mbf: 0,
      tbf: 0,
      r: null,
      ao: g?.acceptingOrders ?? true,
      mos: microsToNumber(m.minOrderSize),
      sd: 0,
      aot: (m.event ? this.openedAt(g) : m.startDate) ?? '',
    };
  }
}
