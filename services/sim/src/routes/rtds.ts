import type { Logger } from '@polybot/core';
import type { FastifyInstance } from 'fastify';
import type { Exchange } from '../exchange.js';
import { RtdsHub } from '../rtds.js';

/** The hub of the server most recently built for an exchange. */
const hubs = new WeakMap<Exchange, RtdsHub>();

/** RTDS counters for the sim's metrics; zeros before the route is registered. */
export function rtdsMetrics(exchange: Exchange): { clients: number; framesSent: number; invalidFrames: number } {
  const h = hubs.get(exchange);
  return { clients: h?.clientCount ?? 0, framesSent: h?.stats.framesSent ?? 0, invalidFrames: h?.stats.invalidFrames ?? 0 };
}

/**
 * `GET /ws/rtds`: the real-time data socket (venue: wss://ws-live-data.polymarket.com) with the
 * reference prices of the crypto rounds on `crypto_prices` and `crypto_prices_chainlink`.
 */
export function registerRtds(app: FastifyInstance, deps: { exchange: Exchange; log: Logger }): RtdsHub {
  const hub = new RtdsHub(deps.exchange, deps.log.child({ component: 'ws-rtds' }));
  hubs.set(deps.exchange, hub);
  app.get('/ws/rtds', { websocket: true }, (socket) => hub.accept(socket));
  app.addHook('preClose', (done) => {
    hub.closeAll();
    done();
  });
  return hub;
}
