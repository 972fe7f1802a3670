import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../server.js';

/** L1 routes: create and derive API keys. */
export function registerAuthRoutes(_app: FastifyInstance, _deps: ServerDeps): void {}
