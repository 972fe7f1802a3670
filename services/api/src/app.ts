import { existsSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import { BusError, type BusRequester } from '@polybot/bus';
import type { Logger } from '@polybot/core';
import { TokenId } from '@polybot/protocol';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import Type, { type Static } from 'typebox';
import type { DbReader } from './db.js';
import type { HealthRegistry } from './health.js';
import type { WsHub } from './hub.js';
import { registerMetrics } from './metrics.js';

export interface AppStats {
  requests: number;
  analyticsErrors: number;
}

export interface AppDeps {
  db: DbReader;
  analytics: Pick<BusRequester, 'call'>;
  health: HealthRegistry;
  hub: WsHub;
  /** Directory of the dashboard build (index.html + assets). */
  uiDir: string;
  log?: Logger;
  /** Deadline of one analytics query before answering 503. */
  analyticsTimeoutMs?: number;
  stats?: AppStats;
}

const StrategyFilter = Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_.:-]*$' });

export const MarketsQuery = Type.Object({ active: Type.Optional(Type.Boolean()) });
export const OrdersQuery = Type.Object({
  strategy: Type.Optional(StrategyFilter),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
});
export const PositionsQuery = Type.Object({ strategy: Type.Optional(StrategyFilter) });
export const PricesParams = Type.Object({ tokenId: TokenId });
export const PricesQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 5000, default: 100 }),
  since_ts: Type.Optional(Type.Number({ minimum: 0 })),
});

interface MarketRow {
  condition_id: string;
  question: string;
  slug: string | null;
  active: number;
  closed: number;
  neg_risk: number;
  tick_size: string;
  min_order_size: string;
  end_date: string | null;
}
interface TokenRow {
  token_id: string;
  condition_id: string;
  outcome: string;
  outcome_index: number;
}

/** Queued analytics requests beyond this answer 503 at once instead of waiting in line. */
const MAX_ANALYTICS_INFLIGHT = 32;

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function clientCode(status: number): string {
  if (status === 404) return 'not_found';
  if (status === 413) return 'payload_too_large';
  if (status === 415) return 'unsupported_media_type';
  if (status === 429) return 'rate_limited';
  return 'bad_request';
}

/** The HTTP/WebSocket gateway; separate from the service so tests can drive it with inject. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const loggerInstance: FastifyBaseLogger | undefined = deps.log?.child({ component: 'http' });
  const app: FastifyInstance = Fastify({
    ...(loggerInstance ? { loggerInstance } : { logger: false }),
    // One line per request would drown the service log; errors are logged by the handler below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1 << 20,
  });
  const stats = deps.stats ?? { requests: 0, analyticsErrors: 0 };
  let analyticsInflight = 0;

  app.addHook('onResponse', async () => {
    stats.requests++;
  });
  registerMetrics(app, { health: deps.health, log: loggerInstance });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof HttpError) return reply.code(err.statusCode).send({ error: err.message, code: err.code });
    if (err.validation) {
      return reply.code(400).send({ error: `invalid ${err.message}`, code: 'bad_request' });
    }
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status < 500) return reply.code(status).send({ error: err.message, code: clientCode(status) });
    req.log.error({ err, url: req.url }, 'request failed');
    return reply.code(status).send({ error: 'internal error; see the api log', code: 'internal' });
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}; see docs/interfaces.md`, code: 'not_found' }),
  );

  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });
  // serve: false — the /ui routes below decide per request, so a build made after start is picked up.
  await app.register(fastifyStatic, { root: deps.uiDir, serve: false, suppressWarning: true });

  app.get('/api/health', async () => deps.health.report());

  app.get<{ Querystring: Static<typeof MarketsQuery> }>('/api/markets', { schema: { querystring: MarketsQuery } }, async (req) => {
    const { active } = req.query;
    const markets = deps.db.all<MarketRow>(
      `SELECT condition_id, question, slug, active, closed, neg_risk, tick_size, min_order_size, end_date
       FROM markets ${active === undefined ? '' : 'WHERE active = ?'} ORDER BY question, condition_id`,
      ...(active === undefined ? [] : [active ? 1 : 0]),
    );
    const tokens = new Map<string, Omit<TokenRow, 'condition_id'>[]>();
    if (markets.length > 0) {
      for (const t of deps.db.all<TokenRow>('SELECT token_id, condition_id, outcome, outcome_index FROM market_tokens ORDER BY outcome_index')) {
        const list = tokens.get(t.condition_id) ?? [];
        list.push({ token_id: t.token_id, outcome: t.outcome, outcome_index: t.outcome_index });
        tokens.set(t.condition_id, list);
      }
    }
    return {
      markets: markets.map((m) => ({
        ...m,
        active: m.active === 1,
        closed: m.closed === 1,
        neg_risk: m.neg_risk === 1,
        tokens: tokens.get(m.condition_id) ?? [],
      })),
    };
  });

  app.get<{ Querystring: Static<typeof OrdersQuery> }>('/api/orders', { schema: { querystring: OrdersQuery } }, async (req) => {
    const { strategy, limit } = req.query;
    const filter = strategy ? 'WHERE strategy = ?' : '';
    return {
      orders: deps.db.all(
        `SELECT * FROM orders ${filter} ORDER BY created_at DESC, order_id DESC LIMIT ?`,
        ...(strategy ? [strategy] : []),
        limit,
      ),
    };
  });

  app.get<{ Querystring: Static<typeof PositionsQuery> }>('/api/positions', { schema: { querystring: PositionsQuery } }, async (req) => {
    const { strategy } = req.query;
    return {
      positions: deps.db.all(`SELECT * FROM positions ${strategy ? 'WHERE strategy = ?' : ''} ORDER BY strategy, token_id`, ...(strategy ? [strategy] : [])),
    };
  });

  app.get<{ Params: Static<typeof PricesParams>; Querystring: Static<typeof PricesQuery> }>(
    '/api/prices/:tokenId',
    { schema: { params: PricesParams, querystring: PricesQuery } },
    async (req) => {
      const unavailable = (why: string) =>
        new HttpError(503, 'analytics_unavailable', `analytics did not answer (${why}); check that the analytics service is running`);
      if (analyticsInflight >= MAX_ANALYTICS_INFLIGHT) throw unavailable('too many queries waiting');
      analyticsInflight++;
      try {
        const { limit, since_ts } = req.query;
        return await deps.analytics.call(
          'prices.recent',
          { token_id: req.params.tokenId, limit, ...(since_ts === undefined ? {} : { since_ts }) },
          deps.analyticsTimeoutMs ?? 2000,
        );
      } catch (err) {
        stats.analyticsErrors++;
        if (!(err instanceof BusError)) throw err;
        if (err.remoteCode === 'bad_params') throw new HttpError(400, 'bad_request', err.message);
        if (err.code === 'remote' && err.remoteCode && !err.retryable) throw new HttpError(502, 'analytics_error', err.message);
        throw unavailable(err.message);
      } finally {
        analyticsInflight--;
      }
    },
  );

  app.get('/ws', { websocket: true }, (socket) => deps.hub.add(socket));

  registerUi(app, deps.uiDir);
  return app;
}

/** The dashboard build at /ui/, with index.html as the fallback of client-side routes. */
function registerUi(app: FastifyInstance, dir: string): void {
  const root = resolve(dir);
  app.get('/ui', (req, reply) => {
    const q = req.url.indexOf('?');
    return reply.redirect(`/ui/${q >= 0 ? req.url.slice(q) : ''}`, 302);
  });
  const serve = (rel: string, reply: FastifyReply) => {
    if (!existsSync(join(root, 'index.html'))) {
      return reply.code(503).send({
        error: `the dashboard is not built (no index.html in ${root}); run \`pnpm build\` and reload`,
        code: 'ui_not_built',
      });
    }
    const full = resolve(root, rel);
    const inside = full === root || full.startsWith(root + sep);
    let isFile: boolean;
    try {
      isFile = inside && statSync(full).isFile();
    } catch {
      isFile = false;
    }
    if (isFile && rel !== 'index.html') {
      // Vite puts content-hashed files under assets/, which never change.
      const hashed = rel.startsWith('assets/');
      return reply.sendFile(rel, root, hashed ? { maxAge: '365d', immutable: true } : { maxAge: 0 });
    }
    if (!inside || extname(rel) !== '') {
      return reply.code(404).send({ error: `no file ${rel} in the dashboard build`, code: 'not_found' });
    }
    reply.header('cache-control', 'no-cache');
    return reply.sendFile('index.html', root, { cacheControl: false });
  };
  app.get('/ui/', (_req, reply) => serve('', reply));
  app.get<{ Params: { '*': string } }>('/ui/*', (req, reply) => serve(req.params['*'] ?? '', reply));
}
