/**
 * Client-side pacing for every venue call: we stay under the venue's limits instead of
 * discovering them through 429s, because on Polymarket a 429 on `POST /order` is a lost
 * trading opportunity and Cloudflare may start delaying (not refusing) requests first,
 * which turns throttling into ambiguous timeouts.
 *
 * Two layers, as the venue has them (PROTOCOL.md "Rate limits", l.178–183; RELIABILITY-NOTES §3):
 *  - Cloudflare limits per endpoint class, the CLOB family and the whole API, as sliding
 *    windows counted in *requests*. They are modelled as sliding-window logs, not as refilling
 *    token buckets: a bucket of capacity C refilling C per window admits up to 2·C inside one
 *    window, which is exactly what a sliding window refuses.
 *  - Per-signer token buckets (one for orders, one for cancels) counted in *orders*: a batch
 *    costs one token per entry and is admitted all-or-nothing, `cancel-all` costs 1 up front
 *    plus one per cancelled order once that number is known (`charge`).
 *
 * Everything runs on an injectable clock so the timing logic is tested on a fake one.
 */

// ------------------------------------------------------------------ clock

export type TimerHandle = unknown;

/** Time and timers, injectable so that pacing and back-off can be tested without waiting. */
export interface Clock {
  /** Milliseconds; only differences matter, but HTTP-date Retry-After values assume epoch ms. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

// setTimeout overflows past 2^31-1 ms and fires at once; long waits are re-armed by their owners.
const MAX_TIMER_MS = 2_147_483_647;

/** Epoch-based but monotonic: a wall clock stepped back by NTP must not reopen a full window. */
export const systemClock: Clock = {
  now: () => Math.floor(performance.timeOrigin + performance.now()),
  setTimeout: (fn, ms) => setTimeout(fn, Math.min(MAX_TIMER_MS, Math.max(0, ms))),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

const flushMacrotask = () => new Promise<void>((r) => setImmediate(r));

/**
 * A fake clock for tests (here and in the executor's): time moves only when told, timers fire
 * in time order (ties in creation order). The async variants let promise chains started by a
 * timer run before the next timer fires, as they would on a real clock.
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private heap: ManualTimer[] = [];
  private live = 0;

  constructor(start = 1_800_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(timer);
    this.live++;
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    const timer = handle as ManualTimer | undefined;
    if (!timer || timer.cancelled) return;
    timer.cancelled = true;
    this.live--;
  }

  /** Timers not yet fired or cleared. */
  get pending(): number {
    return this.live;
  }

  /** When the next live timer is due, if any. */
  nextAt(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.at;
  }

  /** Moves time forward by `ms`, firing due timers synchronously. */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      const next = this.popDue(target);
      if (!next) break;
      next.fn();
    }
    this.t = Math.max(this.t, target);
  }

  /** Like `advance`, but lets microtasks (and one turn of the event loop) run after each timer. */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.t + ms;
    await flushMacrotask();
    for (;;) {
      const next = this.popDue(target);
      if (!next) break;
      next.fn();
      await flushMacrotask();
    }
    this.t = Math.max(this.t, target);
    await flushMacrotask();
  }

  /**
   * Fires timers one at a time until `promise` settles. `idle()` says whether it is safe to move
   * time (e.g. no real I/O in flight); while it is false only the event loop runs.
   * Rejects when nothing is pending, since the promise could then never settle.
   */
  async runUntilSettled<T>(promise: Promise<T>, opts: { idle?: () => boolean; maxMs?: number } = {}): Promise<T> {
    let settled = false;
    const watched = promise.finally(() => {
      settled = true;
    });
    watched.catch(() => undefined);
    const limit = this.t + (opts.maxMs ?? 86_400_000);
    for (;;) {
      await flushMacrotask();
      if (settled) return watched;
      if (opts.idle && !opts.idle()) continue;
      const next = this.popDue(limit);
      if (!next) {
        if (this.live === 0) throw new Error('ManualClock: the promise is waiting but no timer is pending');
        throw new Error(`ManualClock: not settled within ${opts.maxMs ?? 86_400_000} ms of fake time`);
      }
      next.fn();
    }
  }

  private popDue(target: number): ManualTimer | undefined {
    this.dropCancelled();
    const top = this.heap[0];
    if (!top || top.at > target) return undefined;
    this.pop();
    this.live--;
    this.t = Math.max(this.t, top.at);
    return top;
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
  }

  private less(a: ManualTimer, b: ManualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(x: ManualTimer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

// ------------------------------------------------------------------ published limits

export interface WindowLimit {
  /** Requests admitted in any window of `windowMs`. */
  max: number;
  windowMs: number;
}

export type VenueHost = 'clob' | 'gamma';
export type SignerBucketKind = 'order' | 'cancel';

export interface EndpointRule {
  /** Endpoint class: bucket name, metric label and the unit a 429 pauses. */
  name: string;
  /** Omitted = any method (the venue lists read paths without one). */
  method?: string;
  /** Exact paths, or prefixes when they end with `/`. */
  paths: readonly string[];
  limits: readonly WindowLimit[];
  /** Which per-signer bucket the endpoint draws from, if any. */
  signerBucket?: SignerBucketKind;
  /** Where the figure comes from. */
  source: string;
}

const S10 = 10_000;
const M10 = 600_000;
const w = (max: number, windowMs = S10): WindowLimit => ({ max, windowMs });
const P = 'PROTOCOL.md';

/**
 * The CLOB's Cloudflare limits. A request counts against every rule it matches, then the CLOB
 * family limit and the global one. Each counts one per HTTP request: batches are one request
 * here and N tokens in the signer bucket.
 */
export const CLOB_RATE_LIMITS: readonly EndpointRule[] = [
  { name: 'POST /order', method: 'POST', paths: ['/order'], limits: [w(3500), w(36_000, M10)], signerBucket: 'order', source: `${P} l.181` },
  { name: 'DELETE /order', method: 'DELETE', paths: ['/order'], limits: [w(3000), w(30_000, M10)], signerBucket: 'cancel', source: `${P} l.181` },
  { name: 'POST /orders', method: 'POST', paths: ['/orders'], limits: [w(1000), w(15_000, M10)], signerBucket: 'order', source: `${P} l.182` },
  { name: 'DELETE /orders', method: 'DELETE', paths: ['/orders'], limits: [w(1000), w(15_000, M10)], signerBucket: 'cancel', source: `${P} l.182` },
  { name: 'DELETE /cancel-all', method: 'DELETE', paths: ['/cancel-all'], limits: [w(250), w(6000, M10)], signerBucket: 'cancel', source: `${P} l.182` },
  {
    name: 'DELETE /cancel-market-orders',
    method: 'DELETE',
    paths: ['/cancel-market-orders'],
    limits: [w(1000), w(1500, M10)],
    signerBucket: 'cancel',
    source: `${P} l.183`,
  },
  { name: '/book', paths: ['/book'], limits: [w(1500)], source: `${P} l.179` },
  { name: '/books', paths: ['/books'], limits: [w(500)], source: `${P} l.179` },
  { name: '/price', paths: ['/price'], limits: [w(1500)], source: `${P} l.179` },
  { name: '/prices', paths: ['/prices'], limits: [w(500)], source: `${P} l.179` },
  { name: '/midpoint', paths: ['/midpoint'], limits: [w(1500)], source: `${P} l.179` },
  { name: '/midpoints', paths: ['/midpoints'], limits: [w(500)], source: `${P} l.180` },
  { name: '/prices-history', paths: ['/prices-history'], limits: [w(1000)], source: `${P} l.180` },
  { name: '/tick-size', paths: ['/tick-size'], limits: [w(200)], source: `${P} l.180` },
  { name: '/data/orders', paths: ['/data/orders'], limits: [w(500)], source: `${P} l.180` },
  { name: '/data/trades', paths: ['/data/trades'], limits: [w(500)], source: `${P} l.180` },
  // "ledger" is not itemised in PROTOCOL.md; the simulator groups the order/trade ledger reads under it.
  { name: 'ledger', paths: ['/data/orders', '/data/order/', '/data/trades', '/notifications'], limits: [w(900)], source: `${P} l.180` },
  { name: 'GET /balance-allowance', method: 'GET', paths: ['/balance-allowance'], limits: [w(200)], source: `${P} l.181` },
  { name: 'UPDATE /balance-allowance', paths: ['/balance-allowance/update'], limits: [w(50)], source: `${P} l.181` },
  { name: 'API keys', paths: ['/auth/'], limits: [w(100)], source: `${P} l.180–181` },
];

export const GAMMA_RATE_LIMITS: readonly EndpointRule[] = [
  { name: 'Gamma /markets', paths: ['/markets', '/markets/'], limits: [w(300)], source: `${P} l.183` },
  { name: 'Gamma /events', paths: ['/events', '/events/'], limits: [w(500)], source: `${P} l.183` },
];

/** Family limits every request of a host counts against. */
export const FAMILY_LIMITS: Readonly<Record<VenueHost, EndpointRule>> = {
  clob: { name: 'CLOB general', paths: [], limits: [w(9000)], source: `${P} l.179` },
  gamma: { name: 'Gamma general', paths: [], limits: [w(4000)], source: `${P} l.183` },
};

/** The venue-wide limit ("general"), over both hosts. */
export const GLOBAL_LIMIT: EndpointRule = { name: 'general', paths: [], limits: [w(15_000)], source: `${P} l.179` };

export interface TokenBucketLimit {
  /** Refill, tokens per second (resolution 0.001). */
  ratePerS: number;
  /** Capacity: the largest cost ever admissible at once. */
  burst: number;
  /** Whether after-the-fact charges (cancel-all) may drive the balance below zero. */
  negativeBalance: boolean;
}

export interface SignerTier {
  order: TokenBucketLimit;
  cancel: TokenBucketLimit;
}

export type SignerTierName = 'standard' | 'copper' | 'bronze' | 'silver' | 'gold' | 'platinum' | 'diamond' | 'elite';

const tier = (orderRate: number, orderBurst: number, cancelRate: number, cancelBurst: number, negativeBalance: boolean): SignerTier => ({
  order: { ratePerS: orderRate, burst: orderBurst, negativeBalance },
  cancel: { ratePerS: cancelRate, burst: cancelBurst, negativeBalance },
});

/**
 * Per-signer buckets by volume tier. Not in PROTOCOL.md: from docs.polymarket.com
 * api-reference/trading-rate-limits (fetched 2026-08-05, as transcribed by polyoxide
 * docs/specs/clob/trading-rate-limits.md). Until the tier is known (`Poly-RateLimit-Tier`,
 * `GET /v1/user/rate-limit-tier`) assume `standard`, the tightest.
 */
export const SIGNER_TIERS: Readonly<Record<SignerTierName, SignerTier>> = {
  standard: tier(40, 60, 80, 120, true),
  copper: tier(60, 90, 120, 180, true),
  bronze: tier(80, 120, 160, 240, true),
  silver: tier(200, 300, 400, 600, true),
  gold: tier(400, 600, 800, 1200, true),
  platinum: tier(450, 675, 900, 1350, false),
  diamond: tier(525, 787, 1050, 1575, false),
  elite: tier(600, 900, 1200, 1800, false),
};

// ------------------------------------------------------------------ buckets

/** One constraint a request must pass. Costs are whole tokens; times are clock ms. */
interface Bucket {
  readonly name: string;
  /** How long until `cost` fits, 0 if now. */
  waitFor(cost: number, now: number): number;
  take(cost: number, now: number): void;
  capacity(): number;
}

/** Exact sliding window: an admission at t counts until t + window (the venue's and the simulator's semantics). */
class WindowBucket implements Bucket {
  private times: number[] = [];
  private counts: number[] = [];
  private head = 0;
  private used = 0;

  constructor(
    readonly name: string,
    readonly max: number,
    readonly windowMs: number,
  ) {}

  capacity(): number {
    return this.max;
  }

  usage(now: number): number {
    this.expire(now);
    return this.used;
  }

  waitFor(cost: number, now: number): number {
    this.expire(now);
    let excess = this.used + cost - this.max;
    if (excess <= 0) return 0;
    for (let i = this.head; i < this.times.length; i++) {
      excess -= this.counts[i]!;
      if (excess <= 0) return this.times[i]! + this.windowMs - now;
    }
    return Number.POSITIVE_INFINITY;
  }

  take(cost: number, now: number): void {
    const last = this.times.length - 1;
    if (last >= this.head && this.times[last] === now) this.counts[last]! += cost;
    else {
      this.times.push(now);
      this.counts.push(cost);
    }
    this.used += cost;
  }

  private expire(now: number): void {
    const edge = now - this.windowMs;
    while (this.head < this.times.length && this.times[this.head]! <= edge) {
      this.used -= this.counts[this.head]!;
      this.head++;
    }
    // Compact now and then so a long-running process does not keep every admission.
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.counts = this.counts.slice(this.head);
      this.head = 0;
    }
  }
}

// Token balances are integers in micro-tokens and rates integers in milli-tokens per second, so
// one millisecond of refill is exactly `rate` micro-tokens: no float ever accumulates error.
const MICRO = 1_000_000;

class TokenBucket implements Bucket {
  private level = 0;
  private last: number;
  private rateMilli = 1;
  private capMicro = MICRO;
  private negativeBalance = true;

  constructor(
    readonly name: string,
    limit: ScaledTokenLimit,
    now: number,
  ) {
    this.last = now;
    this.configure(limit, now);
    this.level = this.capMicro;
  }

  configure(limit: ScaledTokenLimit, now: number): void {
    // Time so far refills at the old rate.
    this.refill(now);
    this.rateMilli = limit.rateMilliPerS;
    this.capMicro = limit.burst * MICRO;
    this.negativeBalance = limit.negativeBalance;
    if (this.level > this.capMicro) this.level = this.capMicro;
  }

  capacity(): number {
    return this.capMicro / MICRO;
  }

  get ratePerS(): number {
    return this.rateMilli / 1000;
  }

  /** Whole tokens spent from a full bucket (negative balances count as more than capacity). */
  usage(now: number): number {
    this.refill(now);
    return Math.ceil((this.capMicro - this.level) / MICRO);
  }

  waitFor(cost: number, now: number): number {
    this.refill(now);
    const need = cost * MICRO - this.level;
    if (need <= 0) return 0;
    return Math.ceil(need / this.rateMilli);
  }

  take(cost: number, now: number): void {
    this.refill(now);
    this.level -= cost * MICRO;
  }

  charge(cost: number, now: number): void {
    this.refill(now);
    this.level -= cost * MICRO;
    if (!this.negativeBalance && this.level < 0) this.level = 0;
  }

  private refill(now: number): void {
    const elapsed = Math.floor(now - this.last);
    if (elapsed <= 0) return;
    this.last += elapsed;
    this.level = Math.min(this.capMicro, this.level + elapsed * this.rateMilli);
  }
}

/** Holds an endpoint class back after a 429 until the venue's Retry-After has passed. */
class PauseGate implements Bucket {
  until = 0;
  constructor(readonly name: string) {}
  capacity(): number {
    return Number.POSITIVE_INFINITY;
  }
  waitFor(_cost: number, now: number): number {
    return Math.max(0, this.until - now);
  }
  take(): void {}
}

// ------------------------------------------------------------------ scaling

interface ScaledTokenLimit {
  rateMilliPerS: number;
  burst: number;
  negativeBalance: boolean;
}

const PPM = 1_000_000n;

function shareToPpm(share: number, what: string): bigint {
  if (!Number.isFinite(share) || share <= 0 || share > 1) throw new RangeError(`${what} must be in (0, 1], got ${share}`);
  return BigInt(Math.round(share * 1_000_000));
}

/** floor(x · share) in exact integer arithmetic, at least `min` (a zero limit would block forever). */
function scale(x: number, ppm: bigint, min: number): number {
  return Math.max(min, Number((BigInt(Math.round(x)) * ppm) / PPM));
}

function scaleToken(l: TokenBucketLimit, ppm: bigint): ScaledTokenLimit {
  return {
    rateMilliPerS: scale(l.ratePerS * 1000, ppm, 1),
    burst: scale(l.burst, ppm, 1),
    negativeBalance: l.negativeBalance,
  };
}

// ------------------------------------------------------------------ limiter

export type RateLimitErrorCode = 'timeout' | 'aborted' | 'too_large' | 'signer_required' | 'bad_cost' | 'closed';

/** The limiter refused or gave up before sending anything: the request never left this process. */
export class RateLimitError extends Error {
  override readonly name = 'RateLimitError';
  readonly notSent = true;
  constructor(
    readonly code: RateLimitErrorCode,
    message: string,
    readonly endpoint: string,
    readonly waitedMs = 0,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface RateLimiterOptions {
  clock?: Clock;
  /** Share of the published Cloudflare limits we allow ourselves; 0.8 by default. */
  share?: number;
  /** Share of the per-signer tier; defaults to `share`. */
  signerShare?: number;
  /** Which family's rules apply; the executor talks to the CLOB. */
  host?: VenueHost;
  /** Replaces the endpoint rules of the host (e.g. for a different venue deployment). */
  rules?: readonly EndpointRule[];
  /** Per-signer buckets: a tier name, explicit limits, or false to leave them out. Default 'standard'. */
  signerTier?: SignerTierName | SignerTier | false;
  /** Longest an `acquire` may wait before it rejects; default 30 s. */
  maxWaitMs?: number;
}

export interface AcquireOptions {
  /** Signer address; required for order and cancel endpoints (they have per-signer buckets). */
  signer?: string;
  /** Orders in a batch / order IDs in a cancel batch: the per-signer cost. Default 1. */
  cost?: number;
  signal?: AbortSignal;
  maxWaitMs?: number;
}

export interface Admission {
  /** Clock time of admission. */
  at: number;
  waitedMs: number;
}

export interface EndpointInfo {
  method: string;
  path: string;
  /** The endpoint class (most specific rule, else the family): what a 429 pauses. */
  endpointClass: string;
  /** Names of every window the request counts against. */
  windows: string[];
  signerBucket?: SignerBucketKind;
}

export interface BucketUsage {
  name: string;
  kind: 'window' | 'token';
  /** Admissions in the current window, or tokens spent from a full bucket. */
  used: number;
  capacity: number;
  /** used / capacity, for gauges (may exceed 1 for a token bucket in debt). */
  utilisation: number;
  windowMs?: number;
  ratePerS?: number;
}

export interface RateLimiterStats {
  admitted: number;
  waited: number;
  timedOut: number;
  aborted: number;
  refused: number;
  waiting: number;
}

interface Slot {
  bucket: Bucket;
  /** Cloudflare windows count requests; signer buckets count orders. */
  perRequest: boolean;
}

interface Waiter {
  group: Group;
  seq: number;
  cost: number;
  enqueuedAt: number;
  endpoint: string;
  done: boolean;
  resolve(a: Admission): void;
  reject(e: RateLimitError): void;
  timer?: TimerHandle;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** Waiters needing the same set of buckets, FIFO among themselves. */
class Group {
  private q: Waiter[] = [];
  private h = 0;
  /** Waiters not yet admitted, failed or cancelled. */
  live = 0;
  constructor(
    readonly key: string,
    readonly slots: readonly Slot[],
  ) {}
  push(w: Waiter): void {
    this.q.push(w);
    this.live++;
  }
  head(): Waiter | undefined {
    while (this.h < this.q.length && this.q[this.h]!.done) this.h++;
    if (this.h > 1024 && this.h * 2 > this.q.length) {
      this.q = this.q.slice(this.h);
      this.h = 0;
    }
    return this.q[this.h];
  }
  shift(): void {
    this.h++;
  }
  get empty(): boolean {
    return this.live === 0;
  }
}

interface ParsedRule {
  rule: EndpointRule;
  buckets: WindowBucket[];
}

const normaliseSigner = (s: string) => s.trim().toLowerCase();

function parseEndpoint(endpoint: string): { method: string; path: string } {
  const m = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(endpoint);
  if (!m) throw new TypeError(`endpoint must look like "POST /order", got ${JSON.stringify(endpoint)}`);
  let path = m[2]!.split('?')[0]!.split('#')[0]!;
  // Accept full URLs too: only the path decides the class.
  if (/^https?:\/\//i.test(path)) path = new URL(path).pathname;
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return { method: m[1]!.toUpperCase(), path };
}

const pathMatches = (path: string, pats: readonly string[]) => pats.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));

/**
 * Waits until every bucket a request counts against admits it. Fair: within the buckets a waiter
 * cannot get, later waiters never overtake it (a stream of single orders cannot starve a batch),
 * while waiters that share no exhausted bucket with it are not held up (reads and cancels do
 * not queue behind a throttled order stream).
 */
export class RateLimiter {
  readonly clock: Clock;
  readonly host: VenueHost;
  private readonly rules: ParsedRule[];
  private readonly family: ParsedRule;
  private readonly global: ParsedRule;
  private readonly pauses = new Map<string, PauseGate>();
  private readonly signerBuckets = new Map<string, TokenBucket>();
  private readonly signerTiers = new Map<string, ScaledTokenLimit[]>();
  private readonly defaultSigner: { order: ScaledTokenLimit; cancel: ScaledTokenLimit } | false;
  private readonly signerPpm: bigint;
  private readonly groups = new Map<string, Group>();
  private readonly defaultMaxWaitMs: number;
  private seq = 0;
  private wakeAt = Number.POSITIVE_INFINITY;
  private wakeTimer: TimerHandle | undefined;
  private closed = false;
  private readonly counters = { admitted: 0, waited: 0, timedOut: 0, aborted: 0, refused: 0 };

  constructor(opts: RateLimiterOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.host = opts.host ?? 'clob';
    const ppm = shareToPpm(opts.share ?? 0.8, 'share');
    this.signerPpm = shareToPpm(opts.signerShare ?? opts.share ?? 0.8, 'signerShare');
    this.defaultMaxWaitMs = opts.maxWaitMs ?? 30_000;
    const parse = (rule: EndpointRule): ParsedRule => ({
      rule,
      buckets: rule.limits.map((l) => new WindowBucket(`${rule.name} ${l.windowMs / 1000}s`, scale(l.max, ppm, 1), l.windowMs)),
    });
    this.rules = (opts.rules ?? (this.host === 'clob' ? CLOB_RATE_LIMITS : GAMMA_RATE_LIMITS)).map(parse);
    this.family = parse(FAMILY_LIMITS[this.host]);
    this.global = parse(GLOBAL_LIMIT);
    const t = opts.signerTier === undefined ? 'standard' : opts.signerTier;
    const limits = t === false ? false : typeof t === 'string' ? SIGNER_TIERS[t] : t;
    if (limits === undefined) throw new RangeError(`unknown signer tier ${String(t)}`);
    this.defaultSigner = limits === false ? false : { order: scaleToken(limits.order, this.signerPpm), cancel: scaleToken(limits.cancel, this.signerPpm) };
  }

  /** How an endpoint is classified and counted. */
  describe(endpoint: string): EndpointInfo {
    const { method, path } = parseEndpoint(endpoint);
    const matched = this.match(method, path);
    const specific = matched.find((r) => r.rule.signerBucket) ?? matched[0];
    const all = [...matched, this.family, this.global];
    return {
      method,
      path,
      endpointClass: specific?.rule.name ?? this.family.rule.name,
      windows: all.flatMap((r) => r.buckets.map((b) => b.name)),
      ...(specific?.rule.signerBucket ? { signerBucket: specific.rule.signerBucket } : {}),
    };
  }

  /**
   * Resolves when the request may be sent (the buckets are charged at that moment).
   * Rejects with a RateLimitError — and nothing has been sent — on timeout, abort, a cost above
   * a bucket's capacity (it could never be admitted: split the batch) or a missing signer.
   */
  acquire(endpoint: string, opts: AcquireOptions = {}): Promise<Admission> {
    const cost = opts.cost ?? 1;
    if (this.closed) return Promise.reject(new RateLimitError('closed', 'rate limiter is closed', endpoint));
    if (!Number.isSafeInteger(cost) || cost < 1) {
      return Promise.reject(new RateLimitError('bad_cost', `cost must be a positive integer, got ${cost}`, endpoint));
    }
    const info = this.describe(endpoint);
    if (info.signerBucket && this.defaultSigner !== false && !opts.signer) {
      return Promise.reject(new RateLimitError('signer_required', `${info.endpointClass} draws from a per-signer bucket: pass the signer`, endpoint));
    }
    const group = this.groupFor(info, opts.signer);
    for (const s of group.slots) {
      const c = s.perRequest ? 1 : cost;
      if (c > s.bucket.capacity()) {
        this.counters.refused++;
        return Promise.reject(
          new RateLimitError('too_large', `${endpoint} costs ${c} but ${s.bucket.name} holds at most ${s.bucket.capacity()}: split the batch`, endpoint),
        );
      }
    }
    const signal = opts.signal;
    if (signal?.aborted) {
      this.counters.aborted++;
      return Promise.reject(new RateLimitError('aborted', `${endpoint}: aborted before admission`, endpoint, 0, { cause: signal.reason }));
    }
    const now = this.clock.now();
    return new Promise<Admission>((resolve, reject) => {
      const waiter: Waiter = { group, seq: this.seq++, cost, enqueuedAt: now, endpoint, done: false, resolve, reject };
      group.push(waiter);
      this.pump();
      if (waiter.done) return;
      this.counters.waited++;
      const maxWait = opts.maxWaitMs ?? this.defaultMaxWaitMs;
      waiter.timer = this.clock.setTimeout(() => {
        const blocking = this.blockingBuckets(group, waiter);
        this.fail(
          waiter,
          new RateLimitError(
            'timeout',
            `rate limit: ${endpoint} waited ${maxWait} ms without a free slot (${blocking || 'queued behind earlier requests'})`,
            endpoint,
            this.clock.now() - waiter.enqueuedAt,
          ),
        );
        this.counters.timedOut++;
      }, maxWait);
      if (signal) {
        waiter.signal = signal;
        waiter.onAbort = () => {
          this.counters.aborted++;
          this.fail(
            waiter,
            new RateLimitError('aborted', `${endpoint}: aborted while waiting for a rate-limit slot`, endpoint, this.clock.now() - waiter.enqueuedAt, {
              cause: signal.reason,
            }),
          );
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
    });
  }

  /**
   * Holds every request of the endpoint's class until `until` (clock ms) — after a 429, for its
   * Retry-After. Never shortens an existing pause.
   */
  pause(endpoint: string, until: number): void {
    const gate = this.pauseGate(this.describe(endpoint).endpointClass);
    if (until > gate.until) gate.until = until;
    this.pump();
  }

  /** When the endpoint's class may be called again after a 429 (0 = not paused). */
  pausedUntil(endpoint: string): number {
    const until = this.pauses.get(this.describe(endpoint).endpointClass)?.until ?? 0;
    return until > this.clock.now() ? until : 0;
  }

  /**
   * Charges tokens after the fact: `cancel-all` and `cancel-market-orders` cost one more cancel
   * token per order they cancelled, known only from the answer.
   */
  charge(signer: string, bucket: SignerBucketKind, tokens: number): void {
    if (!Number.isSafeInteger(tokens) || tokens < 0) throw new RangeError(`tokens must be a non-negative integer, got ${tokens}`);
    if (tokens === 0 || this.defaultSigner === false) return;
    this.signerBucket(signer, bucket).charge(tokens, this.clock.now());
    this.pump();
  }

  /** Applies the signer's actual tier (from `Poly-RateLimit-Tier` or `GET /v1/user/rate-limit-tier`). */
  setSignerTier(signer: string, t: SignerTierName | SignerTier): void {
    const limits = typeof t === 'string' ? SIGNER_TIERS[t] : t;
    if (!limits) throw new RangeError(`unknown signer tier ${String(t)}`);
    const key = normaliseSigner(signer);
    const scaled = [scaleToken(limits.order, this.signerPpm), scaleToken(limits.cancel, this.signerPpm)];
    this.signerTiers.set(key, scaled);
    const now = this.clock.now();
    this.signerBuckets.get(`${key}:order`)?.configure(scaled[0]!, now);
    this.signerBuckets.get(`${key}:cancel`)?.configure(scaled[1]!, now);
    this.pump();
  }

  /** Fill levels of every bucket, for gauges. */
  utilisation(): BucketUsage[] {
    const now = this.clock.now();
    const out: BucketUsage[] = [];
    for (const r of [...this.rules, this.family, this.global]) {
      for (const b of r.buckets) {
        const used = b.usage(now);
        out.push({ name: b.name, kind: 'window', used, capacity: b.max, utilisation: used / b.max, windowMs: b.windowMs });
      }
    }
    for (const b of this.signerBuckets.values()) {
      const used = b.usage(now);
      out.push({ name: b.name, kind: 'token', used, capacity: b.capacity(), utilisation: used / b.capacity(), ratePerS: b.ratePerS });
    }
    return out;
  }

  /** Endpoint classes currently paused by a 429, with the clock time they resume. */
  activePauses(): Record<string, number> {
    const now = this.clock.now();
    const out: Record<string, number> = {};
    for (const [name, g] of this.pauses) if (g.until > now) out[name] = g.until;
    return out;
  }

  /** Requests waiting for a slot. */
  get waiting(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.live;
    return n;
  }

  stats(): RateLimiterStats {
    return { ...this.counters, waiting: this.waiting };
  }

  /** Rejects every waiter (shutdown); later acquires reject at once. */
  close(): void {
    this.closed = true;
    for (const g of this.groups.values()) {
      for (let w = g.head(); w; w = g.head()) {
        this.settle(w);
        w.reject(new RateLimitError('closed', `${w.endpoint}: rate limiter closed`, w.endpoint, this.clock.now() - w.enqueuedAt));
      }
    }
    this.groups.clear();
    if (this.wakeTimer !== undefined) this.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
  }

  // ---------------------------------------------------------------- internals

  private match(method: string, path: string): ParsedRule[] {
    return this.rules.filter((r) => (!r.rule.method || r.rule.method === method) && pathMatches(path, r.rule.paths));
  }

  private pauseGate(endpointClass: string): PauseGate {
    let g = this.pauses.get(endpointClass);
    if (!g) this.pauses.set(endpointClass, (g = new PauseGate(`pause ${endpointClass}`)));
    return g;
  }

  private signerBucket(signer: string, kind: SignerBucketKind): TokenBucket {
    const key = normaliseSigner(signer);
    const id = `${key}:${kind}`;
    let b = this.signerBuckets.get(id);
    if (!b) {
      const custom = this.signerTiers.get(key);
      const limit = custom ? custom[kind === 'order' ? 0 : 1]! : (this.defaultSigner as { order: ScaledTokenLimit; cancel: ScaledTokenLimit })[kind];
      b = new TokenBucket(`signer ${key} ${kind}`, limit, this.clock.now());
      this.signerBuckets.set(id, b);
    }
    return b;
  }

  private groupFor(info: EndpointInfo, signer: string | undefined): Group {
    const withSigner = info.signerBucket && this.defaultSigner !== false && signer ? normaliseSigner(signer) : '';
    const key = `${info.method} ${info.endpointClass}|${info.windows.join(',')}|${withSigner}`;
    let g = this.groups.get(key);
    if (g) return g;
    const matched = this.match(info.method, info.path);
    const slots: Slot[] = [{ bucket: this.pauseGate(info.endpointClass), perRequest: true }];
    for (const r of [...matched, this.family, this.global]) for (const b of r.buckets) slots.push({ bucket: b, perRequest: true });
    if (withSigner) slots.push({ bucket: this.signerBucket(withSigner, info.signerBucket!), perRequest: false });
    g = new Group(key, slots);
    this.groups.set(key, g);
    return g;
  }

  private blockingBuckets(group: Group, waiter: Waiter): string {
    const now = this.clock.now();
    return group.slots
      .filter((s) => s.bucket.waitFor(s.perRequest ? 1 : waiter.cost, now) > 0)
      .map((s) => s.bucket.name)
      .join(', ');
  }

  private settle(w: Waiter): void {
    w.done = true;
    w.group.live--;
    if (w.timer !== undefined) this.clock.clearTimeout(w.timer);
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
  }

  private fail(w: Waiter, err: RateLimitError): void {
    if (w.done) return;
    this.settle(w);
    w.reject(err);
    this.pump();
  }

  /** Admits whatever can go now, in arrival order, and arms one timer for the next possible admission. */
  private pump(): void {
    const now = this.clock.now();
    const blocked = new Set<Bucket>();
    const stalled = new Set<Group>();
    let wake = Number.POSITIVE_INFINITY;
    for (;;) {
      let best: Group | undefined;
      let bestHead: Waiter | undefined;
      for (const g of this.groups.values()) {
        if (stalled.has(g)) continue;
        const h = g.head();
        if (h && (!bestHead || h.seq < bestHead.seq)) {
          best = g;
          bestHead = h;
        }
      }
      if (!best || !bestHead) break;
      // An earlier waiter is already waiting for one of these buckets: FIFO says it goes first.
      if (best.slots.some((s) => blocked.has(s.bucket))) {
        stalled.add(best);
        continue;
      }
      let need = 0;
      const lacking: Bucket[] = [];
      for (const s of best.slots) {
        const d = s.bucket.waitFor(s.perRequest ? 1 : bestHead.cost, now);
        if (d > 0) {
          lacking.push(s.bucket);
          need = Math.max(need, d);
        }
      }
      if (lacking.length === 0) {
        for (const s of best.slots) s.bucket.take(s.perRequest ? 1 : bestHead.cost, now);
        best.shift();
        this.settle(bestHead);
        this.counters.admitted++;
        bestHead.resolve({ at: now, waitedMs: now - bestHead.enqueuedAt });
        continue;
      }
      for (const b of lacking) blocked.add(b);
      wake = Math.min(wake, now + need);
      stalled.add(best);
    }
    // Groups are cheap to rebuild; dropping idle ones keeps the map from growing with every signer.
    for (const [k, g] of this.groups) if (g.empty) this.groups.delete(k);
    this.arm(wake);
  }

  private arm(at: number): void {
    if (at === this.wakeAt && this.wakeTimer !== undefined) return;
    if (this.wakeTimer !== undefined) this.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wakeAt = at;
    if (!Number.isFinite(at) || this.closed) return;
    const delay = Math.max(1, Math.ceil(at - this.clock.now()));
    this.wakeTimer = this.clock.setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = Number.POSITIVE_INFINITY;
      this.pump();
    }, delay);
  }
}
