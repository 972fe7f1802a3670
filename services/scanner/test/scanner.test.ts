import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { BusRequester, BusSubscriber, resolveEndpoints } from '@polybot/bus';
import { loadConfig, openDatabase, ServiceRunner } from '@polybot/core';
import type { BookMessage, BookStatusMessage, BusMessage, PriceMessage, TradeMessage } from '@polybot/protocol';
import { freePort, tempDataDir, waitFor } from '@polybot/testkit';
import { createScannerService, ScannerConfig } from '../src/index.js';

// <repo>/services/scanner/test → samples live beside the repo in <repo>/../shared.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const samplesDir = resolve(repoRoot, '../shared/polymarket/samples');
const readSample = (p: string) => readFileSync(resolve(samplesDir, p), 'utf8');
const sampleJson = (p: string) => JSON.parse(readSample(p)) as Record<string, unknown>;

const gammaTemplate = sampleJson('gamma/market_btc_updown_5m_2026.json');
const cond = (i: number) => `0x${i.toString(16).padStart(64, 'a')}`;
const tok = (i: number, o: number) => `${i}00${o}`;
function gammaMarket(i: number): Record<string, unknown> {
  return {
    ...gammaTemplate,
    id: String(9000 + i),
    conditionId: cond(i),
    slug: `test-market-${i}`,
    question: `Test market ${i}?`,
    clobTokenIds: JSON.stringify([tok(i, 1), tok(i, 2)]),
  };
}

// Token A = "Up" of market 1; its book is the recorded 2024 book (best LAST: bid 0.511, ask 0.514).
const A = tok(1, 1);
const B = tok(1, 2);
const wsBookSample = sampleJson('ws_market/book_recorded_2024.json');
const restBookSample = sampleJson('rest/clob_book_recorded_2024.json');
const bookFor = (tokenId: string) => ({ ...wsBookSample, asset_id: tokenId, market: cond(1), timestamp: String(Date.now()) });

// Deltas are stamped after every snapshot the fake venue serves (those carry the current time).
let ts = Date.now() + 3_600_000;
function priceChange(changes: Array<{ asset_id: string; price: string; size: string; side: 'BUY' | 'SELL' }>) {
  // Current (post 2025-09-15) shape, taken from the synthetic sample and re-addressed.
  const base = sampleJson('ws_market/price_change_array_synthetic.json');
  return JSON.stringify({ ...base, market: cond(1), timestamp: String(++ts), price_changes: changes.map((c) => ({ ...c, hash: 'h' })) });
}

interface FakeVenue {
  server: Server;
  wss: WebSocketServer;
  port: number;
  markets: Record<string, unknown>[];
  bookRequests: string[];
  received: Array<{ conn: number; frame: Record<string, unknown> }>;
  sockets: ServerSocket[];
  conns: number;
  broadcast(text: string): void;
}

async function startFakeVenue(): Promise<FakeVenue> {
  const port = await freePort();
  const v: FakeVenue = {
    server: undefined as unknown as Server,
    wss: undefined as unknown as WebSocketServer,
    port,
    markets: [gammaMarket(1), gammaMarket(2)],
    bookRequests: [],
    received: [],
    sockets: [],
    conns: 0,
    broadcast(text) {
      for (const s of v.wss.clients) if (s.readyState === s.OPEN) s.send(text);
    },
  };
  v.server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    if (url.pathname === '/markets') {
      const offset = Number(url.searchParams.get('offset') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 100);
      res.end(JSON.stringify(v.markets.slice(offset, offset + limit)));
    } else if (url.pathname === '/book') {
      const tokenId = url.searchParams.get('token_id') ?? '';
      v.bookRequests.push(tokenId);
      res.end(JSON.stringify({ ...restBookSample, asset_id: tokenId, market: cond(1), timestamp: String(Date.now()) }));
    } else {
      res.statusCode = 404;
      res.end('{"error":"not found"}');
    }
  });
  v.wss = new WebSocketServer({ server: v.server, path: '/ws/market' });
  v.wss.on('connection', (s) => {
    const conn = ++v.conns;
    v.sockets.push(s);
    s.on('message', (data) => {
      const text = data.toString();
      if (text === 'PING') return s.send('PONG');
      const frame = JSON.parse(text) as Record<string, unknown>;
      v.received.push({ conn, frame });
      // Like the venue: an initial subscribe is answered with a batched array of book snapshots.
      if (frame.type === 'market') s.send(JSON.stringify((frame.assets_ids as string[]).map(bookFor)));
    });
  });
  await new Promise<void>((r) => v.server.listen(port, '127.0.0.1', () => r()));
  return v;
}

describe('scanner service against a fake venue', () => {
  let venue: FakeVenue;
  let tmp: ReturnType<typeof tempDataDir>;
  let runner: ServiceRunner<ScannerConfig>;
  let sub: BusSubscriber;
  const got: Array<{ topic: string; msg: BusMessage }> = [];
  const prices = (token: string) => got.filter((g) => g.topic === `price.${token}`).map((g) => g.msg as PriceMessage);
  const lastPrice = (token: string) => prices(token).at(-1);

  beforeAll(async () => {
    venue = await startFakeVenue();
    tmp = tempDataDir('pbscan');
    const base = `127.0.0.1:${venue.port}`;
    const config = loadConfig(ScannerConfig, {
      env: {
        POLYBOT_DATA_DIR: tmp.dir,
        POLYBOT_LOG_LEVEL: 'silent',
        POLYMARKET_GAMMA_URL: `http://${base}`,
        POLYMARKET_CLOB_URL: `http://${base}`,
        POLYMARKET_WS_URL: `ws://${base}`,
        POLYBOT_SCANNER_DISCOVERY_INTERVAL_MS: '1000',
        POLYBOT_SCANNER_STALE_MS: '5000',
        POLYBOT_SCANNER_RTDS: 'false',
        POLYBOT_SCANNER_ROUND_ASSETS: 'none',
      },
      envFile: false,
    });
    // Subscribe first so the scanner's first messages are not lost to a slow join.
    sub = new BusSubscriber({
      endpoints: [resolveEndpoints(tmp.dir, {})['prices.pub']],
      topics: [''],
      onMessage: (msg, topic) => {
        got.push({ topic, msg });
      },
    });
    sub.start();
    runner = new ServiceRunner({ name: 'scanner', config, create: createScannerService, env: {} });
    await runner.start();
  });

  afterAll(async () => {
    await runner?.stop();
    await sub?.close();
    for (const s of venue?.wss.clients ?? []) s.terminate();
    await new Promise((r) => venue?.wss.close(r));
    venue?.server.closeAllConnections();
    await new Promise((r) => venue?.server.close(r));
    tmp?.cleanup();
  });

  it('writes discovered markets and tokens to SQLite', () => {
    const db = openDatabase(resolve(tmp.dir, 'polybot.db'), { readonly: true });
    try {
      const markets = db.prepare('SELECT * FROM markets ORDER BY condition_id').all() as Record<string, unknown>[];
      expect(markets.map((m) => m.condition_id)).toEqual([cond(1), cond(2)]);
      expect(markets[0]).toMatchObject({ gamma_id: '9001', question: 'Test market 1?', slug: 'test-market-1', active: 1, closed: 0, neg_risk: 0, tick_size: '0.01', min_order_size: '5', end_date: '2026-03-12T09:25:00Z' });
      const tokens = db.prepare('SELECT * FROM market_tokens ORDER BY token_id').all();
      expect(tokens).toContainEqual({ token_id: A, condition_id: cond(1), outcome: 'Up', outcome_index: 0 });
      expect(tokens).toContainEqual({ token_id: B, condition_id: cond(1), outcome: 'Down', outcome_index: 1 });
      expect(tokens).toHaveLength(4);
    } finally {
      db.close();
    }
  });

  it('subscribes to every token and publishes top of book and depth after a book snapshot', async () => {
    await waitFor(() => venue.received.some((r) => r.frame.type === 'market'), { what: 'subscribe frame' });
    const first = venue.received.find((r) => r.frame.type === 'market')!.frame;
    expect([...(first.assets_ids as string[])].sort()).toEqual([A, B, tok(2, 1), tok(2, 2)].sort());
    // best_bid_ask, new_market and market_resolved come only with the custom feature.
    expect(first.custom_feature_enabled).toBe(true);
    // The first snapshots may race the subscriber's join; resend until one arrives.
    await waitFor(
      () => {
        if (prices(A).length === 0) venue.broadcast(JSON.stringify(bookFor(A)));
        return prices(A).length > 0;
      },
      { what: 'price after book', intervalMs: 300 },
    );
    expect(lastPrice(A)).toMatchObject({ type: 'price', token_id: A, market: cond(1), outcome: 'Up', bid: 0.511, ask: 0.514, mid: 0.5125, bid_size: 1304.72, ask_size: 20230.87, src: 'scanner' });
    const book = got.filter((g) => g.topic === `book.${A}`).at(-1)!.msg as BookMessage;
    expect(book.bids[0]).toEqual([0.511, 1304.72]);
    expect(book.bids[1]).toEqual([0.51, 12848.17]);
    expect(book.asks[0]).toEqual([0.514, 20230.87]);
    expect(book.asks[1]).toEqual([0.515, 43551.96]);
    expect(book.bids.length).toBeLessThanOrEqual(20);
    expect(book.tick_size).toBe(0.01);
  });

  it('applies price_change level updates (size 0 removes a level)', async () => {
    const before = prices(A).length;
    venue.broadcast(priceChange([{ asset_id: A, price: '0.512', size: '100', side: 'BUY' }]));
    await waitFor(() => prices(A).length > before && lastPrice(A)!.bid === 0.512, { what: 'better bid' });
    expect(lastPrice(A)).toMatchObject({ bid: 0.512, bid_size: 100, ask: 0.514, mid: 0.513 });

    venue.broadcast(priceChange([{ asset_id: A, price: '0.514', size: '0', side: 'SELL' }]));
    await waitFor(() => lastPrice(A)!.ask === 0.515, { what: 'best ask removed' });
    expect(lastPrice(A)).toMatchObject({ bid: 0.512, ask: 0.515, ask_size: 43551.96, mid: 0.5135 });
    expect(lastPrice(A)!.venue_ts).toBe(ts);
  });

  it('publishes trades from last_trade_price', async () => {
    const trade = { ...sampleJson('ws_market/last_trade_price_recorded_2024.json'), asset_id: A, market: cond(1) };
    venue.broadcast(JSON.stringify(trade));
    await waitFor(() => got.some((g) => g.topic === `trade.${A}`), { what: 'trade' });
    const t = got.find((g) => g.topic === `trade.${A}`)!.msg as TradeMessage;
    expect(t).toMatchObject({ type: 'trade', token_id: A, market: cond(1), price: 0.491, size: 85.36, side: 'SELL', venue_ts: 1724564136087 });
  });

  it('survives every recorded sample and garbage frames, and keeps publishing', async () => {
    for (const line of readSample('ws_market_messages.jsonl').split('\n')) if (line.trim()) venue.broadcast(line);
    for (const junk of ['garbage', '{"event_type":"book"}', '[1,2,3]', '{}', 'null', '\u0000\u0001', '{"event_type":"price_change","price_changes":"x"}']) venue.broadcast(junk);
    venue.broadcast(priceChange([{ asset_id: A, price: '0.513', size: '7', side: 'SELL' }]));
    await waitFor(() => lastPrice(A)!.ask === 0.513, { what: 'price after garbage' });
    expect(runner.currentState).toBe('running');
  });

  it('re-snapshots a crossed book over REST', async () => {
    const requests = venue.bookRequests.length;
    // A bid above the best ask crosses the book: the scanner must not publish it but fetch /book.
    venue.broadcast(priceChange([{ asset_id: A, price: '0.6', size: '10', side: 'BUY' }]));
    await waitFor(() => venue.bookRequests.length > requests, { what: 'REST /book request' });
    expect(venue.bookRequests.at(-1)).toBe(A);
    // The recorded REST book: best bid 0.1 (125), best ask 0.14 (705), both LAST in the venue's order.
    await waitFor(() => lastPrice(A)!.bid === 0.1, { what: 'price from REST snapshot' });
    expect(lastPrice(A)).toMatchObject({ bid: 0.1, bid_size: 125, ask: 0.14, ask_size: 705, mid: 0.12 });
    expect(prices(A).some((p) => p.bid === 0.6)).toBe(false);
    // Consumers are told the book was unusable, then usable again.
    const status = () => got.filter((g) => g.topic === `book.status.${A}`).map((g) => g.msg as BookStatusMessage);
    await waitFor(() => status().some((m) => m.trusted), { what: 'book.status trusted again' });
    expect(status().map((m) => [m.trusted, m.reason])).toEqual([
      [false, 'crossed'],
      [true, 'snapshot'],
    ]);
  });

  it('distrusts and re-snapshots a book named by an update it could not read', async () => {
    const requests = venue.bookRequests.length;
    const before = got.filter((g) => g.topic === `book.status.${A}`).length;
    // A price above 1 is no price: the update is skipped, so book A missed it.
    venue.broadcast(priceChange([{ asset_id: A, price: '1.5', size: '10', side: 'BUY' }]));
    await waitFor(() => venue.bookRequests.length > requests, { what: 'REST /book after a bad update', timeoutMs: 10_000 });
    const status = () => got.filter((g) => g.topic === `book.status.${A}`).map((g) => g.msg as BookStatusMessage).slice(before);
    await waitFor(() => status().some((m) => m.trusted), { what: 'trusted again', timeoutMs: 10_000 });
    expect(status().map((m) => [m.trusted, m.reason])).toEqual([
      [false, 'parse_error'],
      [true, 'snapshot'],
    ]);
  });

  it('serves late joiners a snapshot of its books with the sequence to resume from', async () => {
    const req = new BusRequester({ endpoint: resolveEndpoints(tmp.dir, {})['scanner.rep'], src: 'test', timeoutMs: 3000 });
    try {
      const snap = await req.call('books.snapshot', { token_ids: [A, 'not-a-token'] });
      expect(snap.books.map((b) => b.token_id)).toEqual([A]);
      const published = got.filter((g) => g.topic === `book.${A}`).at(-1)!.msg as BookMessage;
      expect(snap.books[0]).toMatchObject({ trusted: true, bids: published.bids, asks: published.asks, market: published.market });
      // Everything published so far is at or below the snapshot's sequence number.
      expect(published.seq).toBeLessThanOrEqual(snap.seq);
      const all = await req.call('books.snapshot', {});
      expect(all.books.length).toBeGreaterThanOrEqual(2);
      await expect(req.request('books.snapshot', { depth: 0 })).rejects.toMatchObject({ remoteCode: 'bad_params' });
    } finally {
      await req.close();
    }
  });

  it('picks up new markets on the next discovery round', async () => {
    venue.markets.push(gammaMarket(3));
    await waitFor(() => venue.received.some((r) => r.frame.operation === 'subscribe' && (r.frame.assets_ids as string[]).includes(tok(3, 1))), {
      what: 'dynamic subscribe for the new market',
    });
    const db = openDatabase(resolve(tmp.dir, 'polybot.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM market_tokens WHERE condition_id = ?').get(cond(3))).toEqual({ n: 2 });
    } finally {
      db.close();
    }
    venue.broadcast(JSON.stringify({ ...bookFor(tok(3, 2)), market: cond(3) }));
    await waitFor(() => lastPrice(tok(3, 2))?.market === cond(3), { what: 'price for the new market' });
    expect(lastPrice(tok(3, 2))!.outcome).toBe('Down');
  });

  it('reconnects and resubscribes once after the venue drops the socket', async () => {
    const conns = venue.conns;
    const before = prices(B).length;
    for (const s of venue.wss.clients) s.terminate();
    await waitFor(() => venue.conns > conns, { what: 'reconnect' });
    await waitFor(() => venue.received.some((r) => r.conn === venue.conns && r.frame.type === 'market'), { what: 'resubscribe' });
    // The replayed subscription covers every token, in one initial frame.
    await new Promise((r) => setTimeout(r, 300));
    const frames = venue.received.filter((r) => r.conn === venue.conns).map((r) => r.frame);
    const initial = frames.filter((f) => f.type === 'market');
    expect(initial).toHaveLength(1);
    expect([...(initial[0]!.assets_ids as string[])].sort()).toEqual([A, B, tok(2, 1), tok(2, 2), tok(3, 1), tok(3, 2)].sort());
    // The books answering the resubscribe are published again.
    await waitFor(() => prices(B).length > before, { what: 'price after reconnect' });
    expect(lastPrice(B)).toMatchObject({ bid: 0.511, ask: 0.514, outcome: 'Down' });
  });
});

describe('scanner health', () => {
  it('reports degraded while the market websocket cannot connect, and stops cleanly', async () => {
    // Gamma answers, but there is no websocket endpoint: the upgrade fails and the scanner retries.
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/markets')) res.end(JSON.stringify([gammaMarket(5)]));
      else {
        res.statusCode = 404;
        res.end('{"error":"not found"}');
      }
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    const tmp = tempDataDir('pbscanh');
    const runner = new ServiceRunner({
      name: 'scanner',
      config: loadConfig(ScannerConfig, {
        env: {
          POLYBOT_DATA_DIR: tmp.dir,
          POLYBOT_LOG_LEVEL: 'silent',
          POLYBOT_STATUS_INTERVAL_MS: '100',
          POLYMARKET_GAMMA_URL: `http://127.0.0.1:${port}`,
          POLYMARKET_CLOB_URL: `http://127.0.0.1:${port}`,
          POLYMARKET_WS_URL: `ws://127.0.0.1:${port}`,
        },
        envFile: false,
      }),
      create: createScannerService,
      env: {},
    });
    try {
      await runner.start();
      await waitFor(() => runner.currentState === 'degraded', { what: 'degraded state' });
    } finally {
      await runner.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      tmp.cleanup();
    }
    expect(runner.currentState).toBe('stopped');
  });
});
