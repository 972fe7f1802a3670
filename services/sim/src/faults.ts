import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { toMicros } from '@polybot/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import Compile from 'typebox/compile';
import { Rng } from './rng.js';
import type { ServerDeps } from './server.js';
import { ERR_ORDER_VERSION_MISMATCH } from './verify-order.js';

// ------------------------------------------------------------------ admin request bodies

const Seconds = Type.Number({ minimum: 0, maximum: 86_400 });

/** `POST /admin/faults`: a partial update; fields left out keep their value. */
export const FaultUpdate = Type.Object(
  {
    latency_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 60_000 })),
    latency_jitter_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 60_000 })),
    /** Probability of a 500 on each REST request. */
    error_rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Starts a matching-engine restart now: 425 on order endpoints, then `post_only_s` of post-only mode. */
    too_early_s: Type.Optional(Seconds),
    post_only_s: Type.Optional(Seconds),
    /** Starts a cancel-only window now: new orders get 503, cancels pass. */
    cancel_only_s: Type.Optional(Seconds),
    rate_limits: Type.Optional(Type.Boolean()),
    rate_limit_scale: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000 })),
    /** Probability that a processed `POST /order` never gets its response. */
    accept_then_timeout_rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** The next N `POST /order` are refused with `order_version_mismatch`, as during a venue upgrade (`/version` unchanged). */
    version_mismatch_next: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
  },
  { additionalProperties: false },
);
export type FaultUpdate = Static<typeof FaultUpdate>;

const FreezeBody = Type.Object({ seconds: Type.Number({ exclusiveMinimum: 0, maximum: 86_400 }) }, { additionalProperties: false });
const FundBody = Type.Object(
  {
    address: Type.String({ minLength: 1, maxLength: 200 }),
    amount: Type.Union([Type.String({ pattern: '^[0-9]+(\\.[0-9]{1,6})?$', maxLength: 40 }), Type.Number({ minimum: 0 })]),
  },
  { additionalProperties: false },
);

const checkUpdate = Compile(FaultUpdate);
const checkFreeze = Compile(FreezeBody);
const checkFund = Compile(FundBody);

// ------------------------------------------------------------------ rate limits

/** [max requests, window ms]: the venue's sliding windows. */
type Limit = readonly [number, number];
interface LimitRule {
  /** Bucket name, also shown in the 429 message. */
  name: string;
  method?: string;
  /** Exact path, or a prefix when it ends with `/`. */
  paths: readonly string[];
  limits: readonly Limit[];
}

const S10 = 10_000;
const M10 = 600_000;

/**
 * Published limits (PROTOCOL.md §3, docs api-reference/rate-limits). A request counts against every
 * rule it matches: its endpoint rule(s), its family's general limit and the global one.
 */
export const RATE_LIMIT_RULES: readonly LimitRule[] = [
  { name: 'POST /order', method: 'POST', paths: ['/order'], limits: [[3500, S10], [36_000, M10]] },
  { name: 'DELETE /order', method: 'DELETE', paths: ['/order'], limits: [[3000, S10], [30_000, M10]] },
  { name: 'POST /orders', method: 'POST', paths: ['/orders'], limits: [[1000, S10], [15_000, M10]] },
  { name: 'DELETE /orders', method: 'DELETE', paths: ['/orders'], limits: [[1000, S10], [15_000, M10]] },
  { name: 'DELETE /cancel-all', method: 'DELETE', paths: ['/cancel-all'], limits: [[250, S10], [6000, M10]] },
  { name: 'DELETE /cancel-market-orders', method: 'DELETE', paths: ['/cancel-market-orders'], limits: [[1000, S10], [1500, M10]] },
  { name: '/book', paths: ['/book'], limits: [[1500, S10]] },
  { name: '/books', paths: ['/books'], limits: [[500, S10]] },
  { name: '/price', paths: ['/price'], limits: [[1500, S10]] },
  { name: '/prices', paths: ['/prices'], limits: [[500, S10]] },
  { name: '/midpoint', paths: ['/midpoint'], limits: [[1500, S10]] },
  { name: '/midpoints', paths: ['/midpoints'], limits: [[500, S10]] },
  { name: '/prices-history', paths: ['/prices-history'], limits: [[1000, S10]] },
  { name: '/tick-size', paths: ['/tick-size'], limits: [[200, S10]] },
  { name: '/data/orders', paths: ['/data/orders'], limits: [[500, S10]] },
  { name: '/data/trades', paths: ['/data/trades'], limits: [[500, S10]] },
  { name: 'ledger', paths: ['/data/orders', '/data/order/', '/data/trades'], limits: [[900, S10]] },
  { name: 'GET /balance-allowance', method: 'GET', paths: ['/balance-allowance'], limits: [[200, S10]] },
  { name: 'UPDATE /balance-allowance', paths: ['/balance-allowance/update'], limits: [[50, S10]] },
  { name: 'API keys', paths: ['/auth/'], limits: [[100, S10]] },
  // The simulator serves Gamma on the same port, so Gamma paths are told apart by prefix.
  { name: 'Gamma /markets', paths: ['/markets', '/markets/'], limits: [[300, S10]] },
  { name: 'Gamma /events', paths: ['/events', '/events/'], limits: [[500, S10]] },
];
const GAMMA_PATHS = ['/markets', '/markets/', '/events', '/events/', '/tags', '/tags/', '/series', '/series/', '/public-search', '/sports'];
const GAMMA_GENERAL: LimitRule = { name: 'Gamma general', paths: [], limits: [[4000, S10]] };
const CLOB_GENERAL: LimitRule = { name: 'CLOB general', paths: [], limits: [[9000, S10]] };
const GLOBAL: LimitRule = { name: 'general', paths: [], limits: [[15_000, S10]] };

const pathMatches = (path: string, pats: readonly string[]) => pats.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));

function rulesFor(method: string, path: string): LimitRule[] {
  const out = RATE_LIMIT_RULES.filter((r) => (!r.method || r.method === method) && pathMatches(path, r.paths));
  out.push(pathMatches(path, GAMMA_PATHS) ? GAMMA_GENERAL : CLOB_GENERAL, GLOBAL);
  return out;
}

/** Timestamps of accepted requests in one window, oldest first (a deque over an array). */
class SlidingLog {
  private t: number[] = [];
  private head = 0;
  expire(before: number): void {
    while (this.head < this.t.length && this.t[this.head]! <= before) this.head++;
    if (this.head > 1024 && this.head * 2 > this.t.length) {
      this.t = this.t.slice(this.head);
      this.head = 0;
    }
  }
  get count(): number {
    return this.t.length - this.head;
  }
  get oldest(): number | undefined {
    return this.t[this.head];
  }
  get newest(): number | undefined {
    return this.head < this.t.length ? this.t[this.t.length - 1] : undefined;
  }
  push(at: number): void {
    this.t.push(at);
  }
}

// ------------------------------------------------------------------ controller

const ORDER_PLACE = new Set(['POST /order', 'POST /orders']);
const ORDER_CANCEL = new Set(['DELETE /order', 'DELETE /orders', 'DELETE /cancel-all', 'DELETE /cancel-market-orders']);
/** How long an accepted-then-timed-out `POST /order` keeps its socket before destroying it. */
export const ACCEPT_TIMEOUT_HOLD_MS = 30_000;
const SWEEP_MS = 60_000;
const ACCEPTED = /"success"\s*:\s*true/;

export const ERR_TOO_EARLY = 'Too Early';
export const ERR_POST_ONLY = 'the matching engine is in post-only mode: only cancels and postOnly orders are accepted';
export const ERR_CANCEL_ONLY = 'Trading is currently cancel-only';
export const ERR_RATE_LIMIT = 'Too Many Requests';
export const ERR_INTERNAL = 'internal error';

interface Settings {
  latency_ms: number;
  latency_jitter_ms: number;
  error_rate: number;
  post_only_s: number;
  rate_limits: boolean;
  rate_limit_scale: number;
  accept_then_timeout_rate: number;
  version_mismatch_next: number;
}

const DEFAULTS: Settings = {
  latency_ms: 0,
  latency_jitter_ms: 0,
  error_rate: 0,
  post_only_s: 120,
  rate_limits: true,
  rate_limit_scale: 1,
  accept_then_timeout_rate: 0,
  version_mismatch_next: 0,
};

export type FaultPhase = 'normal' | 'too_early' | 'post_only' | 'cancel_only';

interface FaultHub {
  dropAll(): number;
  freeze(seconds: number): number;
  thaw(): void;
  readonly frozenCount: number;
}

/** Fault state of one server: settings, windows, rate-limit logs and counters. */
export class FaultController {
  /** Clock of the 425/post-only/cancel-only windows and the rate limiter; tests may replace it. */
  clock: () => number = Date.now;
  private settings: Settings = { ...DEFAULTS };
  private tooEarlyUntil = 0;
  private postOnlyUntil = 0;
  private cancelOnlyUntil = 0;
  private readonly logs = new Map<string, SlidingLog>();
  private lastSweep = 0;
  private readonly held = new Set<{ socket: Socket; timer: NodeJS.Timeout; done: () => void }>();
  /** Own stream, so injected faults never shift the exchange's seeded maker sequence. */
  private readonly rng: Rng;
  readonly counters = {
    requestsDelayed: 0,
    errorsInjected: 0,
    tooEarly: 0,
    postOnlyRejected: 0,
    cancelOnlyRejected: 0,
    rateLimited: 0,
    timeouts: 0,
    versionMismatches: 0,
    wsDrops: 0,
    wsFreezes: 0,
  };

  constructor(
    seed: number,
    private readonly hub?: FaultHub,
  ) {
    this.rng = new Rng((seed ^ 0x5eed_fa17) >>> 0);
  }

  phase(now = this.clock()): FaultPhase {
    if (now < this.tooEarlyUntil) return 'too_early';
    if (now < this.postOnlyUntil) return 'post_only';
    if (now < this.cancelOnlyUntil) return 'cancel_only';
    return 'normal';
  }

  /** Current settings and windows, as `GET /admin/faults` shows them. */
  view(): Record<string, unknown> {
    const now = this.clock();
    const left = (until: number, from = now) => Math.max(0, Math.round(until - Math.max(from, now)) / 1000);
    return {
      ...this.settings,
      phase: this.phase(now),
      too_early_remaining_s: left(this.tooEarlyUntil),
      // The post-only part only: it starts when the 425 window ends.
      post_only_remaining_s: left(this.postOnlyUntil, this.tooEarlyUntil),
      cancel_only_remaining_s: left(this.cancelOnlyUntil),
      ws_frozen_clients: this.hub?.frozenCount ?? 0,
      metrics: this.metrics(),
    };
  }

  update(u: FaultUpdate): void {
    const { too_early_s, cancel_only_s, ...rest } = u;
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) (this.settings as unknown as Record<string, unknown>)[k] = v;
    const now = this.clock();
    if (too_early_s !== undefined) {
      this.tooEarlyUntil = now + too_early_s * 1000;
      this.postOnlyUntil = this.tooEarlyUntil + this.settings.post_only_s * 1000;
    }
    if (cancel_only_s !== undefined) this.cancelOnlyUntil = now + cancel_only_s * 1000;
  }

  reset(): void {
    this.settings = { ...DEFAULTS };
    this.tooEarlyUntil = this.postOnlyUntil = this.cancelOnlyUntil = 0;
    this.logs.clear();
    this.hub?.thaw();
  }

  dropWs(): number {
    const n = this.hub?.dropAll() ?? 0;
    this.counters.wsDrops += n;
    return n;
  }

  freezeWs(seconds: number): number {
    const n = this.hub?.freeze(seconds) ?? 0;
    this.counters.wsFreezes += n;
    return n;
  }

  /** Figures for the status message; counters only grow. */
  metrics(): Record<string, number> {
    const s = this.settings;
    const now = this.clock();
    const active =
      Number(s.latency_ms > 0 || s.latency_jitter_ms > 0) +
      Number(s.error_rate > 0) +
      Number(this.phase(now) !== 'normal') +
      Number(s.rate_limits && s.rate_limit_scale !== 1) +
      Number(!s.rate_limits) +
      Number(s.accept_then_timeout_rate > 0) +
      Number(s.version_mismatch_next > 0) +
      Number((this.hub?.frozenCount ?? 0) > 0);
    const c = this.counters;
    return {
      faults_active: active,
      fault_requests_delayed: c.requestsDelayed,
      fault_5xx_injected: c.errorsInjected,
      fault_425s: c.tooEarly,
      fault_post_only_rejected: c.postOnlyRejected,
      fault_503s: c.cancelOnlyRejected,
      fault_429s: c.rateLimited,
      fault_timeouts: c.timeouts,
      fault_version_mismatches: c.versionMismatches,
      fault_ws_drops: c.wsDrops,
      fault_ws_freezes: c.wsFreezes,
    };
  }

  // ---------------------------------------------------------------- per-request decisions

  delayMs(): number {
    const { latency_ms, latency_jitter_ms } = this.settings;
    if (latency_ms <= 0 && latency_jitter_ms <= 0) return 0;
    return latency_ms + (latency_jitter_ms > 0 ? this.rng.next() * latency_jitter_ms : 0);
  }

  injectError(): boolean {
    return this.settings.error_rate > 0 && this.rng.next() < this.settings.error_rate;
  }

  /** Takes one of the armed `order_version_mismatch` refusals, if any are left. */
  takeVersionMismatch(): boolean {
    if (this.settings.version_mismatch_next <= 0) return false;
    this.settings.version_mismatch_next--;
    this.counters.versionMismatches++;
    return true;
  }

  dropResponse(): boolean {
    return this.settings.accept_then_timeout_rate > 0 && this.rng.next() < this.settings.accept_then_timeout_rate;
  }

  /**
   * Counts a request against every window it falls in, all or nothing. Returns the seconds to wait
   * when one is full; a refused request is not counted, so Retry-After is exact.
   */
  rateLimit(method: string, path: string, caller: string): { bucket: string; retryAfterS: number } | undefined {
    const s = this.settings;
    if (!s.rate_limits) return undefined;
    const now = this.clock();
    this.sweep(now);
    const hits: SlidingLog[] = [];
    let refused: { bucket: string; retryAfterS: number } | undefined;
    for (const rule of rulesFor(method, path)) {
      for (const [max, windowMs] of rule.limits) {
        const key = `${rule.name}|${windowMs}|${caller}`;
        let log = this.logs.get(key);
        if (!log) this.logs.set(key, (log = new SlidingLog()));
        log.expire(now - windowMs);
        const limit = Math.max(1, Math.round(max * s.rate_limit_scale));
        if (log.count >= limit) {
          const wait = Math.max(1, Math.ceil(((log.oldest ?? now) + windowMs - now) / 1000));
          if (!refused || wait > refused.retryAfterS) refused = { bucket: rule.name, retryAfterS: wait };
        }
        hits.push(log);
      }
    }
    if (refused) return refused;
    for (const log of hits) log.push(now);
    return undefined;
  }

  /** Drops idle callers' logs so many distinct callers cannot grow memory without bound. */
  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_MS) return;
    this.lastSweep = now;
    for (const [key, log] of this.logs) {
      const newest = log.newest;
      if (newest === undefined || newest <= now - M10) this.logs.delete(key);
    }
  }

  /** Keeps a response from ever arriving: holds the socket, then destroys it. */
  hold(socket: Socket): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        socket,
        timer: setTimeout(() => finish(), ACCEPT_TIMEOUT_HOLD_MS),
        done: () => finish(),
      };
      const finish = () => {
        if (!this.held.delete(entry)) return;
        clearTimeout(entry.timer);
        socket.destroy();
        resolve();
      };
      this.held.add(entry);
      socket.once('close', finish);
    });
  }

  /** Ends every held socket (server shutdown must not wait for them). */
  releaseAll(): void {
    for (const h of [...this.held]) h.done();
  }
}

// ------------------------------------------------------------------ registry for the lead and tests

const controllers = new WeakMap<object, FaultController>();

/** The fault controller of a server, looked up by its Fastify instance or its Exchange. */
export function faultController(key: object): FaultController | undefined {
  return controllers.get(key);
}

/** Fault counters for the status message (empty when the server has none). */
export function faultMetrics(key: object): Record<string, number> {
  return controllers.get(key)?.metrics() ?? {};
}

// ------------------------------------------------------------------ Fastify wiring

const ADMIN_SECRET_KEY = 'POLYBOT_SIM_ADMIN_SECRET';

function adminSecret(config: unknown): string | undefined {
  if (!config || typeof config !== 'object') return undefined;
  const v = (config as Record<string, unknown>)[ADMIN_SECRET_KEY];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Compares hashes so neither the content nor the length of the secret leaks through timing. */
function secretMatches(given: unknown, secret: string): boolean {
  if (typeof given !== 'string') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(secret).digest();
  return timingSafeEqual(a, b);
}

const pathOf = (url: string) => {
  const p = url.split('?')[0] ?? '/';
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
};

/** Faults apply to the venue's REST surface only: not to /admin, not to WebSocket upgrades. */
const isFaultable = (req: FastifyRequest, path: string) => !path.startsWith('/admin/') && path !== '/admin' && !req.ws;

const isPostOnly = (item: unknown) => typeof item === 'object' && item !== null && (item as Record<string, unknown>).postOnly === true;

function callerOf(req: FastifyRequest): string {
  const key = req.headers.poly_api_key;
  const k = Array.isArray(key) ? key[0] : key;
  return k ? `key:${k}` : `ip:${req.ip}`;
}

/** Faults on demand (admin routes, latency, 425/429/5xx windows, WebSocket drops and freezes). */
export function registerFaults(app: FastifyInstance, deps: ServerDeps): FaultController {
  const { log } = deps;
  const seed = (deps.config as { POLYBOT_SIM_SEED?: number } | undefined)?.POLYBOT_SIM_SEED ?? 0;
  const ctl = new FaultController(seed, deps.hub);
  controllers.set(app, ctl);
  controllers.set(deps.exchange, ctl);

  app.addHook('onRequest', async (req, reply) => {
    const path = pathOf(req.url);
    if (!isFaultable(req, path)) return;
    const delay = ctl.delayMs();
    if (delay > 0) {
      ctl.counters.requestsDelayed++;
      await new Promise((r) => setTimeout(r, delay));
    }
    const limited = ctl.rateLimit(req.method, path, callerOf(req));
    if (limited) {
      ctl.counters.rateLimited++;
      return reply.code(429).header('retry-after', String(limited.retryAfterS)).send({ error: ERR_RATE_LIMIT });
    }
    if (ctl.injectError()) {
      ctl.counters.errorsInjected++;
      return reply.code(500).send({ error: ERR_INTERNAL });
    }
    const route = `${req.method} ${path}`;
    const place = ORDER_PLACE.has(route);
    if (!place && !ORDER_CANCEL.has(route)) return;
    const phase = ctl.phase();
    if (phase === 'too_early') {
      ctl.counters.tooEarly++;
      return reply.code(425).send({ error: ERR_TOO_EARLY });
    }
    if (phase === 'cancel_only' && place) {
      ctl.counters.cancelOnlyRejected++;
      return reply.code(503).send({ error: ERR_CANCEL_ONLY });
    }
    if (route === 'POST /order' && ctl.takeVersionMismatch()) return reply.code(400).send({ error: ERR_ORDER_VERSION_MISMATCH });
  });

  // Post-only mode needs the parsed body, so it runs after the 425 check.
  app.addHook('preHandler', async (req, reply) => {
    if (req.method !== 'POST') return;
    const path = pathOf(req.url);
    if (!isFaultable(req, path) || !ORDER_PLACE.has(`POST ${path}`) || ctl.phase() !== 'post_only') return;
    const body: unknown = req.body;
    // A batch passes only if every order in it is post-only (the venue's batches are all-or-nothing).
    const ok = Array.isArray(body) ? body.length > 0 && body.every(isPostOnly) : isPostOnly(body);
    if (ok) return;
    ctl.counters.postOnlyRejected++;
    return reply.code(400).send({ error: ERR_POST_ONLY });
  });

  // Accept-then-timeout: the order is already placed when onSend runs; its answer never arrives.
  // Only accepted orders qualify, so every lost answer hides a live order (the T2 ambiguity).
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.method !== 'POST' || pathOf(req.url) !== '/order' || reply.statusCode >= 300) return payload;
    if (typeof payload !== 'string' || !ACCEPTED.test(payload) || !ctl.dropResponse()) return payload;
    ctl.counters.timeouts++;
    await ctl.hold(req.raw.socket);
    return payload;
  });

  app.addHook('preClose', async () => ctl.releaseAll());

  const secret = adminSecret(deps.config);
  if (secret) registerAdminRoutes(app, deps, ctl, secret);
  else log.debug('fault admin routes off (no POLYBOT_SIM_ADMIN_SECRET)');
  return ctl;
}

function registerAdminRoutes(app: FastifyInstance, deps: ServerDeps, ctl: FaultController, secret: string): void {
  const { log } = deps;
  const auth = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!secretMatches(req.headers['x-admin-secret'], secret)) return reply.code(401).send({ error: 'invalid admin secret' });
  };
  const bad = (reply: FastifyReply, errs: Iterable<{ instancePath: string; message: string }>) => {
    const e = [...errs][0];
    return reply.code(400).send({ error: `invalid body${e ? `: ${e.instancePath || '/'} ${e.message}` : ''}` });
  };

  app.get('/admin/faults', { onRequest: auth }, async () => ctl.view());

  app.post('/admin/faults', { onRequest: auth }, async (req, reply) => {
    const body: unknown = req.body ?? {};
    if (!checkUpdate.Check(body)) return bad(reply, checkUpdate.Errors(body));
    ctl.update(body);
    log.info({ faults: body }, 'faults set');
    return ctl.view();
  });

  app.post('/admin/faults/reset', { onRequest: auth }, async () => {
    ctl.reset();
    log.info('faults reset');
    return ctl.view();
  });

  app.post('/admin/ws/drop', { onRequest: auth }, async () => {
    const dropped = ctl.dropWs();
    log.info({ dropped }, 'market ws connections dropped');
    return { dropped };
  });

  app.post('/admin/ws/freeze', { onRequest: auth }, async (req, reply) => {
    const body: unknown = req.body;
    if (!checkFreeze.Check(body)) return bad(reply, checkFreeze.Errors(body));
    const frozen = ctl.freezeWs(body.seconds);
    log.info({ frozen, seconds: body.seconds }, 'market ws connections frozen');
    return { frozen, seconds: body.seconds };
  });

  app.post('/admin/fund', { onRequest: auth }, async (req, reply) => {
    const body: unknown = req.body;
    if (!checkFund.Check(body)) return bad(reply, checkFund.Errors(body));
    // `fund` is added to Exchange by another change; until then the route says so.
    const ex = deps.exchange as unknown as { fund?: (address: string, amountMicros: bigint) => unknown };
    if (typeof ex.fund !== 'function') return reply.code(501).send({ error: 'funding is not supported by this exchange' });
    let micros: bigint;
    try {
      micros = toMicros(body.amount);
    } catch {
      return reply.code(400).send({ error: 'invalid body: /amount must be a decimal amount' });
    }
    if (micros <= 0n) return reply.code(400).send({ error: 'invalid body: /amount must be positive' });
    ex.fund(body.address, micros);
    log.info({ address: body.address, amount: String(body.amount) }, 'account funded');
    return { funded: body.address, amount: String(body.amount) };
  });
}
