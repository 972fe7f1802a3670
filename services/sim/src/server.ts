import websocket from '@fastify/websocket';
import type { Logger } from '@polybot/core';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { ApiKeyStore } from './auth.js';
import type { Exchange } from './exchange.js';
import type { MarketHub } from './market-ws.js';
import type { SimConfig } from './index.js';
import { registerFaults } from './faults.js';
import { registerAuthRoutes } from './routes/auth.js';
import { registerHeartbeatRoutes } from './routes/heartbeats.js';
import { registerDataApi } from './routes/data-api.js';
import { registerRtds } from './routes/rtds.js';
import type { Traders } from './traders.js';
import { registerUserWs } from './routes/user-ws.js';
import { registerGammaRoutes } from './routes/gamma.js';
import { registerPublicRoutes } from './routes/public.js';
import { registerTradingRoutes } from './routes/trading.js';

export interface ServerDeps {
  exchange: Exchange;
  hub: MarketHub;
  log: Logger;
  /** Called for an order body that fails the schema (counted as a rejected order). */
  onInvalidOrder?: () => void;
  config: SimConfig;
  /** L1-created API keys; private routes resolve `req.auth` from them. */
  auth: ApiKeyStore;
  /** A wallet created its first API key: open its account with the starting balance. */
  onAccountCreated?: (address: string) => void;
  /** An account's heartbeats stopped: cancel its open orders (the venue's dead-man switch). */
  onHeartbeatExpired?: (address: string) => void;
  dataDir: string;
  /** Simulated trader wallets, listed by the Data API's `/traders`. */
  traders?: Traders;
}

/** The simulator's HTTP surface: Gamma (`/markets`), public CLOB, `POST /order`, and `/ws/market`. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { hub, log } = deps;
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    // Errors Fastify raises before routing (an undecodable path, say) get the venue's envelope too.
    frameworkErrors: (err, _req, res) => {
      const reply = res as FastifyReply;
      void reply.code(err.statusCode && err.statusCode < 500 ? err.statusCode : 400).send({ error: err.message });
    },
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (code >= 500) log.error({ err, url: req.url }, 'request failed');
    void reply.code(code).send({ error: code >= 500 ? 'internal error' : err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route for ${req.method} ${req.url.split('?')[0]}` });
  });

  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });

  // Faults first: their hooks must wrap every other route.
  registerFaults(app, deps);
  registerGammaRoutes(app, deps);
  registerPublicRoutes(app, deps);
  registerAuthRoutes(app, deps);
  registerTradingRoutes(app, deps);
  registerHeartbeatRoutes(app, deps);
  registerUserWs(app, deps);
  registerRtds(app, deps);
  registerDataApi(app, deps);

  // ---------------------------------------------------------------- market WebSocket

  app.get('/ws/market', { websocket: true }, (socket) => hub.accept(socket));

  return app;
}
