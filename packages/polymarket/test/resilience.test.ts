import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, RateLimiter } from '../src/rate-limit.js';
import {
  CircuitBreaker,
  classifyResult,
  fullJitterDelay,
  GateError,
  parseRetryAfter,
  retryIdempotent,
  VenueGate,
  type BreakerState,
  type GateEvent,
  type VenueGateOptions,
} from '../src/resilience.js';
import type { PostOrderOutcome } from '../src/clob-trading.js';
import { faultController, faultMetrics } from '../../../services/sim/src/faults.js';
import { orderBody, startSim, type RunningSim } from '../../../services/sim/test/helpers.js';

// A whole second, so HTTP-dates (second resolution) land exactly.
const T0 = Date.UTC(2026, 6, 1, 12, 0, 0);
const SIGNER = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}
const ok: Answer = { status: 200, body: { success: true } };
const tooMany = (retryAfter?: string): Answer => ({ status: 429, headers: retryAfter === undefined ? {} : { 'Retry-After': retryAfter }, body: { error: 'Too Many Requests' } });
const tooEarly: Answer = { status: 425, body: { error: 'Too Early' } };

/** A venue stand-in: answers from a script, records the clock time of every call. */
function scripted(clock: ManualClock, answers: (Answer | Error)[]) {
  const calls: number[] = [];
  const fn = async () => {
    calls.push(clock.now() - T0);
    const a = answers.length > 1 ? answers.shift()! : answers[0]!;
    if (a instanceof Error) throw a;
    return a;
  };
  return { fn, calls };
}

function setup(opts: Partial<VenueGateOptions> = {}, limiterOpts: ConstructorParameters<typeof RateLimiter>[0] = {}) {
  const clock = new ManualClock(T0);
  const events: GateEvent[] = [];
  const limiter = new RateLimiter({ clock, ...limiterOpts });
  const gate = new VenueGate({ limiter, random: () => 0, onEvent: (e) => events.push(e), ...opts });
  const drive = <T>(p: Promise<T>) => clock.runUntilSettled(p, { idle: () => gate.inFlight === 0 });
  return { clock, limiter, gate, events, drive };
}

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP-dates against the given clock', () => {
    expect(parseRetryAfter('3', T0)).toBe(3000);
    expect(parseRetryAfter(' 120 ', T0)).toBe(120_000);
    expect(parseRetryAfter('0', T0)).toBe(0);
    expect(parseRetryAfter('1.5', T0)).toBe(1500);
    expect(parseRetryAfter('Wed, 01 Jul 2026 12:00:07 GMT', T0)).toBe(7000);
    expect(parseRetryAfter(new Date(T0 + 90_000).toUTCString(), T0)).toBe(90_000);
    expect(parseRetryAfter('Wed, 01 Jul 2026 11:59:00 GMT', T0)).toBe(0); // in the past
    for (const bad of [null, undefined, '', '-1', '1e3', 'soon']) expect(parseRetryAfter(bad, T0)).toBeUndefined();
  });
});

describe('back-off', () => {
  it('full jitter stays within [0, min(max, base·2^(n-1))]', () => {
    const p = { baseMs: 100, maxMs: 1000 };
    expect(fullJitterDelay(1, p, () => 0)).toBe(0);
    expect(fullJitterDelay(1, p, () => 0.999_999)).toBe(100);
    expect(fullJitterDelay(3, p, () => 0.999_999)).toBe(400);
    expect(fullJitterDelay(10, p, () => 0.999_999)).toBe(1000);
    expect(fullJitterDelay(3, p, () => 0.5)).toBe(200);
  });

  it('retryIdempotent retries with jittered delays on the injected clock, then gives up', async () => {
    const clock = new ManualClock(0);
    let n = 0;
    const flaky = retryIdempotent(
      async () => {
        if (++n < 3) throw new Error(`boom ${n}`);
        return n;
      },
      { idempotent: true, clock, random: () => 0.5 },
    );
    expect(await clock.runUntilSettled(flaky)).toBe(3);
    expect(clock.now()).toBe(125 + 250); // half of 250 and of 500

    const hopeless = retryIdempotent(async () => Promise.reject(new Error('down')), { idempotent: true, clock, maxAttempts: 3 });
    await expect(clock.runUntilSettled(hopeless)).rejects.toThrow('down');
    await expect(retryIdempotent(async () => 1, { idempotent: false as true })).rejects.toThrow(/only operations marked idempotent/);
  });
});

describe('CircuitBreaker', () => {
  it('closed → open after N consecutive failures → half-open after the cool-down → one probe decides', () => {
    const clock = new ManualClock(0);
    const changes: string[] = [];
    const b = new CircuitBreaker({ clock, consecutiveFailures: 3, coolDownMs: 5000, onStateChange: (f, t) => changes.push(`${f}>${t}`) });
    const fail = () => {
      const p = b.tryAcquire();
      if (!p.ok) throw new Error('refused');
      b.record(p.permit, 'failure');
    };
    fail();
    fail();
    const s = b.tryAcquire();
    if (s.ok) b.record(s.permit, 'success'); // resets the streak
    fail();
    fail();
    expect(b.state()).toBe('closed');
    fail();
    expect(b.state()).toBe('open');
    const refused = b.tryAcquire();
    expect(refused).toMatchObject({ ok: false, retryAt: 5000, reason: expect.stringMatching(/circuit open/) });

    clock.advance(5000);
    expect(b.state()).toBe('half_open');
    const probe = b.tryAcquire();
    expect(probe).toMatchObject({ ok: true, permit: { probe: true } });
    expect(b.tryAcquire()).toMatchObject({ ok: false, reason: expect.stringMatching(/probe is in flight/) });
    if (probe.ok) b.record(probe.permit, 'failure');
    expect(b.state()).toBe('open');
    expect(b.snapshot()).toMatchObject({ state: 'open', openedAt: 5000, retryAt: 10_000, opened: 2 });

    clock.advance(5000);
    const probe2 = b.tryAcquire();
    if (probe2.ok) b.record(probe2.permit, 'success');
    expect(b.state()).toBe('closed');
    expect(changes).toEqual(['closed>open', 'open>half_open', 'half_open>open', 'open>half_open', 'half_open>closed']);
  });

  it('opens on a failure rate over the window, counting only recent calls', () => {
    const clock = new ManualClock(0);
    const b = new CircuitBreaker({ clock, consecutiveFailures: 100, failureRate: 0.5, minCalls: 10, windowMs: 10_000 });
    const call = (r: 'success' | 'failure') => {
      const p = b.tryAcquire();
      if (p.ok) b.record(p.permit, r);
    };
    for (let i = 0; i < 6; i++) call('failure');
    clock.advance(10_000); // those six leave the window
    for (let i = 0; i < 9; i++) call(i % 2 ? 'failure' : 'success');
    expect(b.snapshot()).toMatchObject({ state: 'closed', callsInWindow: 9, failuresInWindow: 4 });
    call('failure'); // 5 of 10
    expect(b.state()).toBe('open');
  });

  it('ignores answers to permits from before a state change and to calls never sent', () => {
    const clock = new ManualClock(0);
    const b = new CircuitBreaker({ clock, consecutiveFailures: 1, coolDownMs: 1000 });
    const early = b.tryAcquire();
    const trip = b.tryAcquire();
    if (trip.ok) b.record(trip.permit, 'failure');
    expect(b.state()).toBe('open');
    clock.advance(1000);
    if (early.ok) b.record(early.permit, 'success'); // a slow call from the closed era
    expect(b.state()).toBe('half_open');
    const probe = b.tryAcquire();
    if (probe.ok) b.record(probe.permit, 'ignore'); // e.g. the rate limiter gave up: slot freed
    expect(b.state()).toBe('half_open');
    expect(b.tryAcquire().ok).toBe(true);
  });
});

describe('classifyResult', () => {
  it('understands fetch Responses, plain answers and PostOrderOutcomes', async () => {
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
    expect(await classifyResult(json(200, { success: true }), T0)).toEqual({ type: 'ok' });
    expect(await classifyResult(json(429, { error: 'Too Many Requests' }, { 'retry-after': '9' }), T0)).toEqual({ type: 'throttled', retryAfterMs: 9000 });
    expect(await classifyResult(json(425, { error: 'Too Early' }), T0)).toEqual({ type: 'too_early' });
    expect(await classifyResult(json(503, { error: 'Trading is currently cancel-only' }), T0)).toMatchObject({ type: 'cancel_only' });
    expect(await classifyResult(json(503, { error: 'Trading is currently disabled. Check polymarket.com for updates' }), T0)).toMatchObject({
      type: 'cancel_only',
      reason: 'trading is disabled',
    });
    expect(await classifyResult(json(503, { error: 'upstream down' }), T0)).toMatchObject({ type: 'failure', status: 503 });
    const postOnly = json(400, { error: 'the matching engine is in post-only mode: only cancels and postOnly orders are accepted' });
    expect(await classifyResult(postOnly, T0)).toMatchObject({ type: 'post_only' });
    expect(await postOnly.json()).toMatchObject({ error: expect.any(String) }); // the caller can still read the body
    // A post-only order that would cross is an ordinary rejection, not the venue's mode.
    expect(await classifyResult({ status: 400, body: { error: 'invalid post-only order: order crosses book' } }, T0)).toMatchObject({ type: 'rejected' });
    expect(await classifyResult({ status: 404, body: 'nope' }, T0)).toMatchObject({ type: 'rejected', status: 404 });
    expect(await classifyResult({ status: 408 }, T0)).toMatchObject({ type: 'failure' });

    const outcomes: [PostOrderOutcome, string][] = [
      [{ kind: 'accepted', status: 200, response: { success: true, errorMsg: '', orderID: '0x1' } as never }, 'ok'],
      [{ kind: 'rejected', status: 400, errorMsg: 'not enough balance / allowance', retryable: false }, 'rejected'],
      [{ kind: 'rejected', status: 429, errorMsg: 'Too Many Requests', retryable: true, retryAfterMs: 2000 }, 'throttled'],
      [{ kind: 'rejected', status: 425, errorMsg: 'Too Early', retryable: true }, 'too_early'],
      [{ kind: 'ambiguous', status: 503, error: 'HTTP 503: Trading is currently cancel-only', code: 'http_503' }, 'cancel_only'],
      [{ kind: 'ambiguous', error: 'no answer within 10000 ms', code: 'timeout' }, 'failure'],
      [{ kind: 'not_sent', error: 'connect ECONNREFUSED', code: 'ECONNREFUSED' }, 'failure'],
    ];
    for (const [o, type] of outcomes) expect((await classifyResult(o, T0)).type, JSON.stringify(o)).toBe(type);
    expect(await classifyResult(outcomes[2]![0], T0)).toEqual({ type: 'throttled', retryAfterMs: 2000 });
  });
});

describe('VenueGate', () => {
  it('honours Retry-After seconds: the class pauses for everyone, other classes go on, the idempotent call retries after it', async () => {
    const { clock, limiter, events, drive } = setup();
    const book = scripted(clock, [tooMany('3'), ok]);
    const other = scripted(clock, [ok]);
    const price = scripted(clock, [ok]);
    let second: Promise<unknown> | undefined;
    let third: Promise<unknown> | undefined;
    const gateWithHook = new VenueGate({
      limiter,
      random: () => 0,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'throttled') {
          second = gateWithHook.run('GET /book', undefined, 'read', other.fn, { idempotent: false });
          third = gateWithHook.run('GET /price', undefined, 'read', price.fn, { idempotent: true });
        }
      },
    });
    const first = await drive(gateWithHook.run('GET /book?token_id=1', undefined, 'read', book.fn, { idempotent: true }));
    expect(first).toBe(ok);
    expect(book.calls).toEqual([0, 3000]);
    expect(events).toContainEqual({ type: 'throttled', endpoint: 'GET /book?token_id=1', endpointClass: '/book', until: T0 + 3000 });
    await drive(Promise.all([second, third]));
    expect(other.calls).toEqual([3000]); // held by the pause although it is not retried itself
    expect(price.calls).toEqual([0]); // another class is not paused
    expect(limiter.pausedUntil('GET /book')).toBe(0);
    expect(gateWithHook.snapshot().counters).toMatchObject({ throttled: 1, retries: 1, attempts: 4 });
  });

  it('honours Retry-After as an HTTP-date', async () => {
    const { clock, gate, drive } = setup();
    const s = scripted(clock, [tooMany('Wed, 01 Jul 2026 12:00:04 GMT'), ok]);
    await drive(gate.run('GET /data/orders', SIGNER, 'read', s.fn, { idempotent: true }));
    expect(s.calls).toEqual([0, 4000]);
  });

  it('pauses by a default second when a 429 has no Retry-After', async () => {
    const { clock, gate, drive } = setup();
    const s = scripted(clock, [tooMany(), ok]);
    await drive(gate.run('GET /book', undefined, 'read', s.fn, { idempotent: true }));
    expect(s.calls).toEqual([0, 1000]);
  });

  it('never retries a call not marked idempotent, whatever the answer', async () => {
    for (const answer of [tooMany('1'), tooEarly, { status: 500 }, new Error('ECONNRESET')]) {
      const { clock, gate, drive } = setup();
      const s = scripted(clock, [answer, ok]);
      const run = drive(gate.run('POST /order', SIGNER, 'order', s.fn, { idempotent: false }));
      if (answer instanceof Error) await expect(run).rejects.toBe(answer);
      else expect(await run).toBe(answer); // handed back to the caller, who knows what it means
      expect(s.calls, JSON.stringify(answer)).toHaveLength(1);
      expect(gate.snapshot().counters.retries).toBe(0);
    }
  });

  it('retries idempotent calls on failures with full-jitter back-off, up to maxAttempts, then returns the last answer', async () => {
    const { clock, gate, events, drive } = setup({ random: () => 0.999_999, retry: { maxAttempts: 4, baseMs: 100, maxMs: 1000 } });
    const s = scripted(clock, [{ status: 502 }, new Error('socket hang up'), { status: 500 }, { status: 503, body: { error: 'busy' } }]);
    const last = await drive(gate.run('DELETE /order', SIGNER, 'cancel', s.fn, { idempotent: true }));
    expect(last).toMatchObject({ status: 503 });
    expect(s.calls).toEqual([0, 100, 300, 700]);
    expect(events.filter((e) => e.type === 'retry').map((e) => (e as { verdict: string }).verdict)).toEqual(['failure', 'failure', 'failure']);
    // A definite answer is never repeated.
    const t = setup();
    const r = scripted(t.clock, [{ status: 400, body: { error: 'invalid order' } }, ok]);
    await t.drive(t.gate.run('DELETE /order', SIGNER, 'cancel', r.fn, { idempotent: true }));
    expect(r.calls).toHaveLength(1);
  });

  it('stops retrying at the deadline', async () => {
    const { clock, gate, drive } = setup({ random: () => 0.999_999, retry: { maxAttempts: 10, baseMs: 1000, maxMs: 60_000, deadlineMs: 5000 } });
    const s = scripted(clock, [{ status: 500 }]);
    await drive(gate.run('GET /book', undefined, 'read', s.fn, { idempotent: true }));
    expect(s.calls).toEqual([0, 1000, 3000]); // the next delay (4 s) would end past 5 s
  });

  it('runs a matching-engine restart: 425 → back-off → post-only window (orders refused, post-only and cancels allowed) → normal', async () => {
    const { clock, gate, events, drive } = setup({ mode: { postOnlyMs: 120_000 } });
    const order = scripted(clock, [tooEarly]);
    expect(await drive(gate.run('POST /order', SIGNER, 'order', order.fn, { idempotent: false }))).toBe(tooEarly);
    expect(gate.mode()).toBe('backoff');
    expect(gate.permits('read')).toEqual({ allowed: true });
    expect(gate.permits('cancel')).toMatchObject({ allowed: false, retryAt: T0 + 1000, reason: expect.stringMatching(/HTTP 425/) });
    const refused = await gate.run('POST /order', SIGNER, 'post_only_order', order.fn, { idempotent: false }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GateError);
    expect(refused).toMatchObject({ code: 'refused', attempts: 0, notSent: true, retryAt: T0 + 1000 });
    expect(order.calls).toHaveLength(1);

    // Back-off over: one probe at a time; here a cancel that meets two more 425s (2 s, then 4 s).
    await clock.advanceAsync(1000);
    expect(gate.mode()).toBe('post_only');
    expect(gate.permits('order')).toMatchObject({ allowed: false });
    const cancel = scripted(clock, [tooEarly, tooEarly, ok]);
    const probe = gate.run('DELETE /order', SIGNER, 'cancel', cancel.fn, { idempotent: true });
    // While the probe is out nothing else goes (no storm), not even a post-only order.
    const second = await gate.run('POST /order', SIGNER, 'post_only_order', order.fn, { idempotent: false }).catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'refused', reason: expect.stringMatching(/probe is in flight/) });
    await drive(probe);
    expect(cancel.calls).toEqual([1000, 3000, 7000]);

    // The engine answered: post-only for two minutes from then.
    expect(gate.mode()).toBe('post_only');
    expect(gate.modes.snapshot()).toMatchObject({ mode: 'post_only', until: T0 + 127_000 });
    const taker = await gate.run('POST /order', SIGNER, 'order', order.fn, { idempotent: false }).catch((e: unknown) => e);
    expect(taker).toMatchObject({ code: 'refused', reason: expect.stringMatching(/post-only window .*only post-only orders and cancels/) });
    const maker = scripted(clock, [ok]);
    expect(await drive(gate.run('POST /order', SIGNER, 'post_only_order', maker.fn, { idempotent: false }))).toBe(ok);
    expect(await drive(gate.run('DELETE /order', SIGNER, 'cancel', scripted(clock, [ok]).fn, { idempotent: true }))).toBe(ok);

    await clock.advanceAsync(120_000);
    expect(gate.mode()).toBe('normal');
    const normal = scripted(clock, [ok]);
    expect(await drive(gate.run('POST /order', SIGNER, 'order', normal.fn, { idempotent: false }))).toBe(ok);
    const modes = events.filter((e) => e.type === 'mode').map((e) => (e as { to: string }).to);
    expect(modes[0]).toBe('backoff');
    expect(modes.at(-1)).toBe('normal');
    expect(gate.snapshot().counters.tooEarly).toBe(3);
  });

  it('learns a post-only window it did not see start from the rejection text', async () => {
    const { clock, gate, drive } = setup();
    const s = scripted(clock, [{ status: 400, body: { error: 'the matching engine is in post-only mode: only cancels and postOnly orders are accepted' } }]);
    await drive(gate.run('POST /order', SIGNER, 'order', s.fn, { idempotent: false }));
    expect(gate.mode()).toBe('post_only');
    expect(gate.permits('post_only_order')).toEqual({ allowed: true });
    expect(gate.permits('order').allowed).toBe(false);
  });

  it('503 cancel-only: new orders are refused locally, cancels pass, until the window ends', async () => {
    const { clock, gate, drive } = setup({ mode: { cancelOnlyMs: 30_000 } });
    const outcome: PostOrderOutcome = { kind: 'ambiguous', status: 503, error: 'HTTP 503: Trading is currently cancel-only', code: 'http_503' };
    const s = scripted(clock, [outcome as never]);
    expect(await drive(gate.run('POST /order', SIGNER, 'order', s.fn, { idempotent: false }))).toBe(outcome);
    expect(gate.mode()).toBe('cancel_only');
    for (const kind of ['order', 'post_only_order'] as const) {
      await expect(gate.run('POST /order', SIGNER, kind, s.fn, { idempotent: false })).rejects.toMatchObject({ code: 'refused', reason: expect.stringMatching(/cancel-only/) });
    }
    expect(await drive(gate.run('DELETE /order', SIGNER, 'cancel', scripted(clock, [ok]).fn, { idempotent: true }))).toBe(ok);
    expect(gate.snapshot().breakers['POST /order']).toMatchObject({ state: 'closed', consecutiveFailures: 0 }); // a refusal, not a failure
    await clock.advanceAsync(30_000);
    expect(gate.mode()).toBe('normal');
  });

  it('opens the breaker of a class after repeated failures, refuses without calling, then probes after the cool-down', async () => {
    const changes: [string, BreakerState, BreakerState][] = [];
    const { clock, gate, drive } = setup({
      breaker: { consecutiveFailures: 3, coolDownMs: 5000 },
      onEvent: (e) => {
        if (e.type === 'breaker') changes.push([e.endpointClass, e.from, e.to]);
      },
    });
    const down = scripted(clock, [{ status: 500 }, { status: 502 }, new Error('ETIMEDOUT')]);
    for (let i = 0; i < 3; i++) await drive(gate.run('GET /book', undefined, 'read', down.fn, { idempotent: false })).catch(() => undefined);
    expect(gate.snapshot().breakers['/book']).toMatchObject({ state: 'open', retryAt: T0 + 5000 });
    const refused = await gate.run('GET /book', undefined, 'read', down.fn, { idempotent: true }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'circuit_open', attempts: 0, retryAt: T0 + 5000 });
    expect(down.calls).toHaveLength(3);
    // Another endpoint class has its own breaker.
    expect(await drive(gate.run('GET /price', undefined, 'read', scripted(clock, [ok]).fn, { idempotent: false }))).toBe(ok);

    await clock.advanceAsync(5000);
    const up = scripted(clock, [ok]);
    expect(await drive(gate.run('GET /book', undefined, 'read', up.fn, { idempotent: false }))).toBe(ok);
    expect(changes).toEqual([
      ['/book', 'closed', 'open'],
      ['/book', 'open', 'half_open'],
      ['/book', 'half_open', 'closed'],
    ]);
  });

  it('an AbortSignal cancels a wait in the gate: nothing is sent', async () => {
    const { clock, gate, drive } = setup();
    await drive(gate.run('GET /book', undefined, 'read', scripted(clock, [tooMany('10')]).fn, { idempotent: false }));
    const ac = new AbortController();
    const s = scripted(clock, [ok]);
    const waiting = gate.run('GET /book', undefined, 'read', s.fn, { idempotent: true, signal: ac.signal });
    await clock.advanceAsync(1000);
    ac.abort();
    const err = await waiting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GateError);
    expect(err).toMatchObject({ code: 'aborted', attempts: 0 });
    expect(s.calls).toEqual([]);

    // Aborted during a retry back-off: one attempt did go out.
    const t = setup({ random: () => 0.999_999 });
    const ac2 = new AbortController();
    const r = scripted(t.clock, [{ status: 500 }]);
    const retrying = t.gate.run('GET /book', undefined, 'read', r.fn, { idempotent: true, signal: ac2.signal });
    await t.clock.advanceAsync(100);
    ac2.abort();
    await expect(retrying).rejects.toMatchObject({ code: 'aborted', attempts: 1 });
    expect(r.calls).toEqual([0]);
  });

  it('reports a rate-limit wait that ran out as a GateError, and a batch too large for the signer bucket at once', async () => {
    const { clock, gate, drive } = setup({}, { maxWaitMs: 2000 });
    await drive(gate.run('GET /book', undefined, 'read', scripted(clock, [tooMany('60')]).fn, { idempotent: false }));
    const s = scripted(clock, [ok]);
    const err = await drive(gate.run('GET /book', undefined, 'read', s.fn, { idempotent: true })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'GateError', code: 'rate_limit', attempts: 0 });
    expect((err as Error).message).toMatch(/waited 2000 ms .*pause \/book/);
    await expect(gate.run('POST /orders', SIGNER, 'order', s.fn, { idempotent: false, cost: 500 })).rejects.toMatchObject({ code: 'rate_limit', message: expect.stringMatching(/split the batch/) });
    expect(s.calls).toEqual([]);
  });

  it('insists that every call says whether it is idempotent', async () => {
    const { gate } = setup();
    await expect(gate.run('GET /book', undefined, 'read', async () => ok, {} as never)).rejects.toThrow(/idempotent/);
  });
});

// ------------------------------------------------------------------ against the simulator

describe('VenueGate against the simulator (fault routes on)', () => {
  const SECRET = 'gate-test-admin-secret';
  let sim: RunningSim;
  let token: string;

  beforeAll(async () => {
    sim = await startSim({ POLYBOT_SIM_MARKETS: '1', POLYBOT_SIM_EVENT_RATE: '0', POLYBOT_SIM_ADMIN_SECRET: SECRET });
    token = sim.service.exchange.markets[0]!.tokenIds[0];
  });
  afterAll(async () => {
    await sim?.stop();
  });

  const admin = async (path: string, body: unknown) => {
    const res = await fetch(`${sim.base}/admin/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-admin-secret': SECRET }, body: JSON.stringify(body) });
    expect(res.status, path).toBe(200);
    return res.json();
  };
  const get = (path: string) => fetch(`${sim.base}${path}`);
  const send = (method: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${sim.base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const restingBuy = (extra: Record<string, unknown> = {}) => ({ ...orderBody({ tokenId: token, side: 'BUY', price: '0.01', shares: '5', owner: 'gate' }), ...extra });
  const sim429s = () => faultMetrics(sim.service.exchange).fault_429s ?? 0;

  /**
   * One fake clock for the gate and the simulator's rate windows, so a window of 10 s costs no
   * wall-clock time and nothing depends on machine speed. Time only moves while no request is
   * in flight, so the simulator sees each request at the instant the gate admitted it.
   */
  function harness(share: number, clock = new ManualClock(Math.ceil(Date.now() / 1000) * 1000)) {
    faultController(sim.service.exchange)!.clock = () => clock.now();
    const limiter = new RateLimiter({ clock, share, signerShare: 0.8, maxWaitMs: 120_000 });
    const events: GateEvent[] = [];
    const gate = new VenueGate({ limiter, random: () => 0, onEvent: (e) => events.push(e) });
    const drive = <T>(p: Promise<T>) => clock.runUntilSettled(p, { idle: () => gate.inFlight === 0 });
    return { clock, limiter, gate, events, drive };
  }

  it('keeps a stream under the simulator’s 429 threshold and pauses the class on a forced 429 with Retry-After', async () => {
    // The simulator at 1 % of the published limits: /book and /price 15 per 10 s, POST /order 35.
    await admin('faults/reset', {});
    await admin('faults', { rate_limit_scale: 0.01 });
    // Our share: 80 % of that (0.8 × 1 %): 12 per 10 s for /book, 28 for POST /order.
    const { clock, limiter, gate, events, drive } = harness(0.008);

    // The threshold is real: an unpaced burst of 16 gets a 429 on the 16th.
    const raw: number[] = [];
    for (let i = 0; i < 16; i++) raw.push((await get(`/price?token_id=${token}&side=BUY`)).status);
    expect(raw).toEqual([...Array<number>(15).fill(200), 429]);
    await clock.advanceAsync(10_000);

    // 40 reads through the gate: 12 per window, no 429.
    const before = sim429s();
    const t0 = clock.now();
    const admittedAt: number[] = [];
    for (let i = 0; i < 40; i++) {
      const fn = async () => {
        admittedAt.push(clock.now() - t0);
        return get(`/book?token_id=${token}`);
      };
      const res = await drive(gate.run(`GET /book?token_id=${token}`, undefined, 'read', fn, { idempotent: true }));
      expect(res.status).toBe(200);
    }
    expect(sim429s()).toBe(before);
    expect(admittedAt.filter((t) => t === 0)).toHaveLength(12);
    expect(admittedAt.at(-1)).toBe(30_000);
    await clock.advanceAsync(10_000);

    // 40 new orders through the gate (not idempotent: each is a new signature), all accepted, no 429.
    const placedAt: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t = clock.now();
      const fn = async () => {
        placedAt.push(clock.now() - t);
        return send('POST', '/order', restingBuy());
      };
      const res = await drive(gate.run('POST /order', SIGNER, 'order', fn, { idempotent: false }));
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ success: true });
    }
    expect(sim429s()).toBe(before);
    expect(placedAt.filter((d) => d > 0)).toHaveLength(1); // the 29th waited for the window
    await clock.advanceAsync(10_000);

    // Someone else fills the /book window behind the gate's back: the gate's next call meets a 429.
    for (let i = 0; i < 15; i++) expect((await get(`/book?token_id=${token}`)).status).toBe(200);
    const T = clock.now();
    const calls: { what: string; at: number; status?: number }[] = [];
    const track = (what: string, path: string) => async () => {
      const entry: { what: string; at: number; status?: number } = { what, at: clock.now() - T };
      calls.push(entry);
      const res = await get(path);
      entry.status = res.status;
      return res;
    };
    const seen = events.length;
    const first = gate.run('GET /book', undefined, 'read', track('first', `/book?token_id=${token}`), { idempotent: true });
    // Fake time stands still meanwhile: only the real request moves.
    while (!events.slice(seen).some((e) => e.type === 'throttled')) await new Promise((r) => setImmediate(r));
    expect(limiter.pausedUntil('GET /book')).toBe(T + 10_000); // Retry-After: 10 from the simulator
    // Calls made while the class is paused: another /book (waits) and a /price (does not).
    const second = gate.run('GET /book', undefined, 'read', track('second', `/book?token_id=${token}`), { idempotent: false });
    const price = gate.run('GET /price', undefined, 'read', track('price', `/price?token_id=${token}&side=BUY`), { idempotent: false });
    const [a, b, c] = await drive(Promise.all([first, second, price]));
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    expect(calls).toEqual([
      { what: 'first', at: 0, status: 429 },
      { what: 'price', at: 0, status: 200 },
      { what: 'first', at: 10_000, status: 200 },
      { what: 'second', at: 10_000, status: 200 },
    ]);
    expect(sim429s()).toBe(before + 1); // only the forced one
  });

  it('follows the simulator through a matching-engine restart: 425, back-off, post-only, normal', async () => {
    await admin('faults/reset', {});
    const { clock, gate, drive } = harness(0.8);
    await admin('faults', { too_early_s: 5, post_only_s: 20 });

    const post = (body: unknown) => async () => send('POST', '/order', body);
    const first = await drive(gate.run('POST /order', SIGNER, 'order', post(restingBuy()), { idempotent: false }));
    expect(first.status).toBe(425);
    expect(gate.mode()).toBe('backoff');

    // A resting post-only order, re-posted (same signature) until the engine takes it.
    const body = restingBuy({ postOnly: true });
    await clock.advanceAsync(1000);
    const placed = await drive(gate.run('POST /order', SIGNER, 'post_only_order', post(body), { idempotent: true }));
    expect(placed.status).toBe(200);
    expect(await placed.json()).toMatchObject({ success: true });
    expect(gate.mode()).toBe('post_only');

    // Taker orders are refused locally now, with the reason; the simulator would refuse them too.
    await expect(gate.run('POST /order', SIGNER, 'order', post(restingBuy()), { idempotent: false })).rejects.toMatchObject({
      code: 'refused',
      reason: expect.stringMatching(/post-only/),
    });
    // And if we had not known, the simulator's text would have told us.
    const { gate: naive, drive: driveNaive } = harness(0.8, clock);
    const told = await driveNaive(naive.run('POST /order', SIGNER, 'order', post(restingBuy()), { idempotent: false }));
    expect(told.status).toBe(400);
    expect(naive.mode()).toBe('post_only');

    // Our window (2 minutes from the first answer) outlasts the simulator's 20 s; then trading resumes.
    await clock.advanceAsync(120_000);
    expect(gate.mode()).toBe('normal');
    const taker = await drive(gate.run('POST /order', SIGNER, 'order', post(restingBuy()), { idempotent: false }));
    expect(taker.status).toBe(200);
    expect(await taker.json()).toMatchObject({ success: true });
    expect(faultMetrics(sim.service.exchange)).toMatchObject({ fault_425s: 3, fault_post_only_rejected: 1 });
  });
});
