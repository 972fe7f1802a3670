import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { BusRequester, BusSubscriber } from '@polybot/bus';
import { serviceConfig, type Service, type ServiceContext } from '@polybot/core';
import type { BusMessage, StatusMessage } from '@polybot/protocol';
import Type, { type Static } from 'typebox';
import { buildApp, type AppStats } from './app.js';
import { createDbReader, type DbReader } from './db.js';
import { HealthRegistry } from './health.js';
import { EVENT_ROOTS, WsHub } from './hub.js';

export { buildApp, type AppDeps, type AppStats } from './app.js';
export { createDbReader, type DbReader } from './db.js';
export { HealthRegistry, type HealthReport, type ServiceHealth } from './health.js';
export { WsHub, type HubOptions } from './hub.js';

export const ApiConfig = serviceConfig({
  POLYBOT_EXPECTED_SERVICES: Type.String({ pattern: '^[A-Za-z0-9_.:-]+(,[A-Za-z0-9_.:-]+)*$', default: 'sim,bus,scanner,executor,analytics,api' }),
  POLYBOT_UI_DIR: Type.Optional(Type.String({ minLength: 1, description: 'dashboard build; default frontend/dist of the repo' })),
});
export type ApiConfig = Static<typeof ApiConfig>;

/** The repo's frontend/dist, from services/api/{src,dist}/ (same depth in both). */
export function defaultUiDir(): string {
  return resolve(fileURLToPath(new URL('../../../frontend/dist/', import.meta.url)));
}

export interface ApiService extends Service {
  /** The bound TCP port (useful with POLYBOT_API_PORT=0); 0 before start. */
  readonly port: number;
  readonly app: FastifyInstance | undefined;
}

const ANALYTICS_TIMEOUT_MS = 2000;

/** The gateway: REST + WebSocket + dashboard, fed by the bus and the SQLite/DuckDB owners. */
export function createApiService(ctx: ServiceContext<ApiConfig>): ApiService {
  const log = ctx.log;
  const startedAt = Date.now();
  const stats: AppStats = { requests: 0, analyticsErrors: 0 };
  let app: FastifyInstance | undefined;
  let port = 0;
  let db: DbReader | undefined;
  let requester: BusRequester | undefined;
  let eventsSub: BusSubscriber | undefined;
  let pricesSub: BusSubscriber | undefined;
  let stopped = false;

  const hub = new WsHub({
    log: log.child({ component: 'ws' }),
    // Depth and trades are the heavy streams of prices.pub; follow them only while a client wants them.
    onInterest: (prefix, wanted) => (wanted ? pricesSub?.subscribe(prefix) : pricesSub?.unsubscribe(prefix)),
  });

  const metrics = (): Record<string, number | string> => ({
    ...hub.stats,
    http_requests: stats.requests,
    analytics_errors: stats.analyticsErrors,
    events_received: eventsSub?.stats.received ?? 0,
    prices_received: pricesSub?.stats.received ?? 0,
    bus_invalid: (eventsSub?.stats.invalid ?? 0) + (pricesSub?.stats.invalid ?? 0),
  });

  const expected = ctx.config.POLYBOT_EXPECTED_SERVICES.split(',').map((s) => s.trim()).filter(Boolean);
  const health = new HealthRegistry(expected, { name: ctx.name, since: startedAt, metrics });

  return {
    get port() {
      return port;
    },
    get app() {
      return app;
    },

    async start() {
      db = createDbReader(ctx.paths.polybotDb, log);
      requester = new BusRequester({ endpoint: ctx.endpoints['analytics.rep'], src: ctx.name, timeoutMs: ANALYTICS_TIMEOUT_MS, log });

      eventsSub = new BusSubscriber({
        endpoints: [ctx.endpoints['events.pub']],
        topics: [...EVENT_ROOTS],
        name: 'api events',
        log,
        onMessage: (msg: BusMessage, topic: string) => {
          if (msg.type === 'status') health.record(msg as StatusMessage);
          hub.publish(topic, msg);
        },
      });
      pricesSub = new BusSubscriber({
        endpoints: [ctx.endpoints['prices.pub']],
        // Top of book is always followed so new clients get a snapshot; depth and trades only on demand.
        topics: ['price.'],
        name: 'api prices',
        log,
        onMessage: (msg: BusMessage, topic: string) => hub.publish(topic, msg),
      });
      eventsSub.start();
      pricesSub.start();
      hub.start();

      const uiDir = ctx.config.POLYBOT_UI_DIR ? resolve(ctx.config.POLYBOT_UI_DIR) : defaultUiDir();
      app = await buildApp({ db, analytics: requester, health, hub, uiDir, log, analyticsTimeoutMs: ANALYTICS_TIMEOUT_MS, stats });
      await app.listen({ host: ctx.config.POLYBOT_HOST, port: ctx.config.POLYBOT_API_PORT });
      const addr = app.server.address();
      port = typeof addr === 'object' && addr ? addr.port : ctx.config.POLYBOT_API_PORT;
      log.info({ url: `http://${ctx.config.POLYBOT_HOST}:${port}`, ui: `http://${ctx.config.POLYBOT_HOST}:${port}/ui/`, uiDir }, 'api listening');
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      // Stop intake (HTTP and WebSocket clients) before the bus sockets they read from.
      hub.stop();
      await app?.close();
      await eventsSub?.close();
      await pricesSub?.close();
      await requester?.close();
      db?.close();
    },

    metrics,
  };
}
