import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { BusPublisher, BusRequester, Forwarder, resolveEndpoints, type Endpoints } from '@polybot/bus';
import { loadConfig, openDatabase, ServiceRunner, type SqliteDb } from '@polybot/core';
import { topics, type PriceMessage, type ServiceState, type StatusMessage, type Unstamped } from '@polybot/protocol';
import { tempDataDir, waitFor } from '@polybot/testkit';
import { AnalyticsConfig, createAnalyticsService } from '../../analytics/src/index.js';
import { ApiConfig, buildApp, createApiService, createDbReader, HealthRegistry, WsHub, type ApiService, type HealthReport } from '../src/index.js';

let tmp: ReturnType<typeof tempDataDir>;
let ep: Endpoints;
const closers: Array<() => Promise<unknown> | unknown> = [];

beforeEach(() => {
  tmp = tempDataDir('pbapi');
  ep = resolveEndpoints(tmp.dir, {});
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  tmp.cleanup();
});

async function startApi(env: Record<string, string> = {}): Promise<{ svc: ApiService; base: string }> {
  const config = loadConfig(ApiConfig, {
    env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_LOG_LEVEL: 'silent', POLYBOT_API_PORT: '0', POLYBOT_STATUS_INTERVAL_MS: '200', ...env },
    envFile: false,
  });
  let svc: ApiService | undefined;
  const runner = new ServiceRunner({ name: 'api', config, create: (ctx) => (svc = createApiService(ctx)), env: {} });
  await runner.start();
  closers.push(() => runner.stop());
  expect(svc!.port).toBeGreaterThan(0);
  return { svc: svc!, base: `http://127.0.0.1:${svc!.port}` };
}

async function startAnalytics(): Promise<void> {
  const config = loadConfig(AnalyticsConfig, { env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_LOG_LEVEL: 'silent' }, envFile: false });
  const runner = new ServiceRunner({ name: 'analytics', config, create: createAnalyticsService, env: {} });
  await runner.start();
  closers.push(() => runner.stop());
}

async function pricesPublisher(): Promise<BusPublisher> {
  const pub = new BusPublisher({ endpoint: ep['prices.pub'], mode: 'bind', src: 'scanner' });
  await pub.start();
  closers.push(() => pub.close());
  return pub;
}

const get = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

const price = (token: string, bid: number, venueTs = Date.now()): Unstamped<PriceMessage> => ({
  type: 'price', token_id: token, market: '0xm', bid, ask: Math.min(1, bid + 0.02), mid: Math.min(1, bid + 0.01), bid_size: 1, ask_size: 2, venue_ts: venueTs,
});

const status = (service: string, state: ServiceState, intervalMs = 60_000): Unstamped<StatusMessage> => ({
  type: 'status', service, state, since: 1000, pid: 4242, interval_ms: intervalMs, metrics: { x: 1 },
});

describe('GET /api/health', () => {
  it('is down, degraded or ok from the status heartbeats on events.pub', async () => {
    const fwd = new Forwarder({ frontend: ep['events.in'], backend: ep['events.pub'] });
    await fwd.start();
    closers.push(() => fwd.stop());
    const { base } = await startApi({ POLYBOT_EXPECTED_SERVICES: 'bus,scanner,api' });
    const pub = new BusPublisher({ endpoint: ep['events.in'], mode: 'connect', src: 'test' });
    await pub.start();
    closers.push(() => pub.close());
    const health = async () => (await get(`${base}/api/health`)).body as unknown as HealthReport;

    const first = await health();
    expect(first.status).toBe('down');
    expect(first.services.api?.state).toBe('running');
    expect(first.services.bus).toMatchObject({ state: 'down', since: null, last_seen: null });

    // Heartbeats until the SUB side has joined.
    const degraded = await waitFor(async () => {
      pub.publish(topics.status('bus'), status('bus', 'running'));
      const h = await health();
      return h.services.bus?.state === 'running' ? h : undefined;
    }, { what: 'bus status to arrive', intervalMs: 100 });
    expect(degraded.status).toBe('degraded');
    expect(degraded.services.bus).toMatchObject({ since: 1000, pid: 4242, metrics: { x: 1 } });
    expect(degraded.services.scanner?.state).toBe('down');

    pub.publish(topics.status('scanner'), status('scanner', 'running'));
    await waitFor(async () => (await health()).status === 'ok', { what: 'ok' });

    pub.publish(topics.status('strategy:mm'), status('strategy:mm', 'faulted'));
    const withStrategy = await waitFor(async () => {
      const h = await health();
      return h.services['strategy:mm'] ? h : undefined;
    }, { what: 'strategy status' });
    expect(withStrategy.status).toBe('degraded');
    pub.publish(topics.status('strategy:mm'), status('strategy:mm', 'running'));
    await waitFor(async () => (await health()).status === 'ok', { what: 'ok with strategy' });

    // A service that stops reporting goes down after 3 intervals.
    pub.publish(topics.status('scanner'), status('scanner', 'running', 100));
    const stale = await waitFor(async () => {
      const h = await health();
      return h.services.scanner?.state === 'down' ? h : undefined;
    }, { what: 'scanner to go stale' });
    expect(stale.status).toBe('degraded');
    expect(stale.services.scanner?.message).toMatch(/no status/);

    pub.publish(topics.status('bus'), status('bus', 'running', 100));
    pub.publish(topics.status('strategy:mm'), status('strategy:mm', 'running', 100));
    await waitFor(async () => (await health()).status === 'down', { what: 'everything stale' });
  });
});

describe('SQLite-backed routes', () => {
  it('answers empty before the owners create the database, then reads orders, positions and markets', async () => {
    const { base } = await startApi();
    expect((await get(`${base}/api/orders`)).body).toEqual({ orders: [] });
    expect((await get(`${base}/api/positions`)).body).toEqual({ positions: [] });
    expect((await get(`${base}/api/markets`)).body).toEqual({ markets: [] });

    const db: SqliteDb = openDatabase(join(tmp.dir, 'polybot.db'));
    closers.push(() => db.close());
    // File present, tables not yet: still empty, never an error.
    await waitFor(async () => (await get(`${base}/api/orders`)).status === 200);
    db.exec(`
      CREATE TABLE markets(condition_id TEXT PRIMARY KEY, gamma_id TEXT, question TEXT NOT NULL, slug TEXT,
        active INTEGER NOT NULL, closed INTEGER NOT NULL, neg_risk INTEGER NOT NULL DEFAULT 0,
        tick_size TEXT NOT NULL, min_order_size TEXT NOT NULL, end_date TEXT, updated_at INTEGER NOT NULL);
      CREATE TABLE market_tokens(token_id TEXT PRIMARY KEY, condition_id TEXT NOT NULL REFERENCES markets(condition_id),
        outcome TEXT NOT NULL, outcome_index INTEGER NOT NULL);
      CREATE TABLE orders(order_id TEXT PRIMARY KEY, signal_id TEXT UNIQUE, strategy TEXT NOT NULL, venue_order_id TEXT,
        token_id TEXT NOT NULL, market TEXT NOT NULL, side TEXT NOT NULL, order_type TEXT NOT NULL,
        price TEXT NOT NULL, size TEXT NOT NULL, filled TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
        request TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE positions(strategy TEXT NOT NULL, token_id TEXT NOT NULL, market TEXT NOT NULL, size TEXT NOT NULL,
        avg_price TEXT NOT NULL, cost TEXT NOT NULL, realized_pnl TEXT NOT NULL, updated_at INTEGER NOT NULL,
        PRIMARY KEY (strategy, token_id));
    `);
    db.prepare(`INSERT INTO markets VALUES ('0xc1', 'g1', 'Will it rain?', 'rain', 1, 0, 0, '0.01', '5', '2030-01-01', 1)`).run();
    db.prepare(`INSERT INTO markets VALUES ('0xc2', 'g2', 'Old market', 'old', 0, 1, 1, '0.001', '1', NULL, 1)`).run();
    const tok = db.prepare('INSERT INTO market_tokens VALUES (?, ?, ?, ?)');
    tok.run('t-no', '0xc1', 'No', 1);
    tok.run('t-yes', '0xc1', 'Yes', 0);
    const order = db.prepare(`INSERT INTO orders VALUES (?, ?, ?, NULL, 't-yes', '0xc1', 'BUY', 'GTC', '0.45', '10', '0', 'live', NULL, NULL, ?, ?)`);
    for (let i = 1; i <= 5; i++) order.run(`o${i}`, `s${i}`, i % 2 ? 'mm' : 'arb', 1000 + i, 1000 + i);
    db.prepare(`INSERT INTO positions VALUES ('mm', 't-yes', '0xc1', '10', '0.45', '4.5', '0', 1)`).run();
    db.prepare(`INSERT INTO positions VALUES ('arb', 't-no', '0xc1', '3', '0.5', '1.5', '0.25', 1)`).run();

    const orders = await waitFor(async () => {
      const r = await get(`${base}/api/orders`);
      return (r.body.orders as unknown[]).length > 0 ? (r.body.orders as Record<string, unknown>[]) : undefined;
    }, { what: 'orders to be readable' });
    expect(orders.map((o) => o.order_id)).toEqual(['o5', 'o4', 'o3', 'o2', 'o1']);
    expect(orders[0]).toMatchObject({ strategy: 'mm', price: '0.45', size: '10', filled: '0', status: 'live', created_at: 1005 });
    const mm = (await get(`${base}/api/orders?strategy=mm&limit=2`)).body.orders as Record<string, unknown>[];
    expect(mm.map((o) => o.order_id)).toEqual(['o5', 'o3']);
    expect(((await get(`${base}/api/orders?strategy=&limit=1`)).body.orders as unknown[]).length).toBe(1);

    const positions = (await get(`${base}/api/positions?strategy=arb`)).body.positions;
    expect(positions).toEqual([{ strategy: 'arb', token_id: 't-no', market: '0xc1', size: '3', avg_price: '0.5', cost: '1.5', realized_pnl: '0.25', updated_at: 1 }]);
    expect(((await get(`${base}/api/positions`)).body.positions as unknown[]).length).toBe(2);

    const markets = (await get(`${base}/api/markets`)).body.markets as Record<string, unknown>[];
    expect(markets).toHaveLength(2);
    expect(markets.find((m) => m.condition_id === '0xc1')).toEqual({
      condition_id: '0xc1', question: 'Will it rain?', slug: 'rain', active: true, closed: false, neg_risk: false,
      tick_size: '0.01', min_order_size: '5', end_date: '2030-01-01',
      tokens: [{ token_id: 't-yes', outcome: 'Yes', outcome_index: 0 }, { token_id: 't-no', outcome: 'No', outcome_index: 1 }],
    });
    expect(markets.find((m) => m.condition_id === '0xc2')).toMatchObject({ active: false, closed: true, neg_risk: true, end_date: null, tokens: [] });
    expect(((await get(`${base}/api/markets?active=true`)).body.markets as unknown[]).length).toBe(1);
  });

  it('rejects bad query parameters with 400 and a stable code', async () => {
    const { base } = await startApi();
    for (const url of [
      '/api/orders?limit=0',
      '/api/orders?limit=1001',
      '/api/orders?limit=abc',
      '/api/orders?strategy=bad%20name',
      '/api/positions?strategy=x%27%3B',
      '/api/prices/bad%20token',
      '/api/prices/tok?limit=0',
      '/api/prices/tok?since_ts=-5',
      '/api/markets?active=maybe',
    ]) {
      const r = await get(base + url);
      expect(r.status, url).toBe(400);
      expect(r.body.code, url).toBe('bad_request');
      expect(typeof r.body.error, url).toBe('string');
    }
    const missing = await get(`${base}/api/nope`);
    expect(missing).toMatchObject({ status: 404, body: { code: 'not_found' } });
  });
});

describe('GET /api/prices/:tokenId', () => {
  it('reads price history through the analytics service', async () => {
    const pub = await pricesPublisher();
    await startAnalytics();
    const { base } = await startApi();
    await waitFor(async () => {
      pub.publish(topics.price('warm'), price('warm', 0.5));
      const r = await get(`${base}/api/prices/warm?limit=1`);
      return r.status === 200 && (r.body.rows as unknown[]).length > 0;
    }, { what: 'analytics to store prices', intervalMs: 100 });
    for (let i = 1; i <= 10; i++) pub.publish(topics.price('tokP'), price('tokP', i / 20, 1_700_000_000_000 + i));
    const rows = await waitFor(async () => {
      const r = await get(`${base}/api/prices/tokP?limit=4`);
      const rs = r.body.rows as { ts: number; bid: number }[];
      return rs.length === 4 && rs[0]!.bid === 0.5 ? r.body : undefined;
    }, { what: 'tokP rows' });
    expect(rows).toEqual({
      token_id: 'tokP',
      rows: [10, 9, 8, 7].map((i) => ({ ts: 1_700_000_000_000 + i, bid: i / 20, ask: Math.min(1, i / 20 + 0.02), mid: Math.min(1, i / 20 + 0.01) })),
    });
    const since = await get(`${base}/api/prices/tokP?since_ts=${1_700_000_000_000 + 8}`);
    expect((since.body.rows as unknown[]).length).toBe(3);
  });

  it('answers 503 analytics_unavailable when analytics does not answer', async () => {
    const requester = new BusRequester({ endpoint: ep['analytics.rep'], src: 'test', timeoutMs: 200 });
    closers.push(() => requester.close());
    const db = createDbReader(join(tmp.dir, 'polybot.db'));
    const app = await buildApp({
      db, analytics: requester, health: new HealthRegistry(['api'], { name: 'api', since: 1, metrics: () => ({}) }), hub: new WsHub(), uiDir: join(tmp.dir, 'no-ui'), analyticsTimeoutMs: 200,
    });
    closers.push(() => app.close());
    const res = await app.inject({ method: 'GET', url: '/api/prices/tok1' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'analytics_unavailable' });
    const health = await app.inject({ method: 'GET', url: '/api/health' });
    expect(health.json()).toMatchObject({ status: 'ok', services: { api: { state: 'running', since: 1 } } });
  });
});

describe('WebSocket /ws', () => {
  it('streams subscribed bus topics, conflates prices and answers malformed frames', async () => {
    const pub = await pricesPublisher();
    const { base, svc } = await startApi();
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    closers.push(() => ws.terminate());
    const frames: { op?: string; topic?: string; error?: string; data?: PriceMessage; topics?: string[] }[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d)) as (typeof frames)[number]));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });

    ws.send('not json');
    await waitFor(() => frames.find((f) => f.op === 'error'), { what: 'error frame' });
    ws.send(JSON.stringify({ op: 'subscribe', topics: ['foo.'] }));
    ws.send(JSON.stringify({ op: 'subscribe', topics: 'price.' }));
    await waitFor(() => frames.filter((f) => f.op === 'error').length === 3, { what: 'three error frames' });

    ws.send(JSON.stringify({ op: 'subscribe', topics: ['price.'] }));
    await waitFor(() => frames.find((f) => f.op === 'subscribed'), { what: 'subscribed' });
    expect(frames.find((f) => f.op === 'subscribed')?.topics).toEqual(['price.']);

    const got = await waitFor(() => {
      pub.publish(topics.price('tokW'), price('tokW', 0.33));
      return frames.find((f) => f.topic === 'price.tokW');
    }, { what: 'a price over the websocket', intervalMs: 100 });
    expect(got.data).toMatchObject({ type: 'price', token_id: 'tokW', bid: 0.33, src: 'scanner' });

    // A burst on one token arrives conflated, and the latest value always gets through.
    for (let i = 0; i < 50; i++) pub.publish(topics.price('tokZ'), price('tokZ', i / 100));
    await waitFor(() => frames.find((f) => f.topic === 'price.tokZ' && f.data?.bid === 0.49), { what: 'last burst price' });
    const burst = frames.filter((f) => f.topic === 'price.tokZ');
    expect(burst.length).toBeLessThan(50);
    expect(svc.metrics!()).toMatchObject({ ws_clients: 1 });
    expect(Number(svc.metrics!().ws_forwarded)).toBeGreaterThan(0);

    ws.send(JSON.stringify({ op: 'unsubscribe', topics: ['price.'] }));
    await waitFor(() => frames.find((f) => f.op === 'unsubscribed'), { what: 'unsubscribed' });
    ws.close();
    await waitFor(() => svc.metrics!().ws_clients === 0, { what: 'client to be gone' });

    // A client that joins later gets the current top of book of every token at once, not only after it moves.
    const late = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    closers.push(() => late.terminate());
    const lateFrames: { topic?: string; data?: PriceMessage }[] = [];
    late.on('message', (d) => lateFrames.push(JSON.parse(String(d)) as (typeof lateFrames)[number]));
    await new Promise<void>((resolve) => late.once('open', () => resolve()));
    late.send(JSON.stringify({ op: 'subscribe', topics: ['price.tokZ'] }));
    const snap = await waitFor(() => lateFrames.find((f) => f.topic === 'price.tokZ'), { what: 'snapshot price' });
    expect(snap.data?.bid).toBe(0.49);
    expect(lateFrames.some((f) => f.topic === 'price.tokW')).toBe(false);
    late.close();
  });
});

describe('WebSocket /ws event history', () => {
  it('sends a new subscriber the recent executor events, oldest first, then live ones', async () => {
    const fwd = new Forwarder({ frontend: ep['events.in'], backend: ep['events.pub'] });
    await fwd.start();
    closers.push(() => fwd.stop());
    const { base, svc } = await startApi();
    const pub = new BusPublisher({ endpoint: ep['events.in'], mode: 'connect', src: 'executor' });
    await pub.start();
    closers.push(() => pub.close());
    const signalEvent = (id: string) => ({ type: 'event' as const, kind: 'signal' as const, strategy: 'threshold', signal_id: id, status: 'denied' as const, code: 'max_position' });
    // Until the api's subscription is live, published events are lost (slow joiner): repeat the first.
    await waitFor(() => {
      pub.publish(topics.event('signal', 'threshold'), signalEvent('sig-first-0000'));
      return Number(svc.metrics!().events_received) > 0;
    }, { what: 'api to receive events' });
    pub.publish(topics.event('signal', 'threshold'), signalEvent('sig-second-000'));
    await waitFor(() => Number(svc.metrics!().events_received) >= 2);

    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    closers.push(() => ws.terminate());
    const frames: { topic?: string; data?: { signal_id?: string } }[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d)) as (typeof frames)[number]));
    await new Promise<void>((resolve) => ws.once('open', () => resolve()));
    ws.send(JSON.stringify({ op: 'subscribe', topics: ['event.'] }));
    await waitFor(() => frames.some((f) => f.data?.signal_id === 'sig-second-000'), { what: 'replayed events' });
    const ids = frames.filter((f) => f.topic?.startsWith('event.')).map((f) => f.data?.signal_id);
    expect(ids.indexOf('sig-first-0000')).toBeLessThan(ids.indexOf('sig-second-000'));
    pub.publish(topics.event('signal', 'threshold'), signalEvent('sig-live-00000'));
    await waitFor(() => frames.some((f) => f.data?.signal_id === 'sig-live-00000'), { what: 'a live event' });
    ws.close();
  });
});

describe('/ui', () => {
  it('serves the dashboard build, with index.html for client routes', async () => {
    const ui = join(tmp.dir, 'ui');
    mkdirSync(join(ui, 'assets'), { recursive: true });
    writeFileSync(join(ui, 'index.html'), '<!doctype html><title>polybot-ui-marker</title>');
    writeFileSync(join(ui, 'assets', 'app-abc.js'), 'console.info(1)');
    const { base } = await startApi({ POLYBOT_UI_DIR: ui });

    const redirect = await fetch(`${base}/ui`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/ui/');
    const index = await fetch(`${base}/ui/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    expect(await index.text()).toContain('polybot-ui-marker');
    const route = await fetch(`${base}/ui/markets/0xc1`);
    expect(await route.text()).toContain('polybot-ui-marker');
    const asset = await fetch(`${base}/ui/assets/app-abc.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect(asset.headers.get('cache-control')).toMatch(/immutable/);
    expect((await fetch(`${base}/ui/assets/missing.js`)).status).toBe(404);
  });

  it('answers 503 telling to run pnpm build when the build is missing', async () => {
    const { base } = await startApi({ POLYBOT_UI_DIR: join(tmp.dir, 'not-built') });
    const r = await get(`${base}/ui/`);
    expect(r.status).toBe(503);
    expect(r.body.code).toBe('ui_not_built');
    expect(r.body.error).toMatch(/pnpm build/);
  });
});
