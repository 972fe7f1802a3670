import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../server.js';

/** Dead-man switch: `POST /v1/heartbeats` with chained ids, legacy `POST /heartbeats`. */
export function registerHeartbeatRoutes(_app: FastifyInstance, _deps: ServerDeps): void {}
