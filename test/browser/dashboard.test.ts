// The dashboard against a fake API: the built bundle (frontend/dist) is served the way services/api serves it,
// with REST and /ws answers shaped per docs/interfaces.md, and driven in the system Chromium. The fake lives
// here (not in services/api) so the dashboard's contract is checked independently of the real gateway.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { WebSocketServer, type WebSocket } from 'ws';
import { freePort, waitFor } from '@polybot/testkit';
import type { OrderEvent, PriceMessage, StatusMessage } from '@polybot/protocol';
import { launchChromium } from './chromium.js';
import { ensureDashboardBuilt, serveUi } from './static.js';

const SCREENSHOT = '/tmp/dashboard.png';

const cid = (c: string) => `0x${c.repeat(64)}`;
const MARKETS = [
  {
    condition_id: cid('a'),
    question: 'Will BTC close above $100k on Dec 31?',
    slug: 'btc-100k-dec-31',
    active: true,
    closed: false,
    neg_risk: false,
    tick_size: '0.01',
    min_order_size: '5',
    end_date: '2026-12-31T00:00:00Z',
    tokens: [
      { token_id: 'tok_btc_yes', outcome: 'Yes', outcome_index: 0 },
      { token_id: 'tok_btc_no', outcome: 'No', outcome_index: 1 },
    ],
  },
  {
    condition_id: cid('b'),
    question: 'Fed cuts rates at the December meeting?',
    slug: 'fed-cut-december',
    active: true,
    closed: false,
    neg_risk: false,
    tick_size: '0.001',
    min_order_size: '5',
    end_date: '2026-12-17T00:00:00Z',
    tokens: [
      { token_id: 'tok_fed_yes', outcome: 'Yes', outcome_index: 0 },
      { token_id: 'tok_fed_no', outcome: 'No', outcome_index: 1 },
    ],
  },
  {
    condition_id: cid('c'),
    question: 'Who wins the 2026 World Cup?',
    slug: 'world-cup-2026',
    active: true,
    closed: false,
    neg_risk: true,
    tick_size: '0.01',
    min_order_size: '5',
    end_date: '2026-07-19T00:00:00Z',
    tokens: [
      { token_id: 'tok_wc_bra', outcome: 'Brazil', outcome_index: 0 },
      { token_id: 'tok_wc_fra', outcome: 'France', outcome_index: 1 },
      { token_id: 'tok_wc_arg', outcome: 'Argentina', outcome_index: 2 },
    ],
  },
];
const TOKENS = MARKETS.flatMap((m) => m.tokens.map((t) => ({ ...t, market: m.condition_id })));

const POSITIONS = [
  { strategy: 'momentum', token_id: 'tok_btc_yes', market: cid('a'), size: '25', avg_price: '0.41', cost: '10.25', realized_pnl: '1.5', updated_at: Date.now() },
  { strategy: 'mean_revert', token_id: 'tok_fed_no', market: cid('b'), size: '0', avg_price: '0', cost: '0', realized_pnl: '-0.42', updated_at: Date.now() },
];

const SERVICES = ['sim', 'bus', 'scanner', 'executor', 'analytics', 'api', 'strategy:momentum'];

/** The fake gateway: REST snapshots, /ui static files and a /ws endpoint the test pushes frames through. */
class FakeApi {
  readonly clients = new Set<WebSocket>();
  readonly subscribeFrames: unknown[] = [];
  readonly requests: string[] = [];
  /** `broken`: no markets yet, and positions/health answer errors, as when the stack is half up. */
  mode: 'normal' | 'broken' = 'normal';
  private seq = 0;
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true });

  constructor() {
    this.http = createServer((req, res) => this.route(req, res));
    this.http.on('upgrade', (req, socket, head) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/ws') {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    });
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, '127.0.0.1', () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const ws of this.clients) ws.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    this.requests.push(path);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (path === '/ui' || path === '/') res.writeHead(302, { location: '/ui/' }).end();
    else if (path.startsWith('/ui/')) serveUi(path, res);
    else if (path === '/api/markets') json(200, { markets: this.mode === 'broken' ? [] : MARKETS });
    else if (this.mode === 'broken' && path === '/api/positions') json(503, { error: 'executor did not answer — check it with `pnpm status`', code: 'executor_unavailable' });
    else if (this.mode === 'broken' && path === '/api/health') json(500, { error: 'health aggregation failed — see `pnpm logs api`', code: 'internal' });
    else if (path === '/api/positions') json(200, { positions: POSITIONS });
    else if (path === '/api/health') {
      const now = Date.now();
      const services = Object.fromEntries(
        SERVICES.map((name, i) => [name, { state: 'running', since: now - 60_000 * (i + 1), last_seen: now, pid: 1000 + i, metrics: {} }]),
      );
      json(200, { status: 'ok', services });
    } else json(404, { error: `no route ${path}`, code: 'not_found' });
  }

  private accept(ws: WebSocket): void {
    this.clients.add(ws);
    ws.on('close', () => this.clients.delete(ws));
    ws.on('message', (raw) => {
      let frame: { op?: unknown; topics?: unknown };
      try {
        frame = JSON.parse(String(raw)) as typeof frame;
      } catch {
        ws.send(JSON.stringify({ op: 'error', error: 'frames must be JSON' }));
        return;
      }
      if (frame.op === 'subscribe' && Array.isArray(frame.topics)) {
        this.subscribeFrames.push(frame);
        ws.send(JSON.stringify({ op: 'subscribed', topics: frame.topics }));
      } else ws.send(JSON.stringify({ op: 'error', error: 'unknown op' }));
    });
  }

  private envelope(src: string) {
    return { v: 1, src, seq: this.seq++, ts: Date.now() };
  }

  send(topic: string, data: unknown): void {
    const text = JSON.stringify({ topic, data });
    for (const ws of this.clients) ws.send(text);
  }

  /** One price per token: the bid moves with `bid`, each token offset so rows differ. */
  pushPrices(bid: number): void {
    TOKENS.forEach((t, i) => {
      const b = Math.round((bid + i * 0.05) * 1000) / 1000;
      const a = Math.round((b + 0.02) * 1000) / 1000;
      const msg: PriceMessage = {
        type: 'price',
        token_id: t.token_id,
        market: t.market,
        outcome: t.outcome,
        bid: b,
        ask: a,
        mid: Math.round(((a + b) / 2) * 1000) / 1000,
        bid_size: 1200 + i * 310,
        ask_size: 800 + i * 95,
        venue_ts: Date.now(),
        ...this.envelope('scanner'),
      };
      this.send(`price.${t.token_id}`, msg);
    });
  }

  pushOrder(): void {
    const msg: OrderEvent = {
      type: 'event',
      kind: 'order',
      strategy: 'momentum',
      signal_id: 'sig-0001-momentum',
      order_id: 'ord-0001',
      venue_order_id: null,
      token_id: 'tok_btc_yes',
      market: cid('a'),
      side: 'BUY',
      order_type: 'GTC',
      price: '0.41',
      size: '25',
      filled: '0',
      status: 'live',
      ...this.envelope('executor'),
    };
    this.send('event.order.momentum', msg);
  }

  pushStatus(service: string, state: StatusMessage['state']): void {
    const msg: StatusMessage = {
      type: 'status',
      service,
      state,
      since: Date.now(),
      pid: 4242,
      interval_ms: 2000,
      message: 'venue websocket lagging',
      metrics: {},
      ...this.envelope(service),
    };
    this.send(`status.${service}`, msg);
  }
}

describe('dashboard (built bundle, fake API, real Chromium)', () => {
  let api: FakeApi;
  let browser: Browser;
  let page: Page;
  let base: string;
  const consoleErrors: string[] = [];

  const text = async (selector: string) => ((await page.locator(selector).first().textContent()) ?? '').trim();
  const attr = async (selector: string, name: string) => page.locator(selector).first().getAttribute(name);

  beforeAll(async () => {
    ensureDashboardBuilt();
    api = new FakeApi();
    const port = await freePort();
    await api.listen(port);
    base = `http://127.0.0.1:${port}`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1440, height: 860 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
    await page.goto(`${base}/ui/`);
  });

  afterAll(async () => {
    await browser?.close();
    await api?.close();
  });

  it('lists every outcome of /api/markets', async () => {
    await waitFor(async () => (await page.locator('[data-testid="market-row"]').count()) === 7, { what: '7 market rows' });
    const ids = await page.locator('[data-testid="market-row"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-token-id')));
    expect(ids).toEqual(TOKENS.map((t) => t.token_id));
    expect(await text('[data-testid="market-row"][data-token-id="tok_btc_yes"]')).toContain('Will BTC close above $100k');
  });

  it('opens one WebSocket and subscribes to prices, events and status', async () => {
    await waitFor(async () => (await attr('[data-testid="ws-state"]', 'data-state')) === 'open', { what: 'ws open' });
    expect(api.clients.size).toBe(1);
    expect(api.subscribeFrames).toEqual([{ op: 'subscribe', topics: ['price.', 'event.', 'status.'] }]);
  });

  it('updates bid/ask/mid cells when prices are pushed', async () => {
    const bid = '[data-testid="market-row"][data-token-id="tok_btc_yes"] [data-testid="cell-bid"]';
    expect(await text(bid)).toBe('—');
    api.pushPrices(0.4);
    await waitFor(async () => (await text(bid)) === '0.400', { what: 'first bid' });
    expect(await text('[data-testid="market-row"][data-token-id="tok_btc_yes"] [data-testid="cell-ask"]')).toBe('0.420');
    expect(await text('[data-testid="market-row"][data-token-id="tok_btc_yes"] [data-testid="cell-mid"]')).toBe('0.410');
    api.pushPrices(0.43);
    await waitFor(async () => (await text(bid)) === '0.430', { what: 'changed bid' });
    // The changed cell is marked with its direction (the flash itself is a Web Animation).
    expect(await page.locator(bid).getAttribute('class')).toContain('tick-up');
    // Each token's price is its own message: the other rows may render a frame later.
    await waitFor(async () => (await text('[data-testid="market-row"][data-token-id="tok_wc_arg"] [data-testid="cell-bid"]')) === '0.730', { what: 'other row bid' });
  });

  it('shows a pushed order event', async () => {
    expect(await page.locator('[data-testid="event-row"]').count()).toBe(0);
    api.pushOrder();
    await waitFor(async () => (await page.locator('[data-testid="event-row"]').count()) === 1, { what: 'event row' });
    const row = await text('[data-testid="event-row"]');
    expect(row).toContain('momentum');
    expect(row).toContain('BUY 25 @ 0.41 GTC · live');
    expect(row).toContain('Yes · Will BTC close above $100k'); // token resolved through the markets store
  });

  it('renders health from /api/health and live status messages', async () => {
    await waitFor(async () => (await attr('[data-testid="health-status"]', 'data-status')) === 'ok', { what: 'health ok' });
    expect(await text('[data-testid="health-status"]')).toBe('All systems OK');
    expect(await page.locator('[data-testid="service-chip"]').count()).toBe(SERVICES.length);
    api.pushStatus('scanner', 'degraded');
    await waitFor(async () => (await attr('[data-testid="service-chip"][data-service="scanner"]', 'data-state')) === 'degraded', {
      what: 'scanner chip degraded',
    });
  });

  it('shows positions from /api/positions', async () => {
    await waitFor(async () => (await page.locator('[data-testid="position-row"]').count()) === 2, { what: 'position rows' });
    const open = '[data-testid="position-row"][data-token-id="tok_btc_yes"]';
    expect(await text(`${open} [data-testid="cell-size"]`)).toBe('25');
    expect(await text(`${open} [data-testid="cell-pnl"]`)).toBe('1.5');
  });

  it('reconnects and resubscribes after the server drops the socket', async () => {
    for (const ws of api.clients) ws.close(1012, 'api restarting');
    await waitFor(async () => (await attr('[data-testid="ws-state"]', 'data-state')) !== 'open', { what: 'ws not open' });
    await waitFor(async () => (await attr('[data-testid="ws-state"]', 'data-state')) === 'open', { what: 'ws open again', timeoutMs: 10_000 });
    expect(api.subscribeFrames).toHaveLength(2);
    api.pushPrices(0.38);
    const bid = '[data-testid="market-row"][data-token-id="tok_btc_yes"] [data-testid="cell-bid"]';
    await waitFor(async () => (await text(bid)) === '0.380', { what: 'bid after reconnect' });
  });

  it('looks right and logs no console errors', async () => {
    api.pushPrices(0.39); // one more tick so the screenshot shows flashing cells
    await page.waitForTimeout(150);
    await page.screenshot({ path: SCREENSHOT });
    expect(consoleErrors).toEqual([]);
  });

  // Last, on its own page: the 5xx answers it provokes are console errors by design.
  it('says what to do when there are no markets and the API answers errors', async () => {
    api.mode = 'broken';
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 600 } });
    try {
      const p = await ctx.newPage();
      await p.goto(`${base}/ui/`);
      const t = async (sel: string) => ((await p.locator(sel).first().textContent()) ?? '').trim();
      await waitFor(async () => (await p.locator('[data-testid="markets-empty"]').count()) === 1, { what: 'markets empty state' });
      expect(await t('[data-testid="markets-empty"]')).toContain('No markets yet — is the scanner running?');
      await waitFor(async () => (await p.locator('[data-testid="positions-error"]').count()) === 1, { what: 'positions error' });
      expect(await t('[data-testid="positions-error"]')).toContain('executor did not answer — check it with `pnpm status`');
      await waitFor(async () => (await p.locator('[data-testid="health-status"]').getAttribute('data-status')) === 'error', { what: 'health error' });
      expect(await t('[data-testid="health-error"]')).toContain('see `pnpm logs api`');
      expect(await t('[data-testid="events-empty"]')).toContain('No events yet');
      await p.screenshot({ path: '/tmp/dashboard-empty.png' });
    } finally {
      await ctx.close();
      api.mode = 'normal';
    }
  });
});
