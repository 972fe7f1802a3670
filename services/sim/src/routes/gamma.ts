import { parseJsonArray } from '@polybot/polymarket';
import type { FastifyInstance } from 'fastify';
import { ClobCatalog, page } from '../clob-markets.js';
import { gammaView, type GammaRow } from '../gamma-events.js';
import type { ServerDeps } from '../server.js';
import { bool, int, list, type Query } from './util.js';

/** Gamma API: market, event and series discovery (rounds appear and close over time, so every request rebuilds the view). */
export function registerGammaRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { exchange } = deps;
  const catalog = new ClobCatalog(exchange);

  /** One consistent snapshot of every market with its event, every event and every series, per request. */
  const view = () => {
    const rows: GammaRow[] = exchange.gammaMarkets().flatMap((g) => {
      const m = exchange.marketOfCondition(g.conditionId);
      return m ? [{ m, g }] : [];
    });
    return gammaView(rows);
  };
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
    const rows = view().markets.filter(
      (m) =>
        (active === undefined || m.active === active) &&
        m.closed === closed &&
        (!ids || ids.includes(m.id)) &&
        (!slugs || slugs.includes(m.slug)) &&
        (!conditionIds || conditionIds.includes(m.conditionId.toLowerCase())) &&
        (!tokenIds || parseJsonArray(m.clobTokenIds).some((t) => tokenIds.includes(t))),
    );
    return rows.slice(offset, offset + limit);
  });

  app.get('/markets/slug/:slug', async (req, reply) => {
    const slug = (req.params as { slug: string }).slug;
    const m = view().markets.find((x) => x.slug === slug);
    return m ?? reply.code(404).send({ error: 'market not found' });
  });

  // Condition ids (0x…) are CLOB lookups; Gamma ids are decimal.
  app.get('/markets/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    if (/^0x/i.test(id)) return catalog.market(id) ?? reply.code(404).send({ error: 'market not found' });
    const m = view().markets.find((x) => x.id === id);
    return m ?? reply.code(404).send({ error: 'market not found' });
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
    const events = view().events.filter(
      (e) =>
        (!ids || ids.includes(e.id)) &&
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
    const e = view().events.find((x) => x.slug === slug);
    return e ?? reply.code(404).send({ error: 'event not found' });
  });

  app.get('/events/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const e = view().events.find((x) => x.id === id);
    return e ?? reply.code(404).send({ error: 'event not found' });
  });

  app.get('/series', async (req) => {
    const q = req.query as Query;
    const { limit, offset } = limits(q);
    const slugs = list(q, 'slug');
    const ids = list(q, 'id');
    const closed = bool(q, 'closed');
    const all = view().series.filter(
      (x) => (!slugs || slugs.includes(x.slug)) && (!ids || ids.includes(x.id)) && (closed === undefined || x.closed === closed),
    );
    return all.slice(offset, offset + limit);
  });

  app.get('/series/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    return view().series.find((x) => x.id === id) ?? reply.code(404).send({ error: 'series not found' });
  });
}
