import { loadConfig, ServiceRunner } from '@polybot/core';
import { sleep, tempDataDir, waitFor } from '@polybot/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ERR_POST_ONLY, faultController, faultMetrics, type FaultController } from '../src/faults.js';
import { createSimService, SimConfig, type SimService } from '../src/index.js';
import { orderBody, WsClient, type RunningSim } from './helpers.js';

const SECRET = 'test-admin-secret';

/**
 * Like helpers.startSim, but the admin secret reaches the server even while SimConfig does not
 * declare POLYBOT_SIM_ADMIN_SECRET (loadConfig drops unknown keys): it is laid over the loaded config.
 */
async function startFaultSim(env: Record<string, string>, secret?: string): Promise<RunningSim> {
  const tmp = tempDataDir('pbflt');
  const loaded = loadConfig(SimConfig, {
    env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_SIM_PORT: '0', POLYBOT_LOG_LEVEL: 'silent', POLYBOT_SIM_REQUIRE_AUTH: 'false', POLYBOT_SIM_TRADERS: '0', ...env, ...(secret ? { POLYBOT_SIM_ADMIN_SECRET: secret } : {}) },
    envFile: false,
  });
  const config = (secret ? { ...loaded, POLYBOT_SIM_ADMIN_SECRET: secret } : loaded) as SimConfig;
  let service: SimService | undefined;
  const runner = new ServiceRunner({ name: 'sim', config, env: { POLYBOT_DATA_DIR: tmp.dir }, create: (ctx) => (service = createSimService(ctx)) });
  await runner.start();
  if (!service) throw new Error('service not created');
  const port = service.port;
  return {
    service,
    base: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws/market`,
    async stop() {
      await runner.stop();
      tmp.cleanup();
    },
  };
}

async function call(
  sim: RunningSim,
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; secret?: string | null } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const secret = opts.secret === undefined ? SECRET : opts.secret;
  if (secret !== null) headers['x-admin-secret'] = secret;
  const res = await fetch(`${sim.base}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain-text routes (GET /ok)
  }
  return { status: res.status, body, headers: res.headers };
}

const admin = (sim: RunningSim, path: string, body?: unknown) => call(sim, body === undefined && path.endsWith('faults') ? 'GET' : 'POST', `/admin/${path}`, { body });

/** A GTC BUY at 0.01: far under every maker bid, so it rests (fresh salt each call). */
const restingBuy = (sim: RunningSim, owner: string, extra: Record<string, unknown> = {}) => ({
  ...orderBody({ tokenId: sim.service.exchange.markets[0]!.tokenIds[0], side: 'BUY', price: '0.01', shares: '5', owner }),
  ...extra,
});

describe('fault admin routes without a secret', () => {
  let sim: RunningSim;
  beforeAll(async () => {
    sim = await startFaultSim({ POLYBOT_SIM_MARKETS: '1', POLYBOT_SIM_EVENT_RATE: '0' });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('answers 404 on every admin route, with or without a header', async () => {
    for (const [method, path] of [
      ['GET', '/admin/faults'],
      ['POST', '/admin/faults'],
      ['POST', '/admin/faults/reset'],
      ['POST', '/admin/ws/drop'],
      ['POST', '/admin/ws/freeze'],
      ['POST', '/admin/fund'],
    ] as const) {
      const r = await call(sim, method, path, { secret: 'anything' });
      expect(r.status, `${method} ${path}`).toBe(404);
    }
    expect((await call(sim, 'GET', '/ok')).status).toBe(200);
  });
});

describe('faults on demand', () => {
  let sim: RunningSim;
  let ctl: FaultController;
  let t = 0;
  beforeAll(async () => {
    sim = await startFaultSim({ POLYBOT_SIM_MARKETS: '2', POLYBOT_SIM_EVENT_RATE: '0' }, SECRET);
    ctl = faultController(sim.service.exchange)!;
  });
  afterAll(async () => {
    await sim?.stop();
  });
  beforeEach(async () => {
    ctl.clock = Date.now;
    expect((await admin(sim, 'faults/reset')).status).toBe(200);
  });
  const fakeClock = () => {
    t = 1_800_000_000_000;
    ctl.clock = () => t;
  };

  it('authenticates admin calls by x-admin-secret', async () => {
    expect((await call(sim, 'GET', '/admin/faults', { secret: null })).status).toBe(401);
    const wrong = await call(sim, 'GET', '/admin/faults', { secret: 'nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: expect.any(String) });
    expect((await call(sim, 'POST', '/admin/ws/drop', { secret: `${SECRET}x` })).status).toBe(401);
    const ok = await admin(sim, 'faults');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ latency_ms: 0, error_rate: 0, post_only_s: 120, rate_limits: true, rate_limit_scale: 1, phase: 'normal' });
  });

  it('validates the fault body: unknown fields and out-of-range values are 400', async () => {
    for (const body of [{ nope: 1 }, { error_rate: 1.5 }, { latency_ms: -1 }, { rate_limit_scale: 0 }, { rate_limits: 'yes' }]) {
      const r = await admin(sim, 'faults', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toMatch(/invalid body/);
    }
    expect((await admin(sim, 'ws/freeze', { seconds: 1, extra: true })).status).toBe(400);
    expect((await admin(sim, 'fund', { address: '0xabc' })).status).toBe(400);
  });

  it('error_rate 1 turns every REST call into a 500, but not the admin routes', async () => {
    const r = await admin(sim, 'faults', { error_rate: 1 });
    const accepted = sim.service.exchange.stats.ordersAccepted;
    const rejected = sim.service.exchange.stats.ordersRejected;
    expect(r.body).toMatchObject({ error_rate: 1 });
    const token = sim.service.exchange.markets[0]!.tokenIds[0];
    for (const [method, path, body] of [
      ['GET', '/ok', undefined],
      ['GET', `/book?token_id=${token}`, undefined],
      ['GET', '/markets', undefined],
      ['POST', '/order', restingBuy(sim, 'err')],
      ['GET', '/no-such-route', undefined],
    ] as const) {
      const res = await call(sim, method, path, { body, secret: null });
      expect(res.status, path).toBe(500);
      expect(res.body).toEqual({ error: 'internal error' });
    }
    // The order never reached the exchange.
    expect([sim.service.exchange.stats.ordersAccepted, sim.service.exchange.stats.ordersRejected]).toEqual([accepted, rejected]);
    expect(faultMetrics(sim.service.exchange).fault_5xx_injected).toBeGreaterThanOrEqual(5);
    await admin(sim, 'faults/reset');
    expect((await call(sim, 'GET', '/ok', { secret: null })).status).toBe(200);
  });

  it('adds latency with jitter', async () => {
    await admin(sim, 'faults', { latency_ms: 150, latency_jitter_ms: 50 });
    const before = faultMetrics(sim.service.exchange).fault_requests_delayed!;
    const t0 = Date.now();
    expect((await call(sim, 'GET', '/ok', { secret: null })).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(145);
    expect(faultMetrics(sim.service.exchange).fault_requests_delayed).toBe(before + 1);
  });

  it('runs a matching-engine restart: 425, then post-only, then normal (injected clock)', async () => {
    fakeClock();
    const r = await admin(sim, 'faults', { too_early_s: 90 });
    expect(r.body).toMatchObject({ phase: 'too_early', too_early_remaining_s: 90, post_only_remaining_s: 120 });

    for (const [method, path, body] of [
      ['POST', '/order', restingBuy(sim, 'me1', { postOnly: true })],
      ['POST', '/orders', [restingBuy(sim, 'me1')]],
      ['DELETE', '/order', { orderID: '0x01' }],
      ['DELETE', '/cancel-all', undefined],
    ] as const) {
      const res = await call(sim, method, path, { body, secret: null });
      expect(res.status, `${method} ${path}`).toBe(425);
      expect(res.body).toEqual({ error: 'Too Early' });
    }
    const token = sim.service.exchange.markets[0]!.tokenIds[0];
    expect((await call(sim, 'GET', `/book?token_id=${token}`, { secret: null })).status).toBe(200); // market data stays up

    t += 90_000; // the engine is back, in post-only mode
    expect((await admin(sim, 'faults')).body).toMatchObject({ phase: 'post_only', too_early_remaining_s: 0, post_only_remaining_s: 120 });
    const taker = await call(sim, 'POST', '/order', { body: restingBuy(sim, 'me1'), secret: null });
    expect(taker.status).toBe(400);
    expect(taker.body).toEqual({ error: ERR_POST_ONLY });
    const batch = await call(sim, 'POST', '/orders', { body: [restingBuy(sim, 'me1', { postOnly: true }), restingBuy(sim, 'me1')], secret: null });
    expect(batch.body).toEqual({ error: ERR_POST_ONLY });
    const maker = await call(sim, 'POST', '/order', { body: restingBuy(sim, 'me1', { postOnly: true }), secret: null });
    expect(maker.status).toBe(200);
    expect(maker.body.success).toBe(true);
    const cancel = await call(sim, 'DELETE', '/order', { body: { orderID: maker.body.orderID }, secret: null });
    expect([425, 400]).not.toContain(cancel.status); // cancels pass (whatever the cancel route answers)

    t += 120_000;
    expect((await admin(sim, 'faults')).body).toMatchObject({ phase: 'normal' });
    const normal = await call(sim, 'POST', '/order', { body: restingBuy(sim, 'me1'), secret: null });
    expect(normal.status).toBe(200);
    expect(normal.body.success).toBe(true);
    const m = faultMetrics(sim.service.exchange);
    expect(m.fault_425s).toBeGreaterThanOrEqual(4);
    expect(m.fault_post_only_rejected).toBeGreaterThanOrEqual(2);
  });

  it('a cancel-only window answers 503 to new orders and lets cancels through', async () => {
    fakeClock();
    await admin(sim, 'faults', { cancel_only_s: 30 });
    const res = await call(sim, 'POST', '/order', { body: restingBuy(sim, 'co', { postOnly: true }), secret: null });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/cancel-only/);
    expect((await call(sim, 'DELETE', '/order', { body: { orderID: '0x01' }, secret: null })).status).not.toBe(503);
    t += 30_000;
    expect((await call(sim, 'POST', '/order', { body: restingBuy(sim, 'co'), secret: null })).status).toBe(200);
  });

  it('rate-limits per endpoint and caller with Retry-After (scaled limits)', async () => {
    fakeClock();
    await admin(sim, 'faults', { rate_limit_scale: 0.01 }); // /book: 1,500 → 15 per 10 s
    const token = sim.service.exchange.markets[0]!.tokenIds[0];
    const book = (key: string) => call(sim, 'GET', `/book?token_id=${token}`, { headers: { POLY_API_KEY: key }, secret: null });
    for (let i = 0; i < 15; i++) {
      expect((await book('k1')).status, `request ${i + 1}`).toBe(200);
      t += 100;
    }
    const over = await book('k1');
    expect(over.status).toBe(429);
    expect(over.body).toEqual({ error: 'Too Many Requests' });
    // The first request leaves the window 10 s after it came: 1.5 s from now.
    expect(over.headers.get('retry-after')).toBe('9');
    expect((await book('k2')).status).toBe(200); // another caller has its own windows
    expect((await call(sim, 'GET', '/time', { headers: { POLY_API_KEY: 'k1' }, secret: null })).status).toBe(200); // other endpoints too
    t += 8_500; // just after the first request expired
    expect((await book('k1')).status).toBe(200);
    expect((await book('k1')).status).toBe(429);
    expect(faultMetrics(sim.service.exchange).fault_429s).toBeGreaterThanOrEqual(2);

    // Turning limits off lets the caller through at once.
    await admin(sim, 'faults', { rate_limits: false });
    expect((await book('k1')).status).toBe(200);
  });

  it('rate-limits POST /order at its own scaled limit and by IP without an API key', async () => {
    fakeClock();
    await admin(sim, 'faults', { rate_limit_scale: 0.001 }); // POST /order: 3,500 → 4 (rounded)
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await call(sim, 'POST', '/order', { body: restingBuy(sim, 'rl'), secret: null })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
  });

  it('funds an account through the exchange, or says 501 while it cannot', async () => {
    const ex = sim.service.exchange as unknown as { fund?: unknown };
    const r = await admin(sim, 'fund', { address: '0x00000000000000000000000000000000000000aa', amount: '25.5' });
    expect(r.status).toBe(typeof ex.fund === 'function' ? 200 : 501);
    expect((await admin(sim, 'fund', { address: 'x', amount: '1.1234567' })).status).toBe(400);
  });
});

describe('accept-then-timeout', () => {
  let sim: RunningSim;
  beforeAll(async () => {
    sim = await startFaultSim({ POLYBOT_SIM_MARKETS: '1', POLYBOT_SIM_EVENT_RATE: '0' }, SECRET);
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('refuses the next N orders with order_version_mismatch without placing them, then takes orders again', async () => {
    await admin(sim, 'faults', { version_mismatch_next: 2 });
    const accepted = sim.service.exchange.stats.ordersAccepted;
    for (const tag of ['vm1', 'vm2']) {
      const res = await call(sim, 'POST', '/order', { body: restingBuy(sim, tag), secret: null });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('order_version_mismatch');
    }
    expect(sim.service.exchange.stats.ordersAccepted).toBe(accepted);
    expect((await call(sim, 'POST', '/order', { body: restingBuy(sim, 'vm3'), secret: null })).status).toBe(200);
    expect(faultMetrics(sim.service.exchange).fault_version_mismatches).toBe(2);
    expect((await call(sim, 'GET', '/version', { secret: null })).body).toEqual({ version: 2 });
  });

  it('places the order but never answers; the re-post is a duplicate', async () => {
    await admin(sim, 'faults', { accept_then_timeout_rate: 1 });
    const body = restingBuy(sim, 'ambiguous');
    const accepted = sim.service.exchange.stats.ordersAccepted;
    const sent = fetch(`${sim.base}/order`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(800),
    });
    await expect(sent).rejects.toThrow(/abort|timeout/i);
    expect(sim.service.exchange.stats.ordersAccepted).toBe(accepted + 1); // placed all the same
    expect(faultMetrics(sim.service.exchange).fault_timeouts).toBe(1);

    await admin(sim, 'faults/reset');
    const again = await call(sim, 'POST', '/order', { body, secret: null });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ success: false, errorMsg: expect.stringMatching(/Duplicated/) });
  });

  it('a held response does not delay shutdown', async () => {
    await admin(sim, 'faults', { accept_then_timeout_rate: 1 });
    const pending = fetch(`${sim.base}/order`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(restingBuy(sim, 'held')),
    }).catch((err: Error) => err);
    const accepted = sim.service.exchange.stats.ordersAccepted;
    await waitFor(() => sim.service.exchange.stats.ordersAccepted > accepted, { what: 'order placed' });
    const t0 = Date.now();
    await sim.stop();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await pending).toBeInstanceOf(Error); // the socket was destroyed, never answered
    sim = undefined as unknown as RunningSim;
  });
});

describe('market WebSocket faults', () => {
  let sim: RunningSim;
  const clients: WsClient[] = [];
  beforeAll(async () => {
    sim = await startFaultSim({ POLYBOT_SIM_MARKETS: '2', POLYBOT_SIM_EVENT_RATE: '100' }, SECRET);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await sim?.stop();
  });
  const connect = async (subscribe = true) => {
    const c = await WsClient.open(sim.wsUrl);
    clients.push(c);
    if (subscribe) {
      c.send({ assets_ids: [...sim.service.exchange.markets[0]!.tokenIds], type: 'market' });
      await waitFor(() => c.events.length >= 2, { what: 'initial books' });
    }
    return c;
  };

  it('drop closes every market connection abruptly', async () => {
    const a = await connect();
    const b = await connect();
    const closes = [a, b].map((c) => new Promise<number>((r) => c.ws.once('close', (code) => r(code))));
    const r = await admin(sim, 'ws/drop');
    expect(r.status).toBe(200);
    expect(r.body.dropped).toBeGreaterThanOrEqual(2);
    expect(await Promise.all(closes)).toEqual([1006, 1006]); // no close frame
    expect(faultMetrics(sim.service.exchange).fault_ws_drops).toBeGreaterThanOrEqual(2);
    // A reconnect works as usual.
    await connect();
  });

  it('freeze keeps the socket open and PONG flowing but stops data, then resumes', async () => {
    const c = await connect();
    await waitFor(() => c.events.filter((e) => e.event_type === 'price_change').length >= 3, { what: 'live data' });
    const r = await admin(sim, 'ws/freeze', { seconds: 1.5 });
    expect(r.body).toMatchObject({ seconds: 1.5 });
    expect(r.body.frozen).toBeGreaterThanOrEqual(1);
    const frozenAt = Date.now();
    await sleep(150); // frames already on the wire when the freeze began
    const mark = c.events.length;

    // A client connected during the freeze is healthy (the freeze is per connection).
    const fresh = await connect();
    c.send('PING');
    await waitFor(() => c.texts.includes('PONG'), { what: 'PONG while frozen' });
    await waitFor(() => fresh.events.length > 2, { what: 'data on the fresh connection' });
    await sleep(Math.max(0, 1_200 - (Date.now() - frozenAt)));
    expect(c.events.length).toBe(mark);
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect((await admin(sim, 'faults')).body.ws_frozen_clients).toBeGreaterThanOrEqual(1);

    await waitFor(() => c.events.length > mark, { what: 'data after the freeze', timeoutMs: 5_000 });
    expect(faultMetrics(sim.service.exchange).fault_ws_freezes).toBeGreaterThanOrEqual(1);
  });
});
