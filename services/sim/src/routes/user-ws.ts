import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../server.js';

/** User WebSocket `/ws/user`: authenticated order and trade events. */
export function registerUserWs(_app: FastifyInstance, _deps: ServerDeps): void {}
