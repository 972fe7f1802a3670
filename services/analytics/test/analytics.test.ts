import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusError, BusPublisher, BusRequester, resolveEndpoints, type Endpoints } from '@polybot/bus';
import { loadConfig, ServiceRunner } from '@polybot/core';
import { topics, type PriceMessage, type Unstamped } from '@polybot/protocol';
import { tempDataDir, waitFor } from '@polybot/testkit';
import { AnalyticsConfig, createAnalyticsService, type AnalyticsService } from '../src/index.js';

let tmp: ReturnType<typeof tempDataDir>;
let ep: Endpoints;
const closers: Array<() => Promise<unknown> | unknown> = [];

beforeEach(() => {
  tmp = tempDataDir('pban');
  ep = resolveEndpoints(tmp.dir, {});
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  tmp.cleanup();
});

const price = (token: string, bid: number | null, venueTs: number): Unstamped<PriceMessage> => ({
  type: 'price', token_id: token, market: '0xm', bid, ask: bid === null ? null : bid + 0.02,
  mid: bid === null ? null : bid + 0.01, bid_size: 5, ask_size: 7, venue_ts: venueTs,
});

let service: AnalyticsService | undefined;

// A long flush interval: queries and stop must commit on their own.
async function startAnalytics(flushMs = 60_000): Promise<ServiceRunner<AnalyticsConfig>> {
  const config = loadConfig(AnalyticsConfig, {
    env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_LOG_LEVEL: 'silent', POLYBOT_ANALYTICS_FLUSH_MS: String(flushMs) },
    envFile: false,
  });
  const runner = new ServiceRunner({
    name: 'analytics',
    config,
    create: (ctx) => (service = createAnalyticsService(ctx)),
    env: {},
  });
  await runner.start();
  return runner;
}

function requester(): BusRequester {
  const req = new BusRequester({ endpoint: ep['analytics.rep'], src: 'test', timeoutMs: 3000 });
  closers.push(() => req.close());
  return req;
}

/** Publishes a marker until analytics has stored one: the SUB side joins asynchronously. */
async function joined(pub: BusPublisher, req: BusRequester): Promise<void> {
  await waitFor(async () => {
    pub.publish(topics.price('warm'), price('warm', 0.5, Date.now()));
    const r = await req.call('prices.recent', { token_id: 'warm', limit: 1 });
    return r.rows.length > 0;
  }, { what: 'analytics to receive prices', intervalMs: 100 });
}

describe('analytics service', () => {
  it('stores published prices, answers prices.recent newest first and keeps them across a restart', async () => {
    const pub = new BusPublisher({ endpoint: ep['prices.pub'], mode: 'bind', src: 'scanner' });
    await pub.start();
    closers.push(() => pub.close());
    let runner = await startAnalytics();
    let stopped = false;
    closers.push(() => (stopped ? undefined : runner.stop()));
    const req = requester();
    await joined(pub, req);

    const base = 1_700_000_000_000;
    for (let i = 0; i < 20; i++) pub.publish(topics.price('tokA'), price('tokA', i === 7 ? null : i / 100, base + i * 1000));
    pub.publish(topics.price('tokB'), price('tokB', 0.9, base));

    const all = await waitFor(async () => {
      const r = await req.call('prices.recent', { token_id: 'tokA' });
      return r.rows.length === 20 ? r : undefined;
    }, { what: '20 rows of tokA' });
    expect(all.token_id).toBe('tokA');
    expect(all.rows[0]).toEqual({ ts: base + 19_000, bid: 0.19, ask: 0.21, mid: 0.2 });
    expect(all.rows.map((r) => r.ts)).toEqual([...all.rows.map((r) => r.ts)].sort((a, b) => b - a));
    expect(all.rows.find((r) => r.ts === base + 7000)).toEqual({ ts: base + 7000, bid: null, ask: null, mid: null });

    const limited = await req.call('prices.recent', { token_id: 'tokA', limit: 3 });
    expect(limited.rows.map((r) => r.ts)).toEqual([base + 19_000, base + 18_000, base + 17_000]);
    const since = await req.call('prices.recent', { token_id: 'tokA', since_ts: base + 15_000 });
    expect(since.rows).toHaveLength(5);
    const none = await req.call('prices.recent', { token_id: 'nothing' });
    expect(none).toEqual({ token_id: 'nothing', rows: [] });

    // Publish more, stop right away: stop must commit what the appender still buffers.
    const marker = base + 100_000;
    const before = Number(service!.metrics!().rows_appended);
    expect(service!.metrics!()).toMatchObject({ rows_pending: 0, queries: expect.any(Number) as number });
    pub.publish(topics.price('tokC'), price('tokC', 0.3, marker));
    await waitFor(() => Number(service!.metrics!().rows_appended) === before + 1, { what: 'tokC appended' });
    expect(service!.metrics!().rows_pending).toBe(1);
    await runner.stop();
    stopped = true;

    runner = await startAnalytics();
    stopped = false;
    const again = await req.call('prices.recent', { token_id: 'tokA' });
    expect(again.rows).toEqual(all.rows);
    const c = await req.call('prices.recent', { token_id: 'tokC' });
    expect(c.rows.map((r) => r.ts)).toEqual([marker]);
  });

  it('answers bad params with an error code and keeps serving', async () => {
    const runner = await startAnalytics(100);
    closers.push(() => runner.stop());
    const req = requester();
    const bad = (params: Record<string, unknown>) => req.request('prices.recent', params).then(() => undefined, (e: unknown) => e);
    for (const params of [{ token_id: 'bad token!' }, { token_id: 'x', limit: 0 }, { token_id: 'x', limit: 1.5 }, {}, { token_id: 'x', since_ts: -1 }]) {
      const err = await bad(params);
      expect(err).toBeInstanceOf(BusError);
      expect((err as BusError).remoteCode).toBe('bad_params');
    }
    expect(await req.call('prices.recent', { token_id: 'x' })).toEqual({ token_id: 'x', rows: [] });
  });
});
