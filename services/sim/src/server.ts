import websocket from '@fastify/websocket';
import type { Logger } from '@polybot/core';
import { PostOrderBody, type GammaMarket } from '@polybot/polymarket';
import Fastify, { type FastifyInstance } from 'fastify';
import Compile from 'typebox/compile';
import type { Exchange } from './exchange.js';
import type { MarketHub } from './market-ws.js';

const checkOrder = Compile(PostOrderBody);

type Query = Record<string, string | string[] | undefined>;

/** All values of a query key, accepting both repeated keys and comma-separated lists. */
function list(q: Query, key: string): string[] | undefined {
  const v = q[key];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

function one(q: Query, key: string): string | undefined {
  const v = q[key];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

class BadRequest extends Error {
  readonly statusCode = 400;
}

function bool(q: Query, key: string): boolean | undefined {
  const v = one(q, key);
  if (v === undefined || v === '') return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new BadRequest(`${key} must be true or false`);
}

function int(q: Query, key: string, def: number, max: number): number {
  const v = one(q, key);
  if (v === undefined || v === '') return def;
  if (!/^\d+$/.test(v)) throw new BadRequest(`${key} must be a non-negative integer`);
  return Math.min(Number(v), max);
}

export interface ServerDeps {
  exchange: Exchange;
  hub: MarketHub;
  log: Logger;
  /** Called for an order body that fails the schema (counted as a rejected order). */
  onInvalidOrder?: () => void;
}

/** The simulator's HTTP surface: Gamma (`/markets`), public CLOB, `POST /order`, and `/ws/market`. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { exchange, hub, log } = deps;
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (code >= 500) log.error({ err, url: req.url }, 'request failed');
    void reply.code(code).send({ error: code >= 500 ? 'internal error' : err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route for ${req.method} ${req.url.split('?')[0]}` });
  });

  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });

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

  // ---------------------------------------------------------------- CLOB public

  app.get('/ok', async (_req, reply) => reply.type('text/plain').send('OK'));
  app.get('/time', async () => Math.floor(Date.now() / 1000));
  app.get('/version', async () => ({ version: 2 }));

  app.get('/book', async (req, reply) => {
    const tokenId = one(req.query as Query, 'token_id');
    if (!tokenId) return reply.code(400).send({ error: 'Invalid payload: token_id is required' });
    const book = exchange.bookSummary(tokenId);
    if (!book) return reply.code(404).send({ error: 'No orderbook exists for the requested token id' });
    return book;
  });

  // ---------------------------------------------------------------- CLOB trading (no auth yet)

  app.post('/order', async (req, reply) => {
    const body: unknown = req.body;
    if (!checkOrder.Check(body)) {
      const e = checkOrder.Errors(body)[0];
      deps.onInvalidOrder?.();
      return reply.code(400).send({ error: `Invalid order payload${e ? `: ${e.instancePath || '/'} ${e.message}` : ''}` });
    }
    return exchange.postOrder(body);
  });

  // ---------------------------------------------------------------- market WebSocket

  app.get('/ws/market', { websocket: true }, (socket) => hub.accept(socket));

  return app;
}
