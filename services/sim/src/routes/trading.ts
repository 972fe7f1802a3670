import { PostOrderBody } from '@polybot/polymarket';
import type { FastifyInstance } from 'fastify';
import Compile from 'typebox/compile';
import type { ServerDeps } from '../server.js';

const checkOrder = Compile(PostOrderBody);

/** Private CLOB REST: orders, cancels, order and trade queries, balances. */
export function registerTradingRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { exchange } = deps;
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

}
