/**
 * What the executor wraps around every venue call: pacing (rate-limit.ts), retries for calls that
 * are safe to repeat, a circuit breaker per endpoint class, and the venue's trading modes
 * (425 matching-engine restart → back-off → post-only window; 503 cancel-only).
 *
 * The contract the executor relies on (brief §6.6–6.7):
 *  - A `GateError` always means the gate sent nothing *on that attempt*; `attempts` says how many
 *    earlier attempts did reach the network (always 0 for a call not marked idempotent).
 *  - Only calls marked `idempotent` are ever repeated: GETs, cancels, and re-posting the SAME signed
 *    order (the venue answers "Duplicated"). A new signature is a new order and is never retried here.
 *  - The gate never sends into a window it knows is closed (429 pause, 425 back-off, post-only,
 *    cancel-only, open breaker); it refuses instead, with a reason and when to come back.
 *
 * Independent of any HTTP library: `fn` returns whatever it likes, and a classifier (the default
 * understands fetch `Response`s, `{ status, body, headers }` and `PostOrderOutcome`) says what it means.
 */
import type { PostOrderOutcome } from './clob-trading.js';
import { RateLimitError, systemClock, type Clock, type RateLimiter, type TimerHandle } from './rate-limit.js';

// ------------------------------------------------------------------ small pieces

/**
 * Retry-After as milliseconds from `nowMs`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable; a date in the past means 0.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.ceil(Number(v) * 1000);
  // Bare numbers that are not delay-seconds (negative, exponent) are not dates either.
  if (/^[-+]?[\d.eE+-]+$/.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - nowMs);
}

export interface BackoffPolicy {
  /** First retry's ceiling. */
  baseMs: number;
  /** Ceiling of any one delay. */
  maxMs: number;
}

/**
 * "Full jitter" (AWS architecture blog): uniform in [0, min(max, base·2^(n-1))]. Spreads retries of
 * many callers that failed together, which fixed exponential delays would keep in lock-step.
 */
export function fullJitterDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exp = Math.min(30, Math.max(0, attempt - 1));
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exp);
  return Math.floor(random() * (ceiling + 1));
}

/** Resolves after `ms` on `clock`; rejects with the signal's reason when aborted. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const handle: TimerHandle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions extends Partial<BackoffPolicy> {
  /** Must be literally `true`: the type keeps non-idempotent operations out. */
  idempotent: true;
  /** Attempts in all, the first included. Default 4. */
  maxAttempts?: number;
  /** Whether a thrown error is worth another attempt; default: every error. */
  retryOn?: (err: unknown) => boolean;
  clock?: Clock;
  random?: () => number;
  signal?: AbortSignal;
}

/**
 * Retries an operation that is safe to repeat, with full-jitter exponential back-off.
 * For venue calls prefer `VenueGate.run`, which also honours pauses, modes and the breaker.
 */
export async function retryIdempotent<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  if (opts.idempotent !== true) throw new TypeError('retryIdempotent: only operations marked idempotent may be retried');
  const clock = opts.clock ?? systemClock;
  const policy = { baseMs: opts.baseMs ?? 250, maxMs: opts.maxMs ?? 8000 };
  const max = opts.maxAttempts ?? 4;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (opts.signal?.aborted || attempt >= max || (opts.retryOn && !opts.retryOn(err))) throw err;
    }
    await sleep(clock, fullJitterDelay(attempt, policy, opts.random), opts.signal);
  }
}

// ------------------------------------------------------------------ circuit breaker

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  clock?: Clock;
  /** Opens after this many failures in a row. Default 5. */
  consecutiveFailures?: number;
  /** ...or when this share of the calls within `windowMs` failed. Default 0.5. */
  failureRate?: number;
  /** ...counted only once the window holds at least this many calls. Default 20. */
  minCalls?: number;
  windowMs?: number;
  /** Time open before one probe is let through. Default 10 s. */
  coolDownMs?: number;
  /** Probes allowed at once while half-open. Default 1. */
  halfOpenProbes?: number;
  onStateChange?: (from: BreakerState, to: BreakerState, why: string) => void;
}

export interface BreakerPermit {
  readonly probe: boolean;
  /** Which closed/open cycle issued it: answers from an older cycle do not move the state. */
  readonly generation: number;
}

export type BreakerResult = 'success' | 'failure' | 'ignore';

export interface BreakerSnapshot {
  state: BreakerState;
  consecutiveFailures: number;
  callsInWindow: number;
  failuresInWindow: number;
  openedAt?: number;
  /** When an open breaker lets a probe through. */
  retryAt?: number;
  opened: number;
}

/** closed → open (N consecutive failures or a failure rate over a window) → half-open probe after a cool-down. */
export class CircuitBreaker {
  private readonly clock: Clock;
  private readonly o: Required<Omit<CircuitBreakerOptions, 'onStateChange' | 'clock'>>;
  private st: BreakerState = 'closed';
  private generation = 0;
  private consecutive = 0;
  private openedAt = 0;
  private probes = 0;
  private opened = 0;
  // (time, failed) pairs inside the rate window, oldest first.
  private log: { t: number; failed: boolean }[] = [];
  private failures = 0;

  constructor(private readonly opts: CircuitBreakerOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.o = {
      consecutiveFailures: opts.consecutiveFailures ?? 5,
      failureRate: opts.failureRate ?? 0.5,
      minCalls: opts.minCalls ?? 20,
      windowMs: opts.windowMs ?? 30_000,
      coolDownMs: opts.coolDownMs ?? 10_000,
      halfOpenProbes: opts.halfOpenProbes ?? 1,
    };
  }

  state(): BreakerState {
    if (this.st === 'open' && this.clock.now() >= this.openedAt + this.o.coolDownMs) this.transition('half_open', 'cool-down over');
    return this.st;
  }

  /** A permit to call, or why not and when to come back. */
  tryAcquire(): { ok: true; permit: BreakerPermit } | { ok: false; reason: string; retryAt: number } {
    const s = this.state();
    if (s === 'closed') return { ok: true, permit: { probe: false, generation: this.generation } };
    if (s === 'open') {
      const retryAt = this.openedAt + this.o.coolDownMs;
      return { ok: false, reason: `circuit open since ${new Date(this.openedAt).toISOString()} after repeated failures`, retryAt };
    }
    if (this.probes >= this.o.halfOpenProbes) {
      // The probe's answer decides; until then, come back shortly.
      return { ok: false, reason: 'circuit half-open: a probe is in flight', retryAt: this.clock.now() + Math.min(1000, this.o.coolDownMs) };
    }
    this.probes++;
    return { ok: true, permit: { probe: true, generation: this.generation } };
  }

  record(permit: BreakerPermit, result: BreakerResult): void {
    if (permit.probe && permit.generation === this.generation && this.probes > 0) this.probes--;
    if (result === 'ignore' || permit.generation !== this.generation) return;
    const now = this.clock.now();
    if (this.st === 'half_open') {
      if (!permit.probe) return;
      if (result === 'success') this.transition('closed', 'probe succeeded');
      else this.trip(now, 'probe failed');
      return;
    }
    if (this.st === 'open') return;
    this.prune(now);
    this.log.push({ t: now, failed: result === 'failure' });
    if (result === 'failure') {
      this.failures++;
      this.consecutive++;
    } else this.consecutive = 0;
    if (this.consecutive >= this.o.consecutiveFailures) this.trip(now, `${this.consecutive} consecutive failures`);
    else if (this.log.length >= this.o.minCalls && this.failures >= this.o.failureRate * this.log.length) {
      this.trip(now, `${this.failures}/${this.log.length} calls failed within ${this.o.windowMs} ms`);
    }
  }

  snapshot(): BreakerSnapshot {
    const state = this.state();
    this.prune(this.clock.now());
    return {
      state,
      consecutiveFailures: this.consecutive,
      callsInWindow: this.log.length,
      failuresInWindow: this.failures,
      opened: this.opened,
      ...(state === 'closed' ? {} : { openedAt: this.openedAt }),
      ...(state === 'open' ? { retryAt: this.openedAt + this.o.coolDownMs } : {}),
    };
  }

  private trip(now: number, why: string): void {
    this.openedAt = now;
    this.opened++;
    this.transition('open', why);
  }

  private transition(to: BreakerState, why: string): void {
    const from = this.st;
    this.st = to;
    // A new cycle: answers to permits handed out before it must not move the new state.
    this.generation++;
    this.probes = 0;
    if (to === 'closed') {
      this.consecutive = 0;
      this.log = [];
      this.failures = 0;
    }
    if (from !== to) this.opts.onStateChange?.(from, to, why);
  }

  private prune(now: number): void {
    const edge = now - this.o.windowMs;
    let i = 0;
    while (i < this.log.length && this.log[i]!.t <= edge) {
      if (this.log[i]!.failed) this.failures--;
      i++;
    }
    if (i > 0) this.log.splice(0, i);
  }
}

// ------------------------------------------------------------------ venue modes

export type VenueMode = 'normal' | 'backoff' | 'post_only' | 'cancel_only';
/** `order` = a taker-capable order; `post_only_order` = `postOnly: true`; `read` = everything that is not an order endpoint. */
export type CallKind = 'order' | 'post_only_order' | 'cancel' | 'read';

export type Permission = { allowed: true } | { allowed: false; reason: string; retryAt?: number };

export interface VenueModeOptions {
  clock?: Clock;
  /** First back-off after a 425, doubled per further 425 (docs: 1–2 s doubling, capped at 30 s). */
  tooEarlyBaseMs?: number;
  tooEarlyMaxMs?: number;
  /** Post-only window after the engine is back (docs trading/matching-engine: 2 minutes). */
  postOnlyMs?: number;
  /** How long a 503 cancel-only answer keeps new orders locally refused before one is tried again. */
  cancelOnlyMs?: number;
  onModeChange?: (from: VenueMode, to: VenueMode, reason: string) => void;
}

export interface VenueModeSnapshot {
  mode: VenueMode;
  reason: string;
  /** When the current mode ends, if known. */
  until?: number;
  tooEarlyStreak: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The venue's trading mode as seen from its answers. After a 425 the engine is restarting: order
 * and cancel calls back off (doubling). When the back-off ends we cannot know whether the engine is
 * back, so exactly one order-endpoint call (post-only or cancel) is let through as a probe; a
 * non-425 answer starts the post-only window, another 425 the next, longer back-off. That keeps a
 * restart from turning into an order storm (one call per back-off step).
 */
export class VenueModeTracker {
  private readonly clock: Clock;
  private readonly base: number;
  private readonly max: number;
  private readonly postOnlyMs: number;
  private readonly cancelOnlyMs: number;
  private streak = 0;
  private backoffUntil = 0;
  /** A 425 was seen and no order endpoint has answered otherwise since. */
  private restartPending = false;
  private probing = false;
  private postOnlyUntil = 0;
  private cancelOnlyUntil = 0;
  private cancelOnlyReason = '';
  private last: VenueMode = 'normal';

  constructor(private readonly opts: VenueModeOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.base = opts.tooEarlyBaseMs ?? 1000;
    this.max = opts.tooEarlyMaxMs ?? 30_000;
    this.postOnlyMs = opts.postOnlyMs ?? 120_000;
    this.cancelOnlyMs = opts.cancelOnlyMs ?? 30_000;
  }

  mode(): VenueMode {
    return this.snapshot().mode;
  }

  snapshot(): VenueModeSnapshot {
    const now = this.clock.now();
    // Nobody probed for a whole post-only window: assume the restart is long over.
    if (this.restartPending && !this.probing && now >= this.backoffUntil + this.postOnlyMs) this.restartPending = false;
    let s: VenueModeSnapshot;
    if (now < this.backoffUntil) {
      s = { mode: 'backoff', reason: `matching engine restarting (HTTP 425): backing off until ${iso(this.backoffUntil)}`, until: this.backoffUntil, tooEarlyStreak: this.streak };
    } else if (now < this.cancelOnlyUntil) {
      s = { mode: 'cancel_only', reason: `${this.cancelOnlyReason} (HTTP 503): only cancels until ${iso(this.cancelOnlyUntil)}`, until: this.cancelOnlyUntil, tooEarlyStreak: this.streak };
    } else if (this.restartPending) {
      s = { mode: 'post_only', reason: 'matching engine restart: waiting for the first answer, then a post-only window', tooEarlyStreak: this.streak };
    } else if (now < this.postOnlyUntil) {
      s = { mode: 'post_only', reason: `post-only window after a matching-engine restart until ${iso(this.postOnlyUntil)}`, until: this.postOnlyUntil, tooEarlyStreak: this.streak };
    } else {
      s = { mode: 'normal', reason: 'normal trading', tooEarlyStreak: this.streak };
    }
    if (s.mode !== this.last) {
      const from = this.last;
      this.last = s.mode;
      this.opts.onModeChange?.(from, s.mode, s.reason);
    }
    return s;
  }

  /** Whether a call of this kind may be sent now (pure: claims nothing). */
  permits(kind: CallKind): Permission {
    const s = this.snapshot();
    if (kind === 'read') return { allowed: true };
    const no = (why: string, retryAt?: number): Permission => ({ allowed: false, reason: why, ...(retryAt === undefined ? {} : { retryAt }) });
    switch (s.mode) {
      case 'normal':
        return { allowed: true };
      case 'backoff':
        return no(s.reason, s.until);
      case 'cancel_only':
        return kind === 'cancel' ? { allowed: true } : no(s.reason, s.until);
      case 'post_only':
        if (kind === 'order') return no(`${s.reason}: only post-only orders and cancels`, s.until ?? this.clock.now() + this.base);
        if (this.restartPending && this.probing) return no('matching engine restart: a probe is in flight', this.clock.now() + this.base);
        return { allowed: true };
    }
  }

  /**
   * Like `permits`, and claims the single probe slot while a restart is unconfirmed. Call the
   * returned `done` when the answer (or failure) is in.
   */
  enter(kind: CallKind): Permission & { done?: () => void } {
    const p = this.permits(kind);
    if (!p.allowed || kind === 'read' || !this.restartPending) return p;
    this.probing = true;
    return {
      allowed: true,
      done: () => {
        this.probing = false;
      },
    };
  }

  /** HTTP 425 on any endpoint: the matching engine is restarting. */
  onTooEarly(): void {
    const now = this.clock.now();
    this.streak++;
    const delay = Math.min(this.max, this.base * 2 ** Math.min(30, this.streak - 1));
    this.backoffUntil = Math.max(this.backoffUntil, now + delay);
    this.restartPending = true;
    this.snapshot();
  }

  /** An order or cancel endpoint answered with anything but 425: the engine is up. */
  onOrderEndpointAnswer(): void {
    if (!this.restartPending) return;
    this.restartPending = false;
    this.streak = 0;
    this.postOnlyUntil = this.clock.now() + this.postOnlyMs;
    this.snapshot();
  }

  /** A non-post-only order was refused because of post-only mode we had not seen start. */
  onPostOnlyRejection(): void {
    this.restartPending = false;
    this.postOnlyUntil = Math.max(this.postOnlyUntil, this.clock.now() + this.postOnlyMs);
    this.snapshot();
  }

  /** HTTP 503 cancel-only or trading disabled. */
  onCancelOnly(reason = 'trading is cancel-only'): void {
    this.cancelOnlyReason = reason;
    this.cancelOnlyUntil = Math.max(this.cancelOnlyUntil, this.clock.now() + this.cancelOnlyMs);
    this.snapshot();
  }
}

// ------------------------------------------------------------------ classification

/** What an answer means for pacing, modes, the breaker and retries. */
export type Verdict =
  /** The venue answered normally (2xx). */
  | { type: 'ok' }
  /** A definite business answer (4xx): the venue is healthy; repeating would get the same answer. */
  | { type: 'rejected'; status?: number; reason: string }
  /** 429: pause the endpoint class. */
  | { type: 'throttled'; retryAfterMs?: number }
  /** 425: matching-engine restart. */
  | { type: 'too_early' }
  /** Refused because the venue is in post-only mode. */
  | { type: 'post_only'; reason: string }
  /** 503 cancel-only / trading disabled: new orders are refused, the order was not placed. */
  | { type: 'cancel_only'; reason: string }
  /** 5xx, timeout, network, unreadable answer: counts against the breaker; repeatable if idempotent. */
  | { type: 'failure'; reason: string; status?: number };

export type Classifier = (value: unknown, now: number) => Verdict | Promise<Verdict>;

/** The simulator's text is "...in post-only mode: only cancels and postOnly orders are accepted". */
export const POST_ONLY_MODE_PATTERN = /post[- ]?only mode|only cancels and post[- ]?only/i;
export const CANCEL_ONLY_PATTERN = /cancel[- ]only/i;
export const TRADING_DISABLED_PATTERN = /trading (is )?(currently )?disabled/i;

/** Classification by status and error text, shared by the three answer shapes. */
export function classifyStatus(status: number, text: string, retryAfterMs?: number): Verdict {
  if (status === 429) return { type: 'throttled', ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  if (status === 425) return { type: 'too_early' };
  if (status === 503 && CANCEL_ONLY_PATTERN.test(text)) return { type: 'cancel_only', reason: 'trading is cancel-only' };
  if (status === 503 && TRADING_DISABLED_PATTERN.test(text)) return { type: 'cancel_only', reason: 'trading is disabled' };
  if (status >= 400 && status < 500 && POST_ONLY_MODE_PATTERN.test(text)) return { type: 'post_only', reason: text.slice(0, 200) };
  if (status === 408 || status >= 500) return { type: 'failure', status, reason: text.slice(0, 200) || `HTTP ${status}` };
  if (status >= 400) return { type: 'rejected', status, reason: text.slice(0, 200) || `HTTP ${status}` };
  return { type: 'ok' };
}

interface HeadersLike {
  get(name: string): string | null;
}

function headerOf(h: unknown, name: string): string | null {
  if (!h || typeof h !== 'object') return null;
  if (typeof (h as HeadersLike).get === 'function') return (h as HeadersLike).get(name);
  const rec = h as Record<string, unknown>;
  const key = Object.keys(rec).find((k) => k.toLowerCase() === name);
  const v = key === undefined ? undefined : rec[key];
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : null;
}

function bodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body && typeof body === 'object') {
    const o = body as Record<string, unknown>;
    for (const k of ['error', 'errorMsg', 'error_msg', 'message']) if (typeof o[k] === 'string') return o[k] as string;
  }
  return '';
}

const isPostOrderOutcome = (v: unknown): v is PostOrderOutcome =>
  !!v && typeof v === 'object' && ['accepted', 'rejected', 'not_sent', 'ambiguous'].includes((v as { kind?: unknown }).kind as string);

/**
 * Default classifier: a `PostOrderOutcome` (clob-trading.ts), a fetch `Response` (its body is read
 * from a clone, and only for 4xx/5xx), or a plain `{ status, body?, headers? }`. Anything else is ok.
 */
export async function classifyResult(value: unknown, now: number): Promise<Verdict> {
  if (isPostOrderOutcome(value)) {
    switch (value.kind) {
      case 'accepted':
        return { type: 'ok' };
      case 'rejected':
        return classifyStatus(value.status, value.errorMsg, value.retryAfterMs);
      case 'not_sent':
        return { type: 'failure', reason: value.error };
      case 'ambiguous':
        // clob-trading reports every 5xx as ambiguous; a 503 cancel-only answer is in fact a refusal.
        if (value.status === 503) {
          const v = classifyStatus(503, value.error);
          if (v.type === 'cancel_only') return v;
        }
        return { type: 'failure', reason: value.error, ...(value.status === undefined ? {} : { status: value.status }) };
    }
  }
  if (value && typeof value === 'object' && typeof (value as { status?: unknown }).status === 'number') {
    const r = value as { status: number; headers?: unknown; body?: unknown; clone?: () => { text(): Promise<string> } };
    if (r.status < 400) return { type: 'ok' };
    const retryAfterMs = r.status === 429 ? parseRetryAfter(headerOf(r.headers, 'retry-after'), now) : undefined;
    let text = bodyText(r.body);
    if (!text && typeof r.clone === 'function' && r.status !== 429 && r.status !== 425) {
      try {
        const raw = await r.clone().text();
        try {
          text = bodyText(JSON.parse(raw)) || raw;
        } catch {
          text = raw;
        }
      } catch {
        text = '';
      }
    }
    return classifyStatus(r.status, text, retryAfterMs);
  }
  return { type: 'ok' };
}

const isRetryable = (v: Verdict) => v.type === 'throttled' || v.type === 'too_early' || v.type === 'failure';

// ------------------------------------------------------------------ the gate

export type GateErrorCode = 'refused' | 'circuit_open' | 'rate_limit' | 'aborted';

/** The gate did not send this attempt. `attempts` earlier attempts of the same call did reach the network. */
export class GateError extends Error {
  override readonly name = 'GateError';
  readonly notSent = true;
  constructor(
    readonly code: GateErrorCode,
    /** Why, without the endpoint: fit for a dead-letter or risk reason. */
    readonly reason: string,
    readonly endpoint: string,
    readonly attempts: number,
    readonly retryAt?: number,
    options?: { cause?: unknown },
  ) {
    super(`${endpoint}: ${reason}`, options);
  }
}

export interface RetryPolicy extends BackoffPolicy {
  /** Attempts in all for idempotent calls, the first included. */
  maxAttempts: number;
  /** Idempotent calls stop retrying when the next attempt could not start within this. */
  deadlineMs: number;
}

export type GateEvent =
  | { type: 'throttled'; endpoint: string; endpointClass: string; until: number }
  | { type: 'retry'; endpoint: string; attempt: number; delayMs: number; verdict: Verdict['type'] }
  | { type: 'refused'; endpoint: string; kind: CallKind; code: GateErrorCode; reason: string }
  | { type: 'mode'; from: VenueMode; to: VenueMode; reason: string }
  | { type: 'breaker'; endpointClass: string; from: BreakerState; to: BreakerState; why: string };

export interface VenueGateOptions {
  limiter: RateLimiter;
  /** Defaults to the limiter's clock: both must agree. */
  clock?: Clock;
  random?: () => number;
  retry?: Partial<RetryPolicy>;
  breaker?: Omit<CircuitBreakerOptions, 'clock' | 'onStateChange'>;
  mode?: Omit<VenueModeOptions, 'clock' | 'onModeChange'>;
  /** Pause after a 429 without a readable Retry-After. Default 1 s. */
  defaultRetryAfterMs?: number;
  classify?: Classifier;
  onEvent?: (e: GateEvent) => void;
}

export interface RunOptions<T> {
  /** Required, so every call site states it: true only if repeating the call cannot create anything new. */
  idempotent: boolean;
  /** Per-signer cost: orders in a batch, IDs in a cancel batch. Default 1. */
  cost?: number;
  signal?: AbortSignal;
  /** Longest wait for a rate-limit slot (per attempt). */
  maxWaitMs?: number;
  /** Overrides the retry deadline of this call. */
  deadlineMs?: number;
  classify?: (value: T, now: number) => Verdict | Promise<Verdict>;
}

export interface AttemptContext {
  attempt: number;
  signal?: AbortSignal;
}

export interface GateSnapshot {
  mode: VenueModeSnapshot;
  breakers: Record<string, BreakerSnapshot>;
  /** Endpoint classes paused by a 429, until when. */
  pauses: Record<string, number>;
  inFlight: number;
  counters: { calls: number; attempts: number; retries: number; refused: number; throttled: number; tooEarly: number; failures: number };
}

/**
 * One per venue (and process): `gate.run(endpoint, signer, kind, fn, { idempotent })` for every call.
 */
export class VenueGate {
  readonly limiter: RateLimiter;
  readonly clock: Clock;
  readonly modes: VenueModeTracker;
  private readonly random: () => number;
  private readonly retry: RetryPolicy;
  private readonly breakerOpts: Omit<CircuitBreakerOptions, 'clock' | 'onStateChange'>;
  private readonly breakerMap = new Map<string, CircuitBreaker>();
  private readonly defaultRetryAfterMs: number;
  private readonly classify: Classifier;
  private readonly onEvent: (e: GateEvent) => void;
  private running = 0;
  private readonly counters = { calls: 0, attempts: 0, retries: 0, refused: 0, throttled: 0, tooEarly: 0, failures: 0 };

  constructor(opts: VenueGateOptions) {
    this.limiter = opts.limiter;
    this.clock = opts.clock ?? opts.limiter.clock;
    this.random = opts.random ?? Math.random;
    this.retry = { maxAttempts: 4, baseMs: 250, maxMs: 8000, deadlineMs: 30_000, ...opts.retry };
    this.breakerOpts = opts.breaker ?? {};
    this.defaultRetryAfterMs = opts.defaultRetryAfterMs ?? 1000;
    this.classify = opts.classify ?? classifyResult;
    this.onEvent = opts.onEvent ?? (() => undefined);
    this.modes = new VenueModeTracker({ ...opts.mode, clock: this.clock, onModeChange: (from, to, reason) => this.onEvent({ type: 'mode', from, to, reason }) });
  }

  mode(): VenueMode {
    return this.modes.mode();
  }

  permits(kind: CallKind): Permission {
    return this.modes.permits(kind);
  }

  /** Calls being executed right now (admitted, not yet answered). */
  get inFlight(): number {
    return this.running;
  }

  breaker(endpoint: string): CircuitBreaker {
    const cls = this.limiter.describe(endpoint).endpointClass;
    let b = this.breakerMap.get(cls);
    if (!b) {
      b = new CircuitBreaker({
        ...this.breakerOpts,
        clock: this.clock,
        onStateChange: (from, to, why) => this.onEvent({ type: 'breaker', endpointClass: cls, from, to, why }),
      });
      this.breakerMap.set(cls, b);
    }
    return b;
  }

  snapshot(): GateSnapshot {
    const breakers: Record<string, BreakerSnapshot> = {};
    for (const [k, b] of this.breakerMap) breakers[k] = b.snapshot();
    return { mode: this.modes.snapshot(), breakers, pauses: this.limiter.activePauses(), inFlight: this.running, counters: { ...this.counters } };
  }

  /**
   * Runs one venue call under every guard. Returns `fn`'s last value (the caller interprets it:
   * a 429 that could not be retried comes back as the 429) or rethrows its last error. Throws a
   * GateError when it did not send (see the module comment).
   */
  async run<T>(endpoint: string, signer: string | undefined, kind: CallKind, fn: (ctx: AttemptContext) => Promise<T>, opts: RunOptions<T>): Promise<T> {
    if (typeof opts?.idempotent !== 'boolean') throw new TypeError('VenueGate.run: say whether the call is idempotent');
    this.counters.calls++;
    const endpointClass = this.limiter.describe(endpoint).endpointClass;
    const breaker = this.breaker(endpoint);
    const deadline = this.clock.now() + (opts.deadlineMs ?? this.retry.deadlineMs);
    const classify = opts.classify ?? (this.classify as (value: T, now: number) => Verdict | Promise<Verdict>);
    let sent = 0;
    let last: { value: T } | { error: unknown } | undefined;
    const finish = (): T => {
      if (!last) throw new Error('unreachable');
      if ('error' in last) throw last.error;
      return last.value;
    };
    const refuse = (code: GateErrorCode, reason: string, retryAt?: number, cause?: unknown): GateError => {
      this.counters.refused++;
      this.onEvent({ type: 'refused', endpoint, kind, code, reason });
      return new GateError(code, reason, endpoint, sent, retryAt, cause === undefined ? undefined : { cause });
    };

    for (;;) {
      // 1. Modes and breaker: never send into a window known to be closed. A first attempt is
      //    refused at once (the caller decides); a retry waits for the window if the deadline allows.
      const mode = this.modes.enter(kind);
      let refusal: { code: GateErrorCode; reason: string; retryAt: number | undefined } | undefined;
      let permit: BreakerPermit | undefined;
      if (!mode.allowed) refusal = { code: 'refused', reason: mode.reason, retryAt: mode.retryAt };
      else {
        const b = breaker.tryAcquire();
        if (b.ok) permit = b.permit;
        else {
          mode.done?.();
          refusal = { code: 'circuit_open', reason: b.reason, retryAt: b.retryAt };
        }
      }
      if (refusal || !permit) {
        const { code, reason, retryAt } = refusal!;
        if (sent > 0 && opts.idempotent && retryAt !== undefined && retryAt <= deadline) {
          try {
            await sleep(this.clock, retryAt - this.clock.now(), opts.signal);
          } catch (err) {
            throw refuse('aborted', 'aborted while waiting to retry', undefined, err);
          }
          continue;
        }
        if (sent > 0) return finish();
        throw refuse(code, reason, retryAt);
      }

      // 2. Pacing (and any 429 pause of the class).
      try {
        await this.limiter.acquire(endpoint, {
          ...(signer ? { signer } : {}),
          ...(opts.cost === undefined ? {} : { cost: opts.cost }),
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.maxWaitMs === undefined ? {} : { maxWaitMs: opts.maxWaitMs }),
        });
      } catch (err) {
        mode.done?.();
        breaker.record(permit, 'ignore');
        if (sent > 0 && err instanceof RateLimitError && err.code === 'timeout') return finish();
        const code: GateErrorCode = err instanceof RateLimitError && err.code === 'aborted' ? 'aborted' : 'rate_limit';
        throw refuse(code, err instanceof Error ? err.message : String(err), undefined, err);
      }

      // 3. The call itself.
      sent++;
      this.counters.attempts++;
      this.running++;
      let verdict: Verdict;
      try {
        const value = await fn({ attempt: sent, ...(opts.signal ? { signal: opts.signal } : {}) });
        last = { value };
        verdict = await classify(value, this.clock.now());
      } catch (err) {
        last = { error: err };
        verdict = { type: 'failure', reason: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
      } finally {
        this.running--;
        mode.done?.();
      }
      // The caller gave up: whatever happened is theirs to settle, never retried here.
      if (opts.signal?.aborted) {
        breaker.record(permit, 'ignore');
        return finish();
      }
      this.apply(endpoint, endpointClass, kind, verdict);
      breaker.record(permit, verdict.type === 'failure' ? 'failure' : 'success');

      // 4. Repeat only what is safe to repeat.
      if (!opts.idempotent || !isRetryable(verdict) || sent >= this.retry.maxAttempts) return finish();
      const delay = fullJitterDelay(sent, this.retry, this.random);
      if (this.clock.now() + delay > deadline) return finish();
      this.counters.retries++;
      this.onEvent({ type: 'retry', endpoint, attempt: sent + 1, delayMs: delay, verdict: verdict.type });
      try {
        await sleep(this.clock, delay, opts.signal);
      } catch (err) {
        throw refuse('aborted', 'aborted while waiting to retry', undefined, err);
      }
    }
  }

  /** Feeds an answer into pauses and modes. */
  private apply(endpoint: string, endpointClass: string, kind: CallKind, v: Verdict): void {
    const now = this.clock.now();
    switch (v.type) {
      case 'throttled': {
        this.counters.throttled++;
        const until = now + (v.retryAfterMs ?? this.defaultRetryAfterMs);
        this.limiter.pause(endpoint, until);
        this.onEvent({ type: 'throttled', endpoint, endpointClass, until });
        // Cloudflare answered, not the matching engine: no news about a restart.
        return;
      }
      case 'too_early':
        this.counters.tooEarly++;
        this.modes.onTooEarly();
        return;
      case 'post_only':
        this.modes.onPostOnlyRejection();
        break;
      case 'cancel_only':
        this.modes.onCancelOnly(v.reason);
        break;
      case 'failure':
        this.counters.failures++;
        // A failure says nothing about the engine: it may never have seen the call.
        return;
      default:
        break;
    }
    if (kind !== 'read') this.modes.onOrderEndpointAnswer();
  }
}
