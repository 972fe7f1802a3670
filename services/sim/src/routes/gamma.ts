import type { GammaMarket } from '@polybot/polymarket';
import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../server.js';
import { bool, int, list, type Query } from './util.js';

/** Gamma API: market discovery. */
export function registerGammaRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { exchange } = deps;
  // ---------------------------------------------------------------- Gamma

  app.get('/markets', async (req) => {
    const q = req.query as Query;
    const limit = int(q, 'limit', 100, 1000);
    const offset = int(q, 'offset', 0, 1_000_000);
    const active = bool(q, 'active');
    const closed = bool(q, 'closed') ?? false; // Gamma applies closed=false unless asked otherwise
    const ids = list(q, 'id');
    const slugs = list(q, 'slug');
    const tokenIds = list(q, 'clob_token_ids');
    const conditionIds = list(q, 'condition_ids')?.map((c) => c.toLowerCase());
    const all: GammaMarket[] = exchange.gammaMarkets().filter(
      (m) =>
        (active === undefined || m.active === active) &&
        m.closed === closed &&
        (!ids || ids.includes(m.id)) &&
        (!slugs || slugs.includes(m.slug)) &&
        (!conditionIds || conditionIds.includes(m.conditionId.toLowerCase())) &&
        (!tokenIds || (JSON.parse(m.clobTokenIds) as string[]).some((t) => tokenIds.includes(t))),
    );
    return all.slice(offset, offset + limit);
  });

  app.get('/markets/:id', async (req, reply) => {
    const m = exchange.gammaMarket((req.params as { id: string }).id);
    if (!m) return reply.code(404).send({ error: 'market not found' });
    return m;
  });

}
