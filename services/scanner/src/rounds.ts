/**
 * Crypto up/down round watchers (PROTOCOL.md §6 "Crypto Up/Down rounds"): one watcher per asset,
 * each with its own timers and counters, so a watcher whose lookups or callbacks fail never delays
 * or breaks another.
 *
 * Per window (start S, a multiple of the round length; end E = S + length) a watcher
 * - looks the market `<asset>-updown-<len>-<S seconds>` up on Gamma `prefetchMs` before S, retrying
 *   with backoff until found (each 200 answer also goes to `onFrame` as `{ source: 'round' }`),
 * - calls `track(market)` as soon as it is found, so the scanner subscribes the books before S,
 * - publishes on `topics.round(ASSET)`: `started` at S (late, if the market was found late or the
 *   window was already running at start), `ending` `endingLeadMs` before E, `resolved` once Gamma
 *   shows the market closed with outcomePrices 1/0 (polled every `resolvePollMs` from E) or the
 *   scanner calls `notifyResolved` after a market-channel `market_resolved`, whichever comes first,
 * - then calls `untrack(market)`.
 *
 * API:
 *   const w = createRoundWatchers(
 *     { assets: ['BTC','ETH','SOL','XRP'], roundSeconds: 900, prefetchMs: 120_000, endingLeadMs: 60_000, resolvePollMs: 5_000 },
 *     { gamma: createGammaRoundLookup(venueUrls(cfg).gamma), publish: (t, m) => pub.publish(t, m),
 *       track: (m) => …, untrack: (m) => …, onFrame?: recorder, log },
 *   );
 *   w.start(); w.notifyResolved(conditionId, winningTokenId); w.stats(); await w.stop();
 * `stop()` cancels timers and in-flight lookups but does not untrack (the caller is shutting down).
 * `now` and `timers` are injectable for fake-clock tests.
 */
import { GammaMarket, reconnectDelay, toMarketInfo, type MarketInfo } from '@polybot/polymarket';
import { topics, type RoundMessage, type Unstamped } from '@polybot/protocol';
import Compile from 'typebox/compile';
import type { FrameSink } from './pipeline/types.js';

// ---------------------------------------------------------------- slugs

/** "15m", "5m", "1h", "30s": the length label of round slugs (as the venue and the simulator spell it). */
export function roundLengthLabel(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** `btc-updown-15m-1774278900`. */
export function roundSlug(asset: string, roundSeconds: number, startS: number): string {
  return `${asset.toLowerCase()}-updown-${roundLengthLabel(roundSeconds)}-${startS}`;
}

// ---------------------------------------------------------------- Gamma lookup

export interface RoundLookupAnswer {
  /** HTTP status; 404 = not listed (yet). */
  status: number;
  /** The body exactly as received. */
  text: string;
}

/** How a watcher asks Gamma for one market by slug. Network failures reject. */
export interface RoundLookup {
  marketBySlug(slug: string, signal?: AbortSignal): Promise<RoundLookupAnswer>;
}

/** `GET <gamma>/markets/slug/<slug>`: one object, closed or not (the `/markets` listing hides closed ones by default). */
export function createGammaRoundLookup(baseUrl: string, opts: { timeoutMs?: number; fetch?: typeof fetch } = {}): RoundLookup {
  const base = baseUrl.replace(/\/+$/, '');
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return {
    async marketBySlug(slug, signal) {
      const timeout = AbortSignal.timeout(timeoutMs);
      const res = await doFetch(`${base}/markets/slug/${encodeURIComponent(slug)}`, {
        headers: { accept: 'application/json' },
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      return { status: res.status, text: await res.text() };
    },
  };
}

// ---------------------------------------------------------------- options

export interface RoundWatchersOptions {
  /** Tickers, e.g. BTC, ETH, SOL, XRP (upper-case letters and digits). */
  assets: readonly string[];
  /** Round length (900 on the venue's 15-minute series). */
  roundSeconds: number;
  /** How long before a window starts its market is looked up (and tracked once found). */
  prefetchMs: number;
  /** How long before a window ends `round.ending` goes out. */
  endingLeadMs: number;
  /** Gamma poll interval after a window ended, until the winner is known. */
  resolvePollMs: number;
  /** First retry delay of a failed lookup; doubles up to `maxLookupRetryMs` (default 1000, 15000). */
  lookupRetryMs?: number;
  maxLookupRetryMs?: number;
  /** Stop polling for the winner this long after the end (default 2 h) and untrack the round. */
  resolveTimeoutMs?: number;
  /** Also follow the window already running at start, announcing it late (default true). */
  includeCurrent?: boolean;
  /** Slug of a window; defaults to `roundSlug` (the venue's 5m/15m series). */
  slugFor?: (asset: string, roundSeconds: number, startS: number) => string;
}

export interface RoundLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface RoundTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RoundWatchersDeps {
  gamma: RoundLookup;
  /** Publishes on the bus; `false` (queue full, invalid) is counted. */
  publish(topic: string, msg: Unstamped<RoundMessage>): boolean | void;
  /** Subscribe the round's tokens; called once per round, before its window opens when possible. */
  track(market: MarketInfo): void | Promise<void>;
  /** Called after the round resolved (or was given up on). */
  untrack(market: MarketInfo): void | Promise<void>;
  /** Receives every 200 lookup answer, for recordings. */
  onFrame?: FrameSink;
  log?: RoundLogger;
  now?: () => number;
  timers?: RoundTimers;
}

export interface RoundWatcherStats {
  asset: string;
  rounds_started: number;
  /** Started after the window start by more than a second (market found late, or running at start). */
  late_starts: number;
  rounds_ending: number;
  rounds_resolved: number;
  /** Resolutions learnt from `notifyResolved` before Gamma showed them. */
  resolved_by_notify: number;
  /** Rounds never found before their end, or never resolved within `resolveTimeoutMs`. */
  abandoned: number;
  lookups: number;
  lookup_errors: number;
  /** Part of `lookup_errors`: Gamma answered 404. */
  lookup_not_found: number;
  resolve_polls: number;
  resolve_errors: number;
  callback_errors: number;
  publish_failures: number;
  /** Delay of the last `round.started` after its window start (ms). */
  last_start_delay_ms: number;
  last_error: string;
  /** Start (ms) and slug of the next window not yet started. */
  next_window_ts: number;
  next_window_slug: string;
  /** Rounds currently followed (looked up, running or awaiting resolution). */
  active_rounds: number;
}

export interface RoundWatchers {
  start(): void;
  stop(): Promise<void>;
  stats(): Record<string, RoundWatcherStats>;
  /**
   * A market-channel `market_resolved`: resolves the round of `conditionId` with the winning token
   * unless it already resolved. Returns whether a followed round matched.
   */
  notifyResolved(conditionId: string, winningTokenId: string): boolean;
}

// ---------------------------------------------------------------- implementation

const checkGammaMarket = Compile(GammaMarket);
const ASSET_RE = /^[A-Z0-9]{1,16}$/;
/** setTimeout overflows beyond 2^31-1 ms; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const LATE_MS = 1000;
const FIRST_POLL_DELAY_MS = 500;

type Phase = 'lookup' | 'found' | 'resolved' | 'abandoned';

interface Round {
  slug: string;
  startMs: number;
  endMs: number;
  phase: Phase;
  market?: MarketInfo;
  upIdx: number;
  downIdx: number;
  tracked: boolean;
  startedSent: boolean;
  endingSent: boolean;
  lookupAttempts: number;
  /** The lookup backoff started over at the window start (once, by the lookup or the start timer). */
  backoffRestarted?: boolean;
  /** Resolution polling began (at most one poll chain per round). */
  polling: boolean;
  resolveStartedAt: number;
  timers: Set<unknown>;
}

const realTimers: RoundTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
const silent: RoundLogger = { debug() {}, info() {}, warn() {} };

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 300);

/** Index of the decisive 1 in a resolved market's outcomePrices (["1","0"] → 0), or -1. */
export function winnerIndex(outcomePrices: string | undefined): number {
  if (!outcomePrices) return -1;
  let prices: unknown;
  try {
    prices = JSON.parse(outcomePrices);
  } catch {
    return -1;
  }
  if (!Array.isArray(prices) || prices.length < 2) return -1;
  const nums = prices.map((p) => Number(p));
  if (nums.some((n) => !Number.isFinite(n))) return -1;
  const ones = nums.filter((n) => n === 1).length;
  const zeros = nums.filter((n) => n === 0).length;
  return ones === 1 && zeros === nums.length - 1 ? nums.indexOf(1) : -1;
}

class AssetWatcher {
  private readonly lenMs: number;
  private readonly rounds = new Map<number, Round>();
  private readonly now: () => number;
  private readonly timers: RoundTimers;
  private readonly log: RoundLogger;
  private running = false;
  private planTimer: unknown;
  private abort = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  readonly s: RoundWatcherStats;

  constructor(
    readonly asset: string,
    private readonly opts: RoundWatchersOptions,
    private readonly deps: RoundWatchersDeps,
  ) {
    this.lenMs = opts.roundSeconds * 1000;
    this.now = deps.now ?? Date.now;
    this.timers = deps.timers ?? realTimers;
    this.log = deps.log ?? silent;
    this.s = {
      asset,
      rounds_started: 0,
      late_starts: 0,
      rounds_ending: 0,
      rounds_resolved: 0,
      resolved_by_notify: 0,
      abandoned: 0,
      lookups: 0,
      lookup_errors: 0,
      lookup_not_found: 0,
      resolve_polls: 0,
      resolve_errors: 0,
      callback_errors: 0,
      publish_failures: 0,
      last_start_delay_ms: -1,
      last_error: '',
      next_window_ts: 0,
      next_window_slug: '',
      active_rounds: 0,
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.guard('plan', () => this.plan());
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    if (this.planTimer !== undefined) this.timers.clearTimeout(this.planTimer);
    this.planTimer = undefined;
    for (const r of this.rounds.values()) this.clearRoundTimers(r);
    await Promise.allSettled([...this.inFlight]);
    this.rounds.clear();
  }

  stats(): RoundWatcherStats {
    const now = this.now();
    const next = Math.floor(now / this.lenMs) * this.lenMs + this.lenMs;
    this.s.next_window_ts = next;
    this.s.next_window_slug = this.slug(next);
    this.s.active_rounds = this.rounds.size;
    return { ...this.s };
  }

  /** True when this watcher follows the market (whether or not it resolves it now). */
  notifyResolved(conditionId: string, winningTokenId: string): boolean {
    const cid = conditionId.toLowerCase();
    for (const r of this.rounds.values()) {
      if (!r.market || r.market.conditionId.toLowerCase() !== cid) continue;
      const idx = r.market.tokens.findIndex((t) => t.tokenId === winningTokenId);
      if (idx < 0) {
        this.fail(`market_resolved for ${r.slug} names an unknown token ${winningTokenId}`);
        return true;
      }
      if (r.phase !== 'resolved') {
        this.s.resolved_by_notify++;
        this.guard('resolve', () => this.resolve(r, idx));
      }
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------ planning

  private slug(startMs: number): string {
    const startS = Math.round(startMs / 1000);
    return (this.opts.slugFor ?? roundSlug)(this.asset, this.opts.roundSeconds, startS);
  }

  /** Creates the rounds whose lookup falls before the next planning run, then re-arms at the next boundary. */
  private plan(): void {
    if (!this.running) return;
    const now = this.now();
    const current = Math.floor(now / this.lenMs) * this.lenMs;
    const first = this.opts.includeCurrent === false && current < now ? current + this.lenMs : current;
    const horizon = now + this.lenMs + Math.max(0, this.opts.prefetchMs);
    for (let start = first; start <= horizon; start += this.lenMs) {
      if (!this.rounds.has(start)) this.addRound(start);
    }
    // A little after the boundary, so planning never competes with the `started` timers at it.
    const nextAt = current + this.lenMs + Math.min(1000, Math.floor(this.lenMs / 10));
    this.planTimer = this.at(undefined, nextAt, 'plan', () => this.plan());
  }

  private addRound(startMs: number): void {
    const r: Round = {
      slug: this.slug(startMs),
      startMs,
      endMs: startMs + this.lenMs,
      phase: 'lookup',
      upIdx: 0,
      downIdx: 1,
      tracked: false,
      startedSent: false,
      endingSent: false,
      lookupAttempts: 0,
      polling: false,
      resolveStartedAt: 0,
      timers: new Set(),
    };
    this.rounds.set(startMs, r);
    this.at(r, Math.max(this.now(), startMs - this.opts.prefetchMs), 'lookup', () => this.lookup(r));
    this.at(r, startMs, 'started', () => this.maybeStarted(r));
    this.at(r, Math.max(startMs, r.endMs - this.opts.endingLeadMs), 'ending', () => this.maybeEnding(r));
    this.at(r, r.endMs, 'end', () => this.onEnd(r));
  }

  // ------------------------------------------------------------ timers and isolation

  /**
   * Runs `fn` at wall-clock time `atMs`. Long timers fire late in proportion to their length (about
   * 1 ms per second measured on our VMs) and Date.now drifts from the timers' monotonic clock, so a
   * long wait is armed a little early and re-armed for what is left: the last leg is short and lands
   * within a millisecond or so. A timer that fires early never acts early.
   */
  private at(r: Round | undefined, atMs: number, what: string, fn: () => void | Promise<void>): unknown {
    const arm = (): unknown => {
      const remaining = Math.max(0, atMs - this.now());
      const delay = Math.min(MAX_TIMER_MS, remaining > 1000 ? remaining - Math.max(20, Math.floor(remaining / 50)) : remaining);
      const h = this.timers.setTimeout(() => {
        r?.timers.delete(h);
        if (!this.running) return;
        if (this.now() < atMs) {
          const h2 = arm();
          if (r === undefined) this.planTimer = h2;
          return;
        }
        this.guard(what, fn);
      }, delay);
      r?.timers.add(h);
      return h;
    };
    return arm();
  }

  private clearRoundTimers(r: Round): void {
    for (const h of r.timers) this.timers.clearTimeout(h);
    r.timers.clear();
  }

  /** Every entry point of a watcher goes through here: whatever goes wrong stays in this watcher's counters. */
  private guard(what: string, fn: () => void | Promise<void>): void {
    try {
      const p = fn();
      if (p && typeof (p as Promise<void>).then === 'function') {
        const tracked = (p as Promise<void>).catch((err: unknown) => this.fail(`${what}: ${errText(err)}`, true));
        this.inFlight.add(tracked);
        void tracked.finally(() => this.inFlight.delete(tracked));
      }
    } catch (err) {
      this.fail(`${what}: ${errText(err)}`, true);
    }
  }

  private fail(msg: string, callback = false): void {
    if (callback) this.s.callback_errors++;
    this.s.last_error = msg;
    this.log.warn({ asset: this.asset, error: msg }, 'round watcher problem');
  }

  private async callback(what: string, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.fail(`${what}: ${errText(err)}`, true);
    }
  }

  // ------------------------------------------------------------ lookup

  private async fetchMarket(slug: string): Promise<{ market?: ReturnType<typeof toMarketInfo>; raw?: GammaMarket; problem?: string; notFound?: boolean }> {
    const ans = await this.deps.gamma.marketBySlug(slug, this.abort.signal);
    if (ans.status === 404) return { notFound: true, problem: `not listed: ${slug}` };
    if (ans.status !== 200) return { problem: `lookup of ${slug} answered HTTP ${ans.status}: ${ans.text.slice(0, 200)}` };
    try {
      this.deps.onFrame?.({ source: 'round', conn: 0, recvTs: this.now(), data: ans.text });
    } catch (err) {
      this.fail(`onFrame: ${errText(err)}`, true);
    }
    let body: unknown;
    try {
      body = JSON.parse(ans.text);
    } catch {
      return { problem: `lookup of ${slug} answered a body that is not JSON` };
    }
    // Tolerate the listing shape (`[market]`) as well as the single object.
    const obj = Array.isArray(body) ? body.find((m) => (m as { slug?: unknown })?.slug === slug) : body;
    if (obj === undefined) return { notFound: true, problem: `not listed: ${slug}` };
    if (!checkGammaMarket.Check(obj)) return { problem: `lookup of ${slug} answered an invalid market` };
    if (obj.slug !== slug) return { problem: `lookup of ${slug} answered market ${obj.slug}` };
    const market = toMarketInfo(obj);
    if (market.tokens.length !== 2) return { problem: `${slug} has ${market.tokens.length} tokens, expected 2` };
    return { market, raw: obj };
  }

  private async lookup(r: Round): Promise<void> {
    if (!this.running || r.phase !== 'lookup') return;
    const now = this.now();
    if (now >= r.endMs) {
      this.s.abandoned++;
      this.fail(`${r.slug} not found before its end; skipped`);
      this.forget(r);
      return;
    }
    // A lookup due at the start itself can run before the start timer: restart the backoff here too,
    // or its retry would still wait the long pre-start interval.
    this.restartBackoffAtStart(r);
    this.s.lookups++;
    r.lookupAttempts++;
    let res: Awaited<ReturnType<AssetWatcher['fetchMarket']>>;
    try {
      res = await this.fetchMarket(r.slug);
    } catch (err) {
      res = { problem: `lookup of ${r.slug} failed: ${errText(err)}` };
    }
    if (!this.running || r.phase !== 'lookup') return;
    if (!res.market) {
      this.s.lookup_errors++;
      if (res.notFound) this.s.lookup_not_found++;
      this.s.last_error = res.problem ?? 'lookup failed';
      if (this.s.lookup_errors <= 5 || r.lookupAttempts === 1) this.log.debug({ asset: this.asset, slug: r.slug, problem: res.problem }, 'round lookup failed; retrying');
      const now2 = this.now();
      let at = now2 + reconnectDelay(r.lookupAttempts - 1, this.opts.lookupRetryMs ?? 1000, this.opts.maxLookupRetryMs ?? 15_000);
      // A backoff must not sleep through the window start: try again right at it instead.
      if (now2 < r.startMs && at > r.startMs) at = r.startMs;
      this.at(r, at, 'lookup', () => this.lookup(r));
      return;
    }
    this.found(r, res.market);
  }

  private found(r: Round, m: MarketInfo): void {
    r.market = m;
    r.phase = 'found';
    const up = m.tokens.findIndex((t) => t.outcome.toLowerCase() === 'up');
    const down = m.tokens.findIndex((t) => t.outcome.toLowerCase() === 'down');
    if (up >= 0 && down >= 0) {
      r.upIdx = up;
      r.downIdx = down;
    }
    const now = this.now();
    this.log.info({ asset: this.asset, slug: r.slug, market: m.conditionId, leadMs: r.startMs - now }, 'round market found');
    if (now >= r.endMs) {
      // Too late to trade it; only its outcome is still news.
      this.startResolution(r);
      return;
    }
    r.tracked = true;
    this.guard('track', () => this.callback('track', () => this.deps.track(m)));
    if (now >= r.startMs) this.maybeStarted(r);
    if (now >= r.endMs - this.opts.endingLeadMs) this.maybeEnding(r);
  }

  // ------------------------------------------------------------ lifecycle messages

  private message(r: Round, event: RoundMessage['event']): Unstamped<RoundMessage> {
    const m = r.market as MarketInfo;
    return {
      type: 'round',
      event,
      asset: this.asset,
      slug: r.slug,
      market: m.conditionId,
      up_token_id: (m.tokens[r.upIdx] as MarketInfo['tokens'][number]).tokenId,
      down_token_id: (m.tokens[r.downIdx] as MarketInfo['tokens'][number]).tokenId,
      start_ts: r.startMs,
      end_ts: r.endMs,
    };
  }

  private send(msg: Unstamped<RoundMessage>): void {
    let ok: boolean | void;
    try {
      ok = this.deps.publish(topics.round(this.asset), msg);
    } catch (err) {
      this.s.publish_failures++;
      this.fail(`publish ${msg.event}: ${errText(err)}`);
      return;
    }
    if (ok === false) {
      this.s.publish_failures++;
      this.s.last_error = `publish ${msg.event} of ${msg.slug} refused`;
    }
  }

  /** Still looking at the start: from now on each second counts, so the backoff starts over, once. */
  private restartBackoffAtStart(r: Round): void {
    if (r.phase === 'lookup' && !r.backoffRestarted && this.now() >= r.startMs) {
      r.backoffRestarted = true;
      r.lookupAttempts = 0;
    }
  }

  private maybeStarted(r: Round): void {
    this.restartBackoffAtStart(r);
    if (r.phase !== 'found' || r.startedSent) return;
    const now = this.now();
    if (now < r.startMs || now >= r.endMs) return;
    r.startedSent = true;
    this.send(this.message(r, 'started'));
    const delay = now - r.startMs;
    this.s.rounds_started++;
    this.s.last_start_delay_ms = delay;
    if (delay > LATE_MS) this.s.late_starts++;
  }

  private maybeEnding(r: Round): void {
    if (r.phase !== 'found' || r.endingSent || !r.startedSent) return;
    const now = this.now();
    if (now >= r.endMs) return;
    r.endingSent = true;
    this.send(this.message(r, 'ending'));
    this.s.rounds_ending++;
  }

  private onEnd(r: Round): void {
    if (r.phase === 'lookup') {
      this.s.abandoned++;
      this.fail(`${r.slug} not found before its end; skipped`);
      this.forget(r);
      return;
    }
    if (r.phase !== 'found') return;
    // The next window starts at this very instant: keep its `started` clear of HTTP work (the venue
    // never names a winner at the end itself anyway).
    this.at(r, r.endMs + Math.min(this.opts.resolvePollMs, FIRST_POLL_DELAY_MS), 'resolve-poll', () => this.startResolution(r));
  }

  private startResolution(r: Round): void {
    if (r.polling) return;
    r.polling = true;
    this.guard('resolve-poll', () => this.pollResolution(r));
  }

  private async pollResolution(r: Round): Promise<void> {
    if (!this.running || r.phase !== 'found') return;
    const now = this.now();
    if (r.resolveStartedAt === 0) r.resolveStartedAt = now;
    if (now - Math.max(r.endMs, r.resolveStartedAt) > (this.opts.resolveTimeoutMs ?? 2 * 3600_000)) {
      this.s.abandoned++;
      this.fail(`${r.slug} not resolved in time; untracked`);
      this.finish(r);
      return;
    }
    this.s.resolve_polls++;
    try {
      const res = await this.fetchMarket(r.slug);
      if (!this.running || r.phase !== 'found') return;
      if (res.raw && res.raw.closed) {
        const idx = winnerIndex(res.raw.outcomePrices);
        if (idx >= 0) {
          const tokenId = parseTokenIds(res.raw.clobTokenIds)[idx];
          const mine = r.market?.tokens.findIndex((t) => t.tokenId === tokenId) ?? -1;
          this.resolve(r, mine >= 0 ? mine : idx);
          return;
        }
      } else if (res.problem) {
        this.s.resolve_errors++;
        this.s.last_error = res.problem;
      }
    } catch (err) {
      if (!this.running) return;
      this.s.resolve_errors++;
      this.s.last_error = `resolution poll of ${r.slug} failed: ${errText(err)}`;
    }
    this.at(r, this.now() + Math.max(10, this.opts.resolvePollMs), 'resolve-poll', () => this.pollResolution(r));
  }

  private resolve(r: Round, tokenIdx: number): void {
    if (r.phase !== 'found' || !r.market) return;
    r.phase = 'resolved';
    this.clearRoundTimers(r);
    const token = r.market.tokens[tokenIdx];
    const label = token?.outcome.toLowerCase();
    const msg = this.message(r, 'resolved');
    if (token) msg.winning_token_id = token.tokenId;
    if (label === 'up') msg.winner = 'Up';
    else if (label === 'down') msg.winner = 'Down';
    this.send(msg);
    this.s.rounds_resolved++;
    this.log.info({ asset: this.asset, slug: r.slug, winner: msg.winner }, 'round resolved');
    this.finish(r);
  }

  /** Untracks (if tracked) and forgets a round. */
  private finish(r: Round): void {
    if (r.phase === 'found') r.phase = 'abandoned';
    const m = r.market;
    if (m && r.tracked) {
      r.tracked = false;
      this.guard('untrack', () => this.callback('untrack', () => this.deps.untrack(m)));
    }
    this.forget(r);
  }

  private forget(r: Round): void {
    if (r.phase === 'lookup') r.phase = 'abandoned';
    this.clearRoundTimers(r);
    this.rounds.delete(r.startMs);
  }
}

function parseTokenIds(s: string): string[] {
  try {
    const v: unknown = JSON.parse(s);
    return Array.isArray(v) ? v.map((x) => String(x)) : [];
  } catch {
    return [];
  }
}

export function createRoundWatchers(opts: RoundWatchersOptions, deps: RoundWatchersDeps): RoundWatchers {
  if (!Number.isInteger(opts.roundSeconds) || opts.roundSeconds < 1) throw new RangeError(`roundSeconds must be a positive integer, got ${opts.roundSeconds}`);
  const assets = [...new Set(opts.assets.map((a) => a.trim().toUpperCase()).filter(Boolean))];
  for (const a of assets) if (!ASSET_RE.test(a)) throw new RangeError(`round asset ${JSON.stringify(a)} must be letters and digits`);
  const watchers = assets.map((a) => new AssetWatcher(a, opts, deps));
  return {
    start() {
      for (const w of watchers) w.start();
    },
    async stop() {
      await Promise.all(watchers.map((w) => w.stop()));
    },
    stats() {
      return Object.fromEntries(watchers.map((w) => [w.asset, w.stats()]));
    },
    notifyResolved(conditionId, winningTokenId) {
      let matched = false;
      for (const w of watchers) {
        try {
          if (w.notifyResolved(conditionId, winningTokenId)) matched = true;
        } catch {
          // A watcher's own guard counts its failures; the others must still hear about it.
        }
      }
      return matched;
    },
  };
}
