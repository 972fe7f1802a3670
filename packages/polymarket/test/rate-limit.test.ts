import { describe, expect, it } from 'vitest';
import { CLOB_RATE_LIMITS, ManualClock, RateLimiter, RateLimitError, SIGNER_TIERS, type Admission, type EndpointRule } from '../src/rate-limit.js';

const SIGNER = '0xF39fd6e51aad88F6F4ce6aB8827279cffFb92266';
const S10 = 10_000;

/** Largest number of timestamps (sorted) inside any half-open window (t - w, t]. */
function maxInWindow(times: readonly number[], windowMs: number): number {
  let best = 0;
  let i = 0;
  for (let j = 0; j < times.length; j++) {
    while (times[i]! <= times[j]! - windowMs) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

/**
 * Whether admissions at `times` fit a token bucket (rate tokens/s, burst), each costing one:
 * for all i ≤ j, j - i + 1 ≤ burst + rate·(t_j - t_i). In ms and thousandths, all integers.
 */
function fitsTokenBucket(times: readonly number[], ratePerS: number, burst: number): boolean {
  let best = Number.NEGATIVE_INFINITY; // max over i of (rate·t_i - 1000·i)
  for (let j = 0; j < times.length; j++) {
    best = Math.max(best, ratePerS * times[j]! - 1000 * j);
    // (j - i + 1)·1000 ≤ burst·1000 + rate·(t_j - t_i)  ⇔  rate·t_i - 1000·i ≤ burst·1000 + rate·t_j - 1000·j - 1000
    if (best > burst * 1000 + ratePerS * times[j]! - 1000 * j - 1000) return false;
  }
  return true;
}

/**
 * The fastest any FIFO schedule can admit n requests under these limits: each admission at the
 * earliest instant every constraint allows (greedy is optimal for monotone constraints).
 * Continuous time, written independently of the implementation.
 */
function greedyOptimum(n: number, windows: { max: number; windowMs: number }[], token?: { ratePerS: number; burst: number }): number[] {
  const t: number[] = [];
  let level = token?.burst ?? 0;
  let lastT = 0;
  for (let k = 0; k < n; k++) {
    let at = k > 0 ? t[k - 1]! : 0;
    for (const w of windows) if (k >= w.max) at = Math.max(at, t[k - w.max]! + w.windowMs);
    if (token) {
      let lv = Math.min(token.burst, level + ((at - lastT) * token.ratePerS) / 1000);
      if (lv < 1) {
        at += ((1 - lv) * 1000) / token.ratePerS;
        lv = 1;
      }
      level = lv - 1;
      lastT = at;
    }
    t.push(at);
  }
  return t;
}

async function burst(limiter: RateLimiter, clock: ManualClock, n: number, endpoint = 'POST /order') {
  const t0 = clock.now();
  const order: number[] = [];
  const at: number[] = [];
  const all = Array.from({ length: n }, (_, i) =>
    limiter.acquire(endpoint, { signer: SIGNER, maxWaitMs: 3_600_000 }).then((a: Admission) => {
      order.push(i);
      at.push(a.at - t0);
    }),
  );
  await clock.runUntilSettled(Promise.all(all));
  return { order, at };
}

describe('ManualClock', () => {
  it('fires timers in time order, ties in creation order, and skips cleared ones', () => {
    const c = new ManualClock(0);
    const seen: string[] = [];
    c.setTimeout(() => seen.push('b'), 20);
    c.setTimeout(() => seen.push('a'), 10);
    const h = c.setTimeout(() => seen.push('x'), 15);
    c.setTimeout(() => seen.push('c'), 20);
    c.clearTimeout(h);
    expect(c.pending).toBe(3);
    c.advance(19);
    expect(seen).toEqual(['a']);
    expect(c.now()).toBe(19);
    c.advance(1);
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(c.pending).toBe(0);
  });

  it('runUntilSettled refuses to wait for a promise nothing can settle', async () => {
    const c = new ManualClock(0);
    await expect(c.runUntilSettled(new Promise(() => undefined))).rejects.toThrow(/no timer is pending/);
  });
});

describe('endpoint classes and limits', () => {
  const limiter = new RateLimiter({ clock: new ManualClock() });

  it('classifies endpoints and lists every window a request counts against', () => {
    expect(limiter.describe('POST /order')).toEqual({
      method: 'POST',
      path: '/order',
      endpointClass: 'POST /order',
      windows: ['POST /order 10s', 'POST /order 600s', 'CLOB general 10s', 'general 10s'],
      signerBucket: 'order',
    });
    expect(limiter.describe('DELETE /order')).toMatchObject({ endpointClass: 'DELETE /order', signerBucket: 'cancel' });
    expect(limiter.describe('POST /orders').signerBucket).toBe('order');
    expect(limiter.describe('DELETE /cancel-all').signerBucket).toBe('cancel');
    expect(limiter.describe('GET /data/orders?market=0x1&next_cursor=MA==')).toMatchObject({
      endpointClass: '/data/orders',
      windows: ['/data/orders 10s', 'ledger 10s', 'CLOB general 10s', 'general 10s'],
    });
    expect(limiter.describe('GET /data/order/0xabc').endpointClass).toBe('ledger');
    expect(limiter.describe('get https://clob.polymarket.com/book?token_id=1').endpointClass).toBe('/book');
    expect(limiter.describe('GET /time')).toMatchObject({ endpointClass: 'CLOB general', windows: ['CLOB general 10s', 'general 10s'] });
    expect(limiter.describe('GET /balance-allowance/update').endpointClass).toBe('UPDATE /balance-allowance');
    expect(() => limiter.describe('/order')).toThrow(/POST \/order/);
  });

  it('scales the published limits to 80 % by default, exactly', () => {
    const byName = Object.fromEntries(limiter.utilisation().map((u) => [u.name, u.capacity]));
    expect(byName['POST /order 10s']).toBe(2800);
    expect(byName['POST /order 600s']).toBe(28_800);
    expect(byName['DELETE /order 10s']).toBe(2400);
    expect(byName['POST /orders 10s']).toBe(800);
    expect(byName['DELETE /cancel-all 10s']).toBe(200);
    expect(byName['DELETE /cancel-market-orders 600s']).toBe(1200);
    expect(byName['CLOB general 10s']).toBe(7200);
    expect(byName['general 10s']).toBe(12_000);
    expect(byName['UPDATE /balance-allowance 10s']).toBe(40);
    // Every published window is present.
    expect(CLOB_RATE_LIMITS.flatMap((r) => r.limits).length + 2).toBe(limiter.utilisation().length);
  });

  it('creates per-signer buckets from the tier, scaled too', async () => {
    const clock = new ManualClock();
    const l = new RateLimiter({ clock });
    await l.acquire('POST /order', { signer: SIGNER });
    await l.acquire('DELETE /order', { signer: SIGNER });
    const tokens = l.utilisation().filter((u) => u.kind === 'token');
    expect(tokens).toEqual([
      { name: `signer ${SIGNER.toLowerCase()} order`, kind: 'token', used: 1, capacity: 48, utilisation: 1 / 48, ratePerS: 32 },
      { name: `signer ${SIGNER.toLowerCase()} cancel`, kind: 'token', used: 1, capacity: 96, utilisation: 1 / 96, ratePerS: 64 },
    ]);
    expect(SIGNER_TIERS.standard.order).toEqual({ ratePerS: 40, burst: 60, negativeBalance: true });
  });
});

describe('the 5,000-order burst (issue acceptance test)', () => {
  it('never exceeds a bucket in any 10 s window, admits all 5,000 in order, at the theoretical minimum time (standard tier)', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ clock });
    const { order, at } = await burst(limiter, clock, 5000);

    expect(order).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    // Per-endpoint and family windows (80 % of 3,500 / 36,000 / 9,000 / 15,000).
    expect(maxInWindow(at, S10)).toBeLessThanOrEqual(2800);
    expect(maxInWindow(at, 600_000)).toBeLessThanOrEqual(28_800);
    // Per-signer bucket (80 % of standard: 32/s, burst 48): in any 10 s at most 48 + 320.
    expect(maxInWindow(at, S10)).toBeLessThanOrEqual(48 + 32 * 10);
    expect(fitsTokenBucket(at, 32, 48)).toBe(true);
    expect(fitsTokenBucket(at, 32, 47)).toBe(false); // the check has teeth: the burst was used in full

    // (5,000 - 48) / 32 per s = 154.75 s, and the greedy optimum agrees.
    const optimum = greedyOptimum(5000, [{ max: 2800, windowMs: S10 }], { ratePerS: 32, burst: 48 });
    expect(optimum.at(-1)).toBeCloseTo(154_750, 6);
    expect(at.at(-1)!).toBeGreaterThanOrEqual(154_750);
    expect(at.at(-1)! - 154_750).toBeLessThanOrEqual(1);
    at.forEach((t, i) => expect(t - optimum[i]!).toBeLessThanOrEqual(1));
    expect(limiter.stats()).toMatchObject({ admitted: 5000, timedOut: 0, waiting: 0 });
  });

  it('with a generous signer tier the endpoint window binds instead, and is never exceeded either', async () => {
    const clock = new ManualClock();
    const tierLimits = { ratePerS: 1000, burst: 1500, negativeBalance: true };
    const limiter = new RateLimiter({ clock, signerTier: { order: tierLimits, cancel: tierLimits } });
    const { order, at } = await burst(limiter, clock, 5000);

    expect(order).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(maxInWindow(at, S10)).toBe(2800); // full use of the endpoint bucket, never more
    expect(maxInWindow(at, 600_000)).toBeLessThanOrEqual(28_800);
    expect(fitsTokenBucket(at, 800, 1200)).toBe(true);
    expect(maxInWindow(at, S10)).toBeLessThanOrEqual(1200 + 800 * 10);

    // 2,800 in the first 2 s, then nothing until the first 1,200 leave the window at 10 s, then the
    // rest as admissions expire and tokens refill: 11.25 s.
    const optimum = greedyOptimum(5000, [{ max: 2800, windowMs: S10 }, { max: 28_800, windowMs: 600_000 }], { ratePerS: 800, burst: 1200 });
    expect(optimum.at(-1)).toBeCloseTo(11_250, 6);
    expect(at.at(-1)! - optimum.at(-1)!).toBeGreaterThanOrEqual(-1e-6);
    expect(at.at(-1)! - optimum.at(-1)!).toBeLessThanOrEqual(1);
  });

  it('with no signer bucket the burst takes exactly one window', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({ clock, signerTier: false });
    const { at } = await burst(limiter, clock, 5000);
    expect(at.filter((t) => t === 0)).toHaveLength(2800);
    expect(at.at(-1)).toBe(S10);
    expect(maxInWindow(at, S10)).toBe(2800);
  });
});

describe('waiting', () => {
  const rule = (name: string, max: number, windowMs = 1000, extra: Partial<EndpointRule> = {}): EndpointRule => ({
    name,
    method: 'GET',
    paths: [`/${name}`],
    limits: [{ max, windowMs }],
    source: 'test',
    ...extra,
  });

  it('enforces burst and sustained windows of one class together', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({
      clock,
      share: 1,
      signerTier: false,
      rules: [{ name: 'x', method: 'GET', paths: ['/x'], limits: [{ max: 5, windowMs: 1000 }, { max: 8, windowMs: 10_000 }], source: 'test' }],
    });
    const { at } = await burst(limiter, clock, 20, 'GET /x');
    // 5 at once, 3 more a second later (the 10 s window is then full), and so on.
    expect(at).toEqual([0, 0, 0, 0, 0, 1000, 1000, 1000, 10_000, 10_000, 10_000, 10_000, 10_000, 11_000, 11_000, 11_000, 20_000, 20_000, 20_000, 20_000]);
  });

  it('is FIFO within a bucket: a batch is not starved by single orders behind it', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ clock, share: 1, signerTier: { order: { ratePerS: 10, burst: 10, negativeBalance: true }, cancel: SIGNER_TIERS.standard.cancel } });
    for (let i = 0; i < 8; i++) await limiter.acquire('POST /order', { signer: SIGNER }); // 2 tokens left
    const seen: string[] = [];
    const batch = limiter.acquire('POST /orders', { signer: SIGNER, cost: 5 }).then((a) => seen.push(`batch@${a.at}`));
    const single = limiter.acquire('POST /order', { signer: SIGNER }).then((a) => seen.push(`single@${a.at}`));
    await clock.runUntilSettled(Promise.all([batch, single]));
    // The single would fit at once, but the batch asked first: 3 more tokens take 300 ms.
    expect(seen).toEqual(['batch@300', 'single@400']);
  });

  it('does not hold other classes behind a throttled one', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ clock, share: 1, signerTier: false, rules: [rule('slow', 1, 60_000), rule('fast', 100)] });
    await limiter.acquire('GET /slow');
    const slow = limiter.acquire('GET /slow', { maxWaitMs: 120_000 });
    const fast = await limiter.acquire('GET /fast');
    expect(fast.at).toBe(0);
    expect(limiter.waiting).toBe(1);
    await clock.runUntilSettled(slow);
    expect((await slow).at).toBe(60_000);
  });

  it('charges a POST /orders batch once per request and N times per signer; refuses a batch above the burst', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ clock });
    await limiter.acquire('POST /orders', { signer: SIGNER, cost: 15 });
    const u = Object.fromEntries(limiter.utilisation().map((x) => [x.name, x.used]));
    expect(u['POST /orders 10s']).toBe(1);
    expect(u[`signer ${SIGNER.toLowerCase()} order`]).toBe(15);
    const err = await limiter.acquire('POST /orders', { signer: SIGNER, cost: 49 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err).toMatchObject({ code: 'too_large', notSent: true });
    expect((err as Error).message).toMatch(/costs 49 .* at most 48: split the batch/);
  });

  it('asks for the signer on order and cancel endpoints and for whole positive costs', async () => {
    const limiter = new RateLimiter({ clock: new ManualClock() });
    await expect(limiter.acquire('DELETE /order')).rejects.toMatchObject({ code: 'signer_required' });
    await expect(limiter.acquire('POST /orders', { signer: SIGNER, cost: 1.5 })).rejects.toMatchObject({ code: 'bad_cost' });
    await expect(limiter.acquire('POST /orders', { signer: SIGNER, cost: 0 })).rejects.toMatchObject({ code: 'bad_cost' });
    await expect(limiter.acquire('GET /book')).resolves.toMatchObject({ waitedMs: 0 });
  });

  it('an AbortSignal cancels a wait without consuming anything, and the next waiter moves up', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ clock, share: 1, signerTier: false, rules: [rule('one', 1, 1000)] });
    await limiter.acquire('GET /one');
    const ac = new AbortController();
    const cancelled = limiter.acquire('GET /one', { signal: ac.signal });
    const next = limiter.acquire('GET /one');
    await clock.advanceAsync(400);
    ac.abort(new Error('shutting down'));
    const err = await cancelled.catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'RateLimitError', code: 'aborted', waitedMs: 400 });
    expect((err as Error).cause).toEqual(new Error('shutting down'));
    await clock.runUntilSettled(next);
    expect((await next).at).toBe(1000);
    expect(limiter.stats()).toMatchObject({ aborted: 1, admitted: 2, waiting: 0 });
    // Already aborted: rejected at once.
    await expect(limiter.acquire('GET /one', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'aborted' });
  });

  it('rejects after the max wait with an error naming the blocking bucket', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ clock, share: 1, signerTier: false, rules: [rule('one', 1, 60_000)], maxWaitMs: 5000 });
    await limiter.acquire('GET /one');
    const p = limiter.acquire('GET /one');
    const err = await clock.runUntilSettled(p).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'timeout', waitedMs: 5000, notSent: true });
    expect((err as Error).message).toMatch(/GET \/one waited 5000 ms without a free slot \(one 60s\)/);
    expect(clock.now()).toBe(5000);
    expect(limiter.stats()).toMatchObject({ timedOut: 1, waiting: 0 });
  });

  it('pause() holds a class (queued waiters too) until the given time, and only that class', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ clock, signerTier: false });
    limiter.pause('GET /book?token_id=1', 7000);
    expect(limiter.pausedUntil('GET /book')).toBe(7000);
    expect(limiter.activePauses()).toEqual({ '/book': 7000 });
    const book = limiter.acquire('GET /book');
    expect((await limiter.acquire('GET /price')).at).toBe(0);
    limiter.pause('GET /book', 3000); // never shortened
    await clock.runUntilSettled(book);
    expect((await book).at).toBe(7000);
    expect(limiter.pausedUntil('GET /book')).toBe(0);
  });

  it('charge() puts a signer in debt after cancel-all, delaying its next cancel; tiers without debt floor at zero', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ clock, share: 1 });
    await limiter.acquire('DELETE /cancel-all', { signer: SIGNER });
    limiter.charge(SIGNER, 'cancel', 200); // 1 + 200 cancelled against a burst of 120 (80/s)
    const next = limiter.acquire('DELETE /order', { signer: SIGNER, maxWaitMs: 60_000 });
    await clock.runUntilSettled(next);
    // Balance 120 - 201 = -81 micro-exact; one token needs 82 tokens of refill at 80/s.
    expect((await next).at).toBe(1025);

    const other = '0x00000000000000000000000000000000000000aa';
    limiter.setSignerTier(other, 'elite');
    await limiter.acquire('DELETE /cancel-all', { signer: other });
    const t = clock.now();
    limiter.charge(other, 'cancel', 5000);
    const waited = limiter.acquire('DELETE /order', { signer: other });
    await clock.runUntilSettled(waited);
    // Floored at zero: one token at 1,200/s is less than a millisecond away, not four seconds.
    expect((await waited).at - t).toBe(1);
  });

  it('setSignerTier changes an existing bucket in place', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ clock, share: 1 });
    await limiter.acquire('POST /order', { signer: SIGNER });
    limiter.setSignerTier(SIGNER, 'gold');
    const u = limiter.utilisation().find((x) => x.name.endsWith(' order'));
    expect(u).toMatchObject({ capacity: 600, ratePerS: 400 });
  });

  it('close() rejects every waiter and later calls', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ clock, share: 1, signerTier: false, rules: [rule('one', 1, 1000)] });
    await limiter.acquire('GET /one');
    const p = limiter.acquire('GET /one');
    limiter.close();
    await expect(p).rejects.toMatchObject({ code: 'closed' });
    await expect(limiter.acquire('GET /one')).rejects.toMatchObject({ code: 'closed' });
    expect(clock.pending).toBe(0);
  });
});
