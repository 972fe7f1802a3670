import { parseJsonArray, type GammaMarket } from '@polybot/polymarket';
import type { FastifyInstance } from 'fastify';
import { ClobCatalog, page } from '../clob-markets.js';
import {
  eventId,
  marketEvent,
  simSeries,
  SIM_SERIES_ID,
  SIM_TAG,
  type GammaEvent,
  type GammaSeries,
  type ServedGammaMarket,
} from '../gamma-events.js';
import type { SimMarket } from '../markets.js';
import type { ServerDeps } from '../server.js';
import { bool, int, list, type Query } from './util.js';

/** Gamma API: market and event discovery. */
export function registerGammaRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { exchange } = deps;
  const catalog = new ClobCatalog(exchange);
  const simByGammaId = new Map(exchange.markets.map((m) => [m.gammaId, m]));

  /** One consistent snapshot of every market with its event and the series, per request. */
  const view = () => {
    const gamma = exchange.gammaMarkets();
    const series = simSeries(gamma, exchange.markets);
    const rows = gamma.flatMap((g) => {
      const m = simByGammaId.get(g.id);
      return m ? [{ m, g, series }] : [];
    });
    return { rows, series };
  };
  type Row = { m: SimMarket; g: GammaMarket; series: GammaSeries };
  const served = (r: Row): ServedGammaMarket => ({ ...r.g, events: [marketEvent(r.m, r.g, r.series, false)] });
  const withEvents = (r: Row): GammaEvent => marketEvent(r.m, r.g, r.series, true);
  const limits = (q: Query) => ({ limit: int(q, 'limit', 100, 1000), offset: int(q, 'offset', 0, 1_000_000) });

  // ---------------------------------------------------------------- markets

  app.get('/markets', async (req) => {
    const q = req.query as Query;
    // The CLOB's paged listing shares this path: a `next_cursor` parameter selects it.
    if (q.next_cursor !== undefined) return page(catalog.markets(), q);
    const { limit, offset } = limits(q);
    const active = bool(q, 'active');
    const closed = bool(q, 'closed') ?? false; // Gamma applies closed=false unless asked otherwise
    const ids = list(q, 'id');
    const slugs = list(q, 'slug');
    const tokenIds = list(q, 'clob_token_ids');
    const conditionIds = list(q, 'condition_ids')?.map((c) => c.toLowerCase());
    const rows = view().rows.filter(
      ({ g: m }) =>
        (active === undefined || m.active === active) &&
        m.closed === closed &&
        (!ids || ids.includes(m.id)) &&
        (!slugs || slugs.includes(m.slug)) &&
        (!conditionIds || conditionIds.includes(m.conditionId.toLowerCase())) &&
        (!tokenIds || parseJsonArray(m.clobTokenIds).some((t) => tokenIds.includes(t))),
    );
    return rows.slice(offset, offset + limit).map(served);
  });

  app.get('/markets/slug/:slug', async (req, reply) => {
    const slug = (req.params as { slug: string }).slug;
    const row = view().rows.find((r) => r.g.slug === slug);
    return row ? served(row) : reply.code(404).send({ error: 'market not found' });
  });

  // Condition ids (0x…) are CLOB lookups; Gamma ids are decimal.
  app.get('/markets/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    if (/^0x/i.test(id)) return catalog.market(id) ?? reply.code(404).send({ error: 'market not found' });
    const row = view().rows.find((r) => r.g.id === id);
    return row ? served(row) : reply.code(404).send({ error: 'market not found' });
  });

  // ---------------------------------------------------------------- events and series

  app.get('/events', async (req) => {
    const q = req.query as Query;
    const { limit, offset } = limits(q);
    const active = bool(q, 'active');
    const closed = bool(q, 'closed') ?? false; // like /markets
    const ids = list(q, 'id');
    const slugs = list(q, 'slug');
    const seriesIds = list(q, 'series_id');
    const tagSlugs = list(q, 'tag_slug');
    const events = view()
      .rows.filter((r) => !ids || ids.includes(eventId(r.m)))
      .map(withEvents)
      .filter(
        (e) =>
          (active === undefined || e.active === active) &&
          e.closed === closed &&
          (!slugs || slugs.includes(e.slug)) &&
          (!seriesIds || e.series.some((s) => seriesIds.includes(s.id))) &&
          (!tagSlugs || e.tags.some((t) => tagSlugs.includes(t.slug))),
      );
    return events.slice(offset, offset + limit);
  });

  app.get('/events/slug/:slug', async (req, reply) => {
    const slug = (req.params as { slug: string }).slug;
    const row = view().rows.find((r) => r.m.slug === slug);
    return row ? withEvents(row) : reply.code(404).send({ error: 'event not found' });
  });

  app.get('/events/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const row = view().rows.find((r) => eventId(r.m) === id);
    return row ? withEvents(row) : reply.code(404).send({ error: 'event not found' });
  });

  /** A series with its events (without their markets), as Gamma's `/series` lists them. */
  const seriesWithEvents = () => {
    const { rows, series } = view();
    return { ...series, events: rows.map((r) => marketEvent(r.m, r.g, r.series, false)), tags: [SIM_TAG] };
  };

  app.get('/series', async (req) => {
    const q = req.query as Query;
    const { limit, offset } = limits(q);
    const slugs = list(q, 'slug');
    const ids = list(q, 'id');
    const closed = bool(q, 'closed');
    const s = seriesWithEvents();
    const all = [s].filter(
      (x) => (!slugs || slugs.includes(x.slug)) && (!ids || ids.includes(x.id)) && (closed === undefined || x.closed === closed),
    );
    return all.slice(offset, offset + limit);
  });

  app.get('/series/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    return id === SIM_SERIES_ID ? seriesWithEvents() : reply.code(404).send({ error: 'series not found' });
  });
}
