import type { FastifyInstance } from 'fastify';
import type { Exchange } from '../exchange.js';
import type { ServerDeps } from '../server.js';
import { UserHub, type UserWsMetrics } from '../user-ws.js';

/** The hub of the server most recently built for an exchange (the service builds one per start). */
const hubs = new WeakMap<Exchange, UserHub>();

const NO_METRICS: UserWsMetrics = { clients: 0, pending: 0, eventsSent: 0, framesSent: 0, authFailures: 0, invalidFrames: 0, slowDropped: 0 };

/** User-channel counters for the sim's metrics; zeros before the server is built. */
export function userWsMetrics(exchange: Exchange): UserWsMetrics {
  return hubs.get(exchange)?.metrics ?? { ...NO_METRICS };
}

/** User WebSocket `/ws/user`: authenticated order and trade events. */
export function registerUserWs(app: FastifyInstance, deps: ServerDeps): UserHub {
  const hub = new UserHub(deps.exchange, deps.auth, deps.log.child({ component: 'ws-user' }));
  hubs.set(deps.exchange, hub);
  app.get('/ws/user', { websocket: true }, (socket) => hub.accept(socket));
  // Say why the socket closes (1001) and release the exchange listener without waiting for close events.
  app.addHook('preClose', (done) => {
    hub.closeAll();
    done();
  });
  return hub;
}
