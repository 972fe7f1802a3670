import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../server.js';
import { one, type Query } from './util.js';

/** Public CLOB REST: no auth. */
export function registerPublicRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { exchange } = deps;
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

}
