import type { GammaMarket } from '@polybot/polymarket';
import { microsToNumber, toMicros } from '@polybot/protocol';
import type { SimEventInfo, SimMarket, SimSeriesInfo } from './markets.js';

/**
 * Gamma events and series over the sim's markets. A generated binary market is its own event
 * (slug = ticker = market slug, as for the venue's single-market events) in one series of all
 * generated markets, tagged `sim`. Markets that carry an event (`SimMarket.event`) are grouped by
 * it: the neg-risk event holds all its candidates (no series), and each crypto round is an event
 * of its asset's up/down series (`btc-up-or-down-15m`, recurrence "15m").
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
  /** Round start (recurring events). */
  startTime?: string;
  negRiskMarketID?: string;
  series: GammaSeries[];
  tags: GammaTag[];
  markets?: GammaMarket[];
}

export type GammaSeriesWithEvents = GammaSeries & { events: GammaEvent[]; tags: GammaTag[] };

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

// ---------------------------------------------------------------- grouped view

const newest = (xs: string[], fallback: string) => xs.reduce((a, b) => (b > a ? b : a), fallback);

function roundSeriesObject(info: SimSeriesInfo, gs: GammaMarket[], sims: SimMarket[]): GammaSeries {
  return {
    id: info.id,
    ticker: info.ticker,
    slug: info.slug,
    title: info.title,
    seriesType: 'single',
    recurrence: info.recurrence,
    image: '',
    icon: '',
    active: gs.some((g) => g.active),
    closed: gs.length > 0 && gs.every((g) => g.closed),
    archived: false,
    featured: false,
    restricted: false,
    createdAt: info.createdAt,
    updatedAt: newest(sims.map((m) => m.createdAt), info.createdAt),
    volume: sum(gs.map((g) => g.volume)),
    liquidity: sum(gs.map((g) => g.liquidity)),
    commentCount: 0,
    requiresTranslation: false,
  };
}

/** The event of a group of markets (neg-risk event or round); `markets` only when asked. */
export function groupEvent(info: SimEventInfo, gs: GammaMarket[], series: GammaSeries | undefined, withMarkets: boolean): GammaEvent {
  const liquidity = sum(gs.map((g) => g.liquidity));
  const ev: GammaEvent = {
    id: info.id,
    ticker: info.ticker,
    slug: info.slug,
    title: info.title,
    description: info.description,
    resolutionSource: info.resolutionSource,
    startDate: info.startDate,
    creationDate: info.createdAt,
    endDate: info.endDate,
    image: '',
    icon: '',
    active: gs.some((g) => g.active),
    closed: gs.length > 0 && gs.every((g) => g.closed),
    archived: false,
    new: false,
    featured: false,
    restricted: false,
    liquidity,
    volume: sum(gs.map((g) => g.volume)),
    openInterest: 0,
    createdAt: info.createdAt,
    updatedAt: info.createdAt,
    enableOrderBook: true,
    liquidityClob: liquidity,
    negRisk: info.negRisk,
    ...(info.negRiskMarketID ? { negRiskMarketID: info.negRiskMarketID } : {}),
    commentCount: 0,
    cyom: false,
    showAllOutcomes: true,
    showMarketImages: true,
    enableNegRisk: info.negRisk,
    automaticallyActive: true,
    ...(info.startTime ? { startTime: info.startTime } : {}),
    seriesSlug: series?.slug ?? '',
    negRiskAugmented: false,
    pendingDeployment: false,
    deploying: false,
    requiresTranslation: false,
    series: series ? [series] : [],
    tags: info.tags,
  };
  if (withMarkets) ev.markets = gs;
  return ev;
}

export interface GammaRow {
  m: SimMarket;
  g: GammaMarket;
}

/** Every market with its parent event, every event with its markets, every series with its events. */
export interface GammaView {
  markets: ServedGammaMarket[];
  events: GammaEvent[];
  series: GammaSeriesWithEvents[];
}

/** Groups the exchange's markets (in its order) into Gamma events and series; events keep the order of their first market. */
export function gammaView(rows: GammaRow[]): GammaView {
  const legacy = rows.filter((r) => !r.m.event);
  const sim = simSeries(
    legacy.map((r) => r.g),
    legacy.map((r) => r.m),
  );
  const groups = new Map<string, GammaRow[]>();
  const seriesRows = new Map<string, { info: SimSeriesInfo; rows: GammaRow[] }>();
  for (const r of rows) {
    const e = r.m.event;
    if (!e) continue;
    const g = groups.get(e.id);
    if (g) g.push(r);
    else groups.set(e.id, [r]);
    if (e.series) {
      const s = seriesRows.get(e.series.id);
      if (s) s.rows.push(r);
      else seriesRows.set(e.series.id, { info: e.series, rows: [r] });
    }
  }
  const seriesById = new Map<string, GammaSeries>();
  for (const [id, s] of seriesRows) seriesById.set(id, roundSeriesObject(s.info, s.rows.map((r) => r.g), s.rows.map((r) => r.m)));

  const refs = new Map<string, GammaEvent>();
  const events: GammaEvent[] = [];
  const markets: ServedGammaMarket[] = [];
  for (const r of rows) {
    const e = r.m.event;
    let ref: GammaEvent;
    if (!e) {
      ref = marketEvent(r.m, r.g, sim, false);
      events.push(marketEvent(r.m, r.g, sim, true));
    } else {
      let known = refs.get(e.id);
      if (!known) {
        const gs = (groups.get(e.id) ?? []).map((x) => x.g);
        const series = e.series ? seriesById.get(e.series.id) : undefined;
        known = groupEvent(e, gs, series, false);
        refs.set(e.id, known);
        events.push(groupEvent(e, gs, series, true));
      }
      ref = known;
    }
    markets.push({ ...r.g, events: [ref] });
  }
  const strip = (ev: GammaEvent): GammaEvent => {
    const { markets: _m, ...rest } = ev;
    return rest;
  };
  const series: GammaSeriesWithEvents[] = [
    { ...sim, events: events.filter((ev) => ev.seriesSlug === sim.slug).map(strip), tags: [SIM_TAG] },
    ...[...seriesById.values()].map((s) => ({
      ...s,
      events: events.filter((ev) => ev.series.some((x) => x.id === s.id)).map(strip),
      tags: [{ id: '21', label: 'Crypto', slug: 'crypto' }],
    })),
  ];
  return { markets, events, series };
}
