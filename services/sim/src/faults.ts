import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from './server.js';

/** Faults on demand (admin routes, latency, 425/429/5xx windows, WebSocket drops and freezes). */
export function registerFaults(_app: FastifyInstance, _deps: ServerDeps): void {}
