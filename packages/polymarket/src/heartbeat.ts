/**
 * The venue's dead-man switch, client side (PROTOCOL.md §3, RELIABILITY-NOTES §0.8): `POST /v1/heartbeats`
 * with the id the previous answer returned. If no valid heartbeat arrives within the venue's window
 * (10 s per the docs, plus a 5 s buffer; not confirmed officially) the venue cancels every open order
 * of the account.
 *
 * The executor fails closed on `healthy`: while it is false no new order is sent, but cancels and
 * queries go on. `healthy` turns false as soon as a beat fails, or when the last accepted beat is
 * older than the expiry minus a margin even though nothing has answered yet (a hung request).
 *
 * Stopping the loop arms the switch: the venue will cancel the account's orders after its window.
 * That is the point when the process dies; on a graceful stop, cancel first or keep beating.
 */
import Type from 'typebox';
import Compile from 'typebox/compile';
import { answerError, ClobAccountError, sendClobRequest, type AuthHeadersFn, type ClobAnswer } from './clob-account.js';

/** The venue's window as documented (10 s); the simulator adds a 5 s buffer by default. */
export const DEFAULT_HEARTBEAT_EXPIRY_MS = 10_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
export const HEARTBEAT_PATH = '/v1/heartbeats';

/** Time and timers; the shape of rate-limit.ts's `Clock`, so its `ManualClock` fits. */
export interface HeartbeatClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** What the loop needs of a logger (a pino logger fits). Headers and credentials never reach it. */
export interface HeartbeatLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** The venue refused our heartbeat id and the loop took the one it expects. */
export interface HeartbeatResync {
  /**
   * True when we had a chain and the venue expected "" (a new chain): it has forgotten ours, which
   * on the venue means the switch fired and the account's open orders were cancelled. Reconcile.
   * False when another beat advanced the chain (a timed-out request that did arrive, another
   * process beating for the same account, or this process restarted).
   */
  chainLost: boolean;
  message: string;
}

export interface HeartbeatLoopOptions {
  baseUrl: string;
  /** L2 headers per request (see `ClobAccountOptions.authHeaders`). */
  authHeaders: AuthHeadersFn;
  /** Between accepted beats. Default 5 s; must be below `expiryMs - marginMs`. */
  intervalMs?: number;
  /** The venue's window. Default 10 s. */
  expiryMs?: number;
  /** Unhealthy once the last accepted beat is older than `expiryMs - marginMs`. Default 2 s. */
  marginMs?: number;
  /** Delay before trying again after a failure (a 429's Retry-After, if longer, up to `intervalMs`). Default 1 s. */
  retryMs?: number;
  /** Deadline of one request. Default min(3 s, intervalMs). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  clock?: HeartbeatClock;
  /** Fired on every change of `healthy`, with why. Exceptions are logged and swallowed. */
  onChange?: (healthy: boolean, reason: string) => void;
  onResync?: (e: HeartbeatResync) => void;
  log?: HeartbeatLogger;
}

export interface HeartbeatStats {
  sent: number;
  accepted: number;
  failed: number;
  /** Beats the venue refused for their id. */
  rejected: number;
  /** Of those, the ones where the venue had forgotten our chain. */
  chainsLost: number;
}

const checkAccepted = Compile(Type.Object({ heartbeat_id: Type.String({ minLength: 1, maxLength: 200 }) }));

const silent: HeartbeatLogger = { debug() {}, info() {}, warn() {} };

const systemClock: HeartbeatClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A forgotten loop must not keep the process alive; the service's own handles do that.
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

type BeatResult =
  | { kind: 'ok'; id: string; sentAt: number }
  | { kind: 'rejected'; expected: string; message: string }
  | { kind: 'failed'; reason: string; retryAfterMs?: number };

/** Sends heartbeats on a timer and tells whether the dead-man switch is safely fed. */
export class HeartbeatLoop {
  readonly intervalMs: number;
  readonly expiryMs: number;
  readonly marginMs: number;
  private readonly retryMs: number;
  private readonly timeoutMs: number;
  private readonly baseUrl: string;
  private readonly authHeaders: AuthHeadersFn;
  private readonly fetchImpl: typeof fetch;
  private readonly clock: HeartbeatClock;
  private readonly log: HeartbeatLogger;
  private readonly onChangeCb: ((healthy: boolean, reason: string) => void) | undefined;
  private readonly onResyncCb: ((e: HeartbeatResync) => void) | undefined;

  private running = false;
  /** Bumped by start/stop so a tick from an earlier run never schedules into a later one. */
  private generation = 0;
  private id = '';
  private lastOkAt: number | undefined;
  private lastFailed = false;
  private reported = false;
  private tickTimer: unknown;
  private staleTimer: unknown;
  private inflight: { abort: AbortController; done: Promise<void> } | undefined;
  private readonly counters: HeartbeatStats = { sent: 0, accepted: 0, failed: 0, rejected: 0, chainsLost: 0 };

  constructor(opts: HeartbeatLoopOptions) {
    this.baseUrl = opts.baseUrl;
    this.authHeaders = opts.authHeaders;
    this.intervalMs = opts.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.expiryMs = opts.expiryMs ?? DEFAULT_HEARTBEAT_EXPIRY_MS;
    this.marginMs = opts.marginMs ?? 2_000;
    this.retryMs = opts.retryMs ?? 1_000;
    this.timeoutMs = opts.timeoutMs ?? Math.min(3_000, this.intervalMs);
    for (const [k, v] of Object.entries({ intervalMs: this.intervalMs, expiryMs: this.expiryMs, retryMs: this.retryMs, timeoutMs: this.timeoutMs })) {
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${k} must be a positive number of ms`);
    }
    if (!Number.isFinite(this.marginMs) || this.marginMs < 0) throw new RangeError('marginMs must be >= 0');
    // A loop that cannot beat twice inside the healthy part of the window would flap by design.
    if (this.intervalMs >= this.expiryMs - this.marginMs) throw new RangeError('intervalMs must be below expiryMs - marginMs');
    this.fetchImpl = opts.fetch ?? fetch;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silent;
    this.onChangeCb = opts.onChange;
    this.onResyncCb = opts.onResync;
  }

  /** True while running, the last beat was accepted, and it is younger than `expiryMs - marginMs`. */
  get healthy(): boolean {
    return this.running && !this.lastFailed && this.lastOkAt !== undefined && this.clock.now() - this.lastOkAt <= this.expiryMs - this.marginMs;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** When the last accepted beat was sent (clock ms), if any in this run. */
  get lastAcceptedAt(): number | undefined {
    return this.lastOkAt;
  }

  /** The id the next beat carries ("" = start a chain). Not a credential: beating also needs the L2 key. */
  get heartbeatId(): string {
    return this.id;
  }

  get stats(): Readonly<HeartbeatStats> {
    return { ...this.counters };
  }

  /** Starts beating at once. `healthy` turns true with the first accepted beat. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.generation++;
    this.lastOkAt = undefined;
    this.lastFailed = false;
    this.schedule(0);
  }

  /**
   * Stops beating (the venue will cancel the account's orders after its window), aborts a beat in
   * flight and reports unhealthy. Resolves once nothing of this run is left running.
   */
  async stop(): Promise<void> {
    const inflight = this.inflight;
    if (this.running) {
      this.running = false;
      this.generation++;
      this.clearTimers();
      inflight?.abort.abort(new DOMException('heartbeat loop stopped', 'AbortError'));
      this.report('stopped');
    }
    await inflight?.done;
  }

  // ---------------------------------------------------------------- internals

  private schedule(ms: number): void {
    // An onChange handler may have stopped the loop from inside this tick.
    if (!this.running) return;
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer);
    const gen = this.generation;
    this.tickTimer = this.clock.setTimeout(() => {
      this.tickTimer = undefined;
      if (gen === this.generation) void this.tick(gen);
    }, Math.max(0, ms));
  }

  private clearTimers(): void {
    if (this.tickTimer !== undefined) this.clock.clearTimeout(this.tickTimer);
    if (this.staleTimer !== undefined) this.clock.clearTimeout(this.staleTimer);
    this.tickTimer = this.staleTimer = undefined;
  }

  private async tick(gen: number): Promise<void> {
    let result = await this.beatOnce();
    if (gen !== this.generation) return;
    if (result.kind === 'rejected') {
      // A refused id left the venue's clock where it was, so resync and beat again right away.
      this.resync(result);
      result = await this.beatOnce();
      if (gen !== this.generation) return;
      if (result.kind === 'rejected') {
        this.resync(result);
        result = { kind: 'failed', reason: `heartbeat id refused twice (${result.message})` };
      }
    }
    if (result.kind === 'ok') {
      this.id = result.id;
      this.lastOkAt = result.sentAt;
      const recovered = this.lastFailed;
      this.lastFailed = false;
      this.counters.accepted++;
      if (recovered) this.log.info({ accepted: this.counters.accepted }, 'heartbeats accepted again');
      this.armStaleCheck();
      this.report(this.healthy ? 'heartbeat accepted' : `heartbeat accepted, but its answer took ${this.clock.now() - result.sentAt} ms`);
      this.schedule(result.sentAt + this.intervalMs - this.clock.now());
      return;
    }
    if (result.kind === 'failed') {
      this.counters.failed++;
      if (!this.lastFailed) this.log.warn({ reason: result.reason }, 'heartbeat failed: new orders must stop until one is accepted');
      else this.log.debug({ reason: result.reason }, 'heartbeat failed again');
      this.lastFailed = true;
      this.report(`heartbeat failed: ${result.reason}`);
      const wait = Math.min(this.intervalMs, Math.max(this.retryMs, result.retryAfterMs ?? 0));
      this.schedule(wait);
    }
  }

  private resync(r: { expected: string; message: string }): void {
    const chainLost = this.id !== '' && r.expected === '';
    this.counters.rejected++;
    if (chainLost) this.counters.chainsLost++;
    this.log.warn(
      { chainLost, message: r.message },
      chainLost ? 'heartbeat chain lost at the venue: its open orders were likely cancelled; starting a new chain' : 'heartbeat id refused; continuing the chain the venue expects',
    );
    this.id = r.expected;
    try {
      this.onResyncCb?.({ chainLost, message: r.message });
    } catch (err) {
      this.log.warn({ err }, 'heartbeat resync handler failed');
    }
  }

  /** Reports unhealthy the moment the last accepted beat gets too old, even while a request hangs. */
  private armStaleCheck(): void {
    if (this.staleTimer !== undefined) this.clock.clearTimeout(this.staleTimer);
    if (this.lastOkAt === undefined) return;
    const okAt = this.lastOkAt;
    const gen = this.generation;
    const due = okAt + this.expiryMs - this.marginMs - this.clock.now() + 1;
    this.staleTimer = this.clock.setTimeout(() => {
      this.staleTimer = undefined;
      if (gen !== this.generation) return;
      const age = this.clock.now() - okAt;
      this.report(`heartbeat stale: last accepted beat ${age} ms ago`);
    }, Math.max(0, due));
  }

  private report(reason: string): void {
    const h = this.healthy;
    if (h === this.reported) return;
    this.reported = h;
    try {
      this.onChangeCb?.(h, reason);
    } catch (err) {
      this.log.warn({ err }, 'heartbeat onChange handler failed');
    }
  }

  private async beatOnce(): Promise<BeatResult> {
    const abort = new AbortController();
    const timer = this.clock.setTimeout(() => abort.abort(new DOMException('heartbeat timed out', 'TimeoutError')), this.timeoutMs);
    const sentAt = this.clock.now();
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    this.inflight = { abort, done };
    this.counters.sent++;
    try {
      const a = await sendClobRequest({
        baseUrl: this.baseUrl,
        method: 'POST',
        path: HEARTBEAT_PATH,
        body: { heartbeat_id: this.id },
        authHeaders: this.authHeaders,
        fetch: this.fetchImpl,
        signal: abort.signal,
      });
      return this.interpret(a, sentAt);
    } catch (err) {
      const e = err instanceof ClobAccountError ? err : undefined;
      return { kind: 'failed', reason: e ? `${e.code}: ${e.message}` : String(err) };
    } finally {
      this.clock.clearTimeout(timer);
      this.inflight = undefined;
      release();
    }
  }

  private interpret(a: ClobAnswer, sentAt: number): BeatResult {
    const body = a.json && typeof a.json === 'object' ? (a.json as Record<string, unknown>) : {};
    if (a.status >= 200 && a.status < 300) {
      if (checkAccepted.Check(a.json)) return { kind: 'ok', id: a.json.heartbeat_id, sentAt };
      return { kind: 'failed', reason: `HTTP ${a.status} without a heartbeat_id` };
    }
    const err = answerError('POST', HEARTBEAT_PATH, a, this.clock.now());
    // The venue's refusal: 400 {"error_msg":"Invalid Heartbeat ID","heartbeat_id":"<expected>"}.
    const refused =
      err.code === 'rejected' && (typeof body.heartbeat_id === 'string' || /heartbeat/i.test(err.venueMessage ?? ''));
    if (refused) {
      const expected = typeof body.heartbeat_id === 'string' && body.heartbeat_id.length <= 200 ? body.heartbeat_id : '';
      return { kind: 'rejected', expected, message: err.venueMessage ?? `HTTP ${a.status}` };
    }
    return { kind: 'failed', reason: `${err.code}: ${err.message}`, ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }) };
  }
}
