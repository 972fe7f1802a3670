import type { GammaMarket } from '@polybot/polymarket';
import { microsToNumber, toMicros } from '@polybot/protocol';
import type { SimMarket } from './markets.js';

/**
 * Gamma events and series over the sim's markets. The market model has no grouping, so each
 * binary market is its own event (slug = ticker = market slug, as for the venue's single-market
 * events) and every event belongs to one series of all simulated markets, tagged `sim`.
 */

export interface GammaTag {
  id: string;
  label: string;
  slug: string;
}

export interface GammaSeries {
  id: string;
  ticker: string;
  slug: string;
  title: string;
  seriesType: string;
  recurrence: string;
  image: string;
  icon: string;
  active: boolean;
  closed: boolean;
  archived: boolean;
  featured: boolean;
  restricted: boolean;
  createdAt: string;
  updatedAt: string;
  volume: number;
  liquidity: number;
  commentCount: number;
  requiresTranslation: boolean;
}

export interface GammaEvent {
  id: string;
  ticker: string;
  slug: string;
  title: string;
  description: string;
  resolutionSource: string;
  startDate: string;
  creationDate: string;
  endDate: string;
  image: string;
  icon: string;
  active: boolean;
  closed: boolean;
  archived: boolean;
  new: boolean;
  featured: boolean;
  restricted: boolean;
  liquidity: number;
  volume: number;
  openInterest: number;
  createdAt: string;
  updatedAt: string;
  enableOrderBook: boolean;
  liquidityClob: number;
  negRisk: boolean;
  commentCount: number;
  cyom: boolean;
  showAllOutcomes: boolean;
  showMarketImages: boolean;
  enableNegRisk: boolean;
  automaticallyActive: boolean;
  seriesSlug: string;
  negRiskAugmented: boolean;
  pendingDeployment: boolean;
  deploying: boolean;
  requiresTranslation: boolean;
  series: GammaSeries[];
  tags: GammaTag[];
  markets?: GammaMarket[];
}

/** Gamma market as served: the exchange's object plus its parent event (without markets). */
export type ServedGammaMarket = GammaMarket & { events: GammaEvent[] };

export const SIM_SERIES_ID = '1';
export const SIM_SERIES_SLUG = 'polybot-sim';
export const SIM_TAG: GammaTag = { id: '1', label: 'Simulated', slug: 'sim' };
/** Event ids live in their own range (market ids start at 500000) so the two never look alike. */
const EVENT_ID_BASE = 100_000;

export const eventId = (m: SimMarket): string => String(EVENT_ID_BASE + m.index);

/** Sum of decimal strings through micro units, so event totals are exact. */
const sum = (xs: Array<string | undefined>): number => microsToNumber(xs.reduce((a, x) => a + toMicros(x ?? '0'), 0n));

/**
 * `updatedAt` of events and series is the newest creation time, not the clock: nothing about them
 * changes structurally, and equal seeds must give equal answers (determinism tests compare them).
 */
export function simSeries(markets: GammaMarket[], sims: SimMarket[]): GammaSeries {
  const created = sims.map((m) => m.createdAt).sort();
  const epoch = '1970-01-01T00:00:00Z';
  return {
    id: SIM_SERIES_ID,
    ticker: SIM_SERIES_SLUG,
    slug: SIM_SERIES_SLUG,
    title: 'PolyBot simulated markets',
    seriesType: 'single',
    recurrence: '',
    image: '',
    icon: '',
    active: markets.some((g) => g.active),
    closed: markets.length > 0 && markets.every((g) => g.closed),
    archived: false,
    featured: false,
    restricted: false,
    createdAt: created[0] ?? epoch,
    updatedAt: created[created.length - 1] ?? epoch,
    volume: sum(markets.map((g) => g.volume)),
    liquidity: sum(markets.map((g) => g.liquidity)),
    commentCount: 0,
    requiresTranslation: false,
  };
}

/** The event of one market; `markets` only when asked (Gamma omits them inside a market's `events`). */
export function marketEvent(m: SimMarket, g: GammaMarket, series: GammaSeries, withMarkets: boolean): GammaEvent {
  const ev: GammaEvent = {
    id: eventId(m),
    ticker: m.slug,
    slug: m.slug,
    title: m.question,
    description: m.description,
    resolutionSource: '',
    startDate: m.startDate,
    creationDate: m.createdAt,
    endDate: m.endDate,
    image: '',
    icon: '',
    active: g.active,
    closed: g.closed,
    archived: g.archived ?? false,
    new: false,
    featured: false,
    restricted: false,
    liquidity: sum([g.liquidity]),
    volume: sum([g.volume]),
    openInterest: 0,
    createdAt: m.createdAt,
    updatedAt: m.createdAt,
    enableOrderBook: true,
    liquidityClob: sum([g.liquidity]),
    negRisk: m.negRisk,
    commentCount: 0,
    cyom: false,
    showAllOutcomes: true,
    showMarketImages: true,
    enableNegRisk: m.negRisk,
    automaticallyActive: true,
    seriesSlug: series.slug,
    negRiskAugmented: false,
    pendingDeployment: false,
    deploying: false,
    requiresTranslation: false,
    series: [series],
    tags: [SIM_TAG],
  };
  if (withMarkets) ev.markets = [g];
  return ev;
}
