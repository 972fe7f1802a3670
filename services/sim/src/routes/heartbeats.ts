import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { authSettings, requireL2, UNAUTHORIZED } from '../auth.js';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS, HeartbeatTracker } from '../heartbeats.js';
import type { ServerDeps } from '../server.js';

export interface HeartbeatRouteOptions {
  /** Clock in ms (tests); `Date.now` by default. */
  now?: () => number;
  newId?: () => string;
  /** Sweep period of the expiry timer; derived from the timeout by default. */
  checkIntervalMs?: number;
}

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;

/** The authenticated account, else the `POLY_ADDRESS` header (auth off); lower case. */
function callerOf(req: FastifyRequest): string | undefined {
  if (req.auth?.address) return req.auth.address.toLowerCase();
  const h = req.headers['poly_address'];
  const v = Array.isArray(h) ? h[0] : h;
  return v && ADDRESS_RE.test(v) ? v.toLowerCase() : undefined;
}

const unauthorized = (reply: FastifyReply) => reply.code(401).send(UNAUTHORIZED);

/** Dead-man switch: `POST /v1/heartbeats` with chained ids, legacy `POST /heartbeats`. */
export function registerHeartbeatRoutes(app: FastifyInstance, deps: ServerDeps, opts: HeartbeatRouteOptions = {}): HeartbeatTracker {
  // Read loosely: the key may be absent from older configs.
  const configured = (deps.config as { POLYBOT_SIM_HEARTBEAT_TIMEOUT_MS?: number }).POLYBOT_SIM_HEARTBEAT_TIMEOUT_MS;
  const tracker = new HeartbeatTracker({
    timeoutMs: configured ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    now: opts.now,
    newId: opts.newId,
    onExpired: (address) => {
      deps.log.info({ address }, 'heartbeats stopped: cancelling the account orders');
      try {
        deps.onHeartbeatExpired?.(address);
      } catch (err) {
        // Runs from the sweep timer too, where a throw would take the process down.
        deps.log.error({ err, address }, 'heartbeat expiry handler failed');
      }
    },
  });
  tracker.start(opts.checkIntervalMs);
  app.addHook('onClose', async () => tracker.stop());

  // Same policy as the trading routes: with auth off a bare POLY_ADDRESS names the caller; any API key is checked.
  const settings = authSettings(deps.config);
  const l2 = requireL2(deps.auth, settings);
  const preHandler: preHandlerAsyncHookHandler = async function (this: FastifyInstance, req, reply) {
    if (!settings.required && req.headers['poly_api_key'] === undefined) return;
    return l2.call(this, req, reply);
  };

  app.post('/v1/heartbeats', { preHandler }, async (req, reply) => {
    const address = callerOf(req);
    if (!address) return unauthorized(reply);
    const raw = (req.body as { heartbeat_id?: unknown } | null | undefined)?.heartbeat_id;
    // Clients send "" (or null from Python's None) to start a chain.
    if (raw !== undefined && raw !== null && typeof raw !== 'string') return reply.code(400).send({ error: 'heartbeat_id must be a string' });
    const r = tracker.beat(address, raw ?? '');
    if (!r.ok) return reply.code(400).send({ error_msg: 'Invalid Heartbeat ID', heartbeat_id: r.expected });
    return { heartbeat_id: r.heartbeatId };
  });

  app.post('/heartbeats', { preHandler }, async (req, reply) => {
    const address = callerOf(req);
    if (!address) return unauthorized(reply);
    tracker.touch(address);
    return { status: 'ok' };
  });

  return tracker;
}
