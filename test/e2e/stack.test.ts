import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { chromium, type Browser } from 'playwright-core';
import { waitFor } from '@polybot/testkit';
import { getJson, startStack, waitHealthy, type Stack } from './stack.js';

interface Market { condition_id: string; question: string; tokens: Array<{ token_id: string; outcome: string }> }
interface Order { order_id: string; signal_id: string; strategy: string; status: string; side: string; filled: string; price: string }
interface Position { strategy: string; token_id: string; size: string; avg_price: string; cost: string; realized_pnl: string }

let stack: Stack;

beforeAll(async () => {
  // Wide thresholds so the threshold strategy trades within seconds on any seed.
  stack = await startStack({
    POLYBOT_STRATEGY_CONFIG: JSON.stringify({ buy_below: 0.55, sell_above: 0.6, order_size: 5, max_position: 20 }),
    POLYBOT_SIM_EVENT_RATE: '50',
  });
  try {
    await waitHealthy(stack);
  } catch (err) {
    for (const name of stack.procs.keys()) process.stderr.write(`--- ${name}\n${stack.log(name).slice(-2000)}\n`);
    throw err;
  }
}, 150_000);

afterAll(async () => {
  await stack?.stop();
  stack?.dispose();
}, 60_000);

describe('the whole stack on the simulator', () => {
  it('reports every process in /api/health', async () => {
    // A service may report itself degraded for a moment on a loaded machine; judge once it has had time to recover.
    type Health = { status: string; services: Record<string, { state: string; since: number; message?: string }> };
    const h = ((await waitHealthy(stack, 30_000).catch(() => null)) as Health | null) ?? (await getJson<Health>(`${stack.api}/api/health`));
    expect(h.status, JSON.stringify(h.services)).toBe('ok');
    for (const name of ['sim', 'bus', 'scanner', 'strategy:threshold', 'executor', 'analytics', 'api']) {
      expect(h.services[name]?.state, name).toBe('running');
      expect(typeof h.services[name]?.since).toBe('number');
    }
  });

  it('discovers the simulator markets and streams live prices over /ws', async () => {
    const sim = await getJson<Array<{ conditionId: string }>>(`http://127.0.0.1:${stack.simPort}/markets?limit=500`);
    // Round markets are listed as soon as they are pinned, which can be before discovery's first pass.
    const { markets } = await waitFor(async () => {
      const r = await getJson<{ markets: Market[] }>(`${stack.api}/api/markets`);
      return r.markets.length >= sim.length ? r : null;
    }, { what: 'markets' });
    expect(new Set(markets.map((m) => m.condition_id))).toEqual(new Set(sim.map((m) => m.conditionId)));

    const ws = new WebSocket(`ws://127.0.0.1:${stack.apiPort}/ws`);
    const prices: Array<{ topic: string; data: { type: string; token_id: string; bid: number | null } }> = [];
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw));
      if (typeof m.topic === 'string' && m.topic.startsWith('price.')) prices.push(m);
    });
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ op: 'subscribe', topics: ['price.'] }));
    await waitFor(() => prices.length >= 5, { what: 'prices on /ws' });
    ws.close();
    // Read the markets again: a round that opened meanwhile is new in both the prices and the list.
    const now = (await getJson<{ markets: Market[] }>(`${stack.api}/api/markets`)).markets;
    const tokens = new Set([...markets, ...now].flatMap((m) => m.tokens.map((t) => t.token_id)));
    for (const p of prices) {
      expect(p.data.type).toBe('price');
      expect(tokens.has(p.data.token_id)).toBe(true);
    }
  });

  it('records price history in DuckDB and answers it through the API', async () => {
    const { markets } = await getJson<{ markets: Market[] }>(`${stack.api}/api/markets`);
    const token = markets[0]!.tokens[0]!.token_id;
    const res = await waitFor(async () => {
      const r = await getJson<{ token_id: string; rows: Array<{ ts: number; mid: number | null }> }>(`${stack.api}/api/prices/${token}?limit=10`);
      return r.rows.length > 0 ? r : null;
    }, { what: 'price history rows' });
    expect(res.token_id).toBe(token);
    expect(res.rows[0]!.ts).toBeGreaterThan(Date.now() - 120_000);
    expect(existsSync(join(stack.dataDir, 'analytics.duckdb'))).toBe(true);
  });

  it('turns strategy signals into filled orders and exact positions', async () => {
    const orders = await waitFor(async () => {
      const r = await getJson<{ orders: Order[] }>(`${stack.api}/api/orders`);
      return r.orders.some((o) => o.status === 'filled' || (o.status === 'canceled' && Number(o.filled) > 0)) ? r.orders : null;
    }, { timeoutMs: 90_000, what: 'a filled order' });
    const filled = orders.filter((o) => Number(o.filled) > 0);
    expect(filled.length).toBeGreaterThan(0);
    expect(new Set(orders.map((o) => o.signal_id)).size).toBe(orders.length); // one order per signal
    for (const o of orders) expect(o.strategy).toBe('threshold');
    const { positions } = await waitFor(async () => {
      const r = await getJson<{ positions: Position[] }>(`${stack.api}/api/positions`);
      return r.positions.length > 0 ? r : null;
    }, { what: 'positions' });
    for (const p of positions) {
      expect(p.size).toMatch(/^-?\d+(\.\d+)?$/);
      expect(p.avg_price).toMatch(/^\d+(\.\d+)?$/);
      expect(Number(p.size)).toBeLessThanOrEqual(20);
    }
  });

  it('shows live markets, events and positions in the dashboard', async () => {
    if (!existsSync('/usr/bin/chromium')) throw new Error('chromium is missing: apt-get install -y chromium');
    const browser: Browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      await page.goto(`${stack.api}/ui/`);
      await page.locator('[data-testid="market-row"]').first().waitFor({ timeout: 30_000 });
      // Any row: rows come in question order, and the first can be a round market that has not
      // opened yet (listed as soon as a watcher pins it, quiet until its window starts).
      const bids = page.locator('[data-testid="cell-bid"]');
      await waitFor(async () => (await bids.allTextContents()).some((t) => /\d/.test(t)), { what: 'a bid in the markets table' });
      await page.locator('[data-testid="event-row"]').first().waitFor({ timeout: 60_000 });
      await page.locator('[data-testid="position-row"]').first().waitFor({ timeout: 60_000 });
      await page.screenshot({ path: join(tmpdir(), 'polybot-e2e-dashboard.png'), fullPage: true }).catch(() => undefined);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('stops every process gracefully on SIGTERM', async () => {
    const procs = [...stack.procs.entries()];
    await stack.stop();
    for (const [name, p] of procs) {
      expect(p.signalCode, `${name} was killed`).toBeNull();
      expect(p.exitCode, `${name} exit code\n${stack.log(name).slice(-1500)}`).toBe(0);
    }
  }, 60_000);
});
