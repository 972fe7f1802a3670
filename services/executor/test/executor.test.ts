import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Push } from 'zeromq';
import { encode } from '@msgpack/msgpack';
import { Wallet, verifyTypedData } from 'ethers';
import { BusPublisher, BusPusher, BusRequester, BusSubscriber, Forwarder, resolveEndpoints, type Endpoints } from '@polybot/bus';
import { createLogger, loadConfig, openDatabase, ServiceRunner, type SqliteDb } from '@polybot/core';
import { clobAuthTypedData, createKeystore, hmacSignature, orderHash, orderTypedData, type ApiCreds, type PostOrderBody } from '@polybot/polymarket';
import { fromMicros, newId, type BusMessage, type PriceMessage, type SignalMessage, type Unstamped } from '@polybot/protocol';
import { sleep, tempDataDir, waitFor } from '@polybot/testkit';
import { createExecutorService, ExecutorConfig } from '../src/index.js';

// ---------------------------------------------------------------- fixtures

const M1 = `0x${'a'.repeat(64)}`; // tick 0.01, min 5
const M2 = `0x${'b'.repeat(64)}`; // neg risk, tick 0.001, min 5
const M3 = `0x${'c'.repeat(64)}`; // closed
const YES = '1001';
const NO = '1002';
const NEG = '2001';
const CLOSED = '3001';
const NEG_RISK: Record<string, boolean> = { [YES]: false, [NO]: false, [NEG]: true, [CLOSED]: false };

/** The scanner's tables, as docs/interfaces.md defines them, filled the way the scanner would. */
function seedScanner(file: string): void {
  const db = openDatabase(file);
  db.exec(`
    CREATE TABLE markets(condition_id TEXT PRIMARY KEY, gamma_id TEXT, question TEXT NOT NULL, slug TEXT,
        active INTEGER NOT NULL, closed INTEGER NOT NULL, neg_risk INTEGER NOT NULL DEFAULT 0,
        tick_size TEXT NOT NULL, min_order_size TEXT NOT NULL, end_date TEXT, updated_at INTEGER NOT NULL);
    CREATE TABLE market_tokens(token_id TEXT PRIMARY KEY, condition_id TEXT NOT NULL REFERENCES markets(condition_id),
        outcome TEXT NOT NULL, outcome_index INTEGER NOT NULL);
  `);
  const m = db.prepare('INSERT INTO markets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)');
  m.run(M1, '1', 'Will it rain?', 'rain', 1, 0, 0, '0.01', '5', Date.now());
  m.run(M2, '2', 'Who wins?', 'who', 1, 0, 1, '0.001', '5', Date.now());
  m.run(M3, '3', 'Old market', 'old', 0, 1, 0, '0.01', '5', Date.now());
  const t = db.prepare('INSERT INTO market_tokens VALUES (?, ?, ?, ?)');
  t.run(YES, M1, 'Yes', 0);
  t.run(NO, M1, 'No', 1);
  t.run(NEG, M2, 'Alice', 0);
  t.run(CLOSED, M3, 'Yes', 0);
  db.close();
}

type Mode = 'fill' | 'partial' | 'live' | 'reject' | 'reject400' | 'error500' | 'hang' | 'unauthorized';

/** A CLOB that answers POST /order in the OrderResponse shape after checking the signature. */
class FakeClob {
  mode: Mode = 'fill';
  /** false: the API key routes answer 503 (the venue is not ready). */
  authUp = true;
  readonly posted: PostOrderBody[] = [];
  /** Headers and exact body text of each POST /order (L2 auth is checked by the test, not here). */
  readonly requests: Array<{ headers: Record<string, string | string[] | undefined>; text: string }> = [];
  /** API keys by lower-case address, made on POST /auth/api-key (L1 signature checked). */
  readonly keys = new Map<string, ApiCreds>();
  authCalls = 0;
  private server?: Server;
  private trade = 0;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => this.handle(req, req.method ?? '', req.url ?? '', text, res));
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private auth(method: string, url: string, req: IncomingMessage, json: (status: number, v: unknown) => void): void {
    this.authCalls++;
    if (!this.authUp) return json(503, { error: 'not ready' });
    const h = req.headers as Record<string, string>;
    const td = clobAuthTypedData(h.poly_address ?? '', h.poly_timestamp ?? '', BigInt(h.poly_nonce ?? '0'), 137);
    if (verifyTypedData(td.domain, td.types, td.message, h.poly_signature ?? '') !== h.poly_address) return json(401, { error: 'Unauthorized/Invalid api key' });
    const address = (h.poly_address ?? '').toLowerCase();
    const have = this.keys.get(address);
    if (method === 'POST') {
      if (have) return json(400, { error: 'Could not create api key' });
      const creds = { apiKey: randomUUID(), secret: randomBytes(32).toString('base64url') + '=', passphrase: randomBytes(32).toString('hex') };
      this.keys.set(address, creds);
      return json(200, creds);
    }
    return have ? json(200, have) : json(400, { error: 'Could not derive api key!' });
  }

  private handle(req: IncomingMessage, method: string, url: string, text: string, res: ServerResponse): void {
    const json = (status: number, v: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(v));
    };
    if (url === '/auth/api-key' || url === '/auth/derive-api-key') return this.auth(method, url, req, json);
    if (method !== 'POST' || url !== '/order') return json(404, { error: 'not found' });
    const body = JSON.parse(text) as PostOrderBody;
    this.posted.push(body);
    this.requests.push({ headers: req.headers, text });
    const o = body.order;
    const negRisk = NEG_RISK[o.tokenId] ?? false;
    const td = orderTypedData(o, negRisk);
    if (verifyTypedData(td.domain, td.types, td.message, o.signature) !== o.signer) return json(400, { error: 'invalid signature' });
    const id = orderHash(o, negRisk);
    const maker = fromMicros(BigInt(o.makerAmount));
    const taker = fromMicros(BigInt(o.takerAmount));
    switch (this.mode) {
      case 'fill':
        return json(200, { success: true, errorMsg: '', orderID: id, status: 'matched', makingAmount: maker, takingAmount: taker, transactionsHashes: ['0x01'], tradeIDs: [`trade-${++this.trade}`] });
      case 'partial': // half of it, the rest killed (FAK)
        return json(200, { success: true, errorMsg: '', orderID: id, status: 'matched', makingAmount: fromMicros(BigInt(o.makerAmount) / 2n), takingAmount: fromMicros(BigInt(o.takerAmount) / 2n), tradeIDs: [`trade-${++this.trade}`] });
      case 'live':
        return json(200, { success: true, errorMsg: '', orderID: id, status: 'live', makingAmount: '', takingAmount: '', tradeIDs: [] });
      case 'reject':
        return json(200, { success: false, errorMsg: 'not enough balance / allowance', orderID: null });
      case 'reject400':
        return json(400, { error: 'the market is not yet ready to process new orders' });
      case 'error500':
        return json(500, { error: 'Internal server error' });
      case 'hang':
        return; // never answers
      case 'unauthorized':
        return json(401, { error: 'Unauthorized/Invalid api key' });
    }
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}

type Ev = Record<string, unknown> & { topic: string };

interface Stack {
  tmp: ReturnType<typeof tempDataDir>;
  ep: Endpoints;
  fwd: Forwarder;
  sub: BusSubscriber;
  events: Ev[];
}

async function startBus(dir: string, tmp: ReturnType<typeof tempDataDir>): Promise<Stack> {
  const ep = resolveEndpoints(dir, {});
  const fwd = new Forwarder({ frontend: ep['events.in'], backend: ep['events.pub'] });
  await fwd.start();
  const events: Ev[] = [];
  const sub = new BusSubscriber({
    endpoints: [ep['events.pub']],
    topics: ['event.', 'status.executor'],
    onMessage: (m: BusMessage, topic: string) => void events.push({ topic, ...(m as unknown as Record<string, unknown>) }),
  });
  sub.start();
  return { tmp, ep, fwd, sub, events };
}

function executorRunner(dir: string, clobUrl: string, extra: Record<string, string> = {}, logs?: string[]) {
  const env = {
    POLYBOT_DATA_DIR: dir,
    POLYBOT_LOG_LEVEL: 'debug',
    POLYBOT_STATUS_INTERVAL_MS: '200',
    POLYMARKET_CLOB_URL: clobUrl,
    POLYBOT_RISK_MAX_ORDER_SIZE: '100',
    POLYBOT_RISK_MAX_POSITION: '100',
    POLYBOT_RISK_MAX_NOTIONAL: '50',
    POLYBOT_EXECUTOR_ORDER_TIMEOUT_MS: '1000',
    ...extra,
  };
  const config = loadConfig(ExecutorConfig, { env, envFile: false });
  const log = createLogger('executor', { level: logs ? 'debug' : 'silent', destination: { write: (s: string) => void logs?.push(s) } });
  return new ServiceRunner({ name: 'executor', config, create: createExecutorService, env: {}, log });
}

// ---------------------------------------------------------------- the executor with a fake venue

describe('executor', () => {
  const clob = new FakeClob();
  const logs: string[] = [];
  let stack: Stack;
  let runner: ServiceRunner<ExecutorConfig>;
  let pusher: BusPusher;
  let db: SqliteDb;
  let dir: string;

  const signal = (over: Partial<SignalMessage> = {}): Unstamped<SignalMessage> => ({
    type: 'signal',
    id: newId('sig-'),
    strategy: 's1',
    token_id: YES,
    market: M1,
    side: 'BUY',
    price: 0.56,
    size: 10,
    order_type: 'GTC',
    ...over,
  });
  const push = (s: Unstamped<SignalMessage>) => {
    expect(pusher.push('signal', s)).toBe(true);
    return s;
  };
  const eventFor = (kind: string, pred: (e: Ev) => boolean, what: string) =>
    waitFor(() => stack.events.find((e) => e.type === 'event' && e.kind === kind && pred(e)), { what, timeoutMs: 10_000 });
  const orderOf = (signalId: string) => db.prepare('SELECT * FROM orders WHERE signal_id = ?').get(signalId) as Record<string, unknown> | undefined;
  const signalRow = (id: string) => db.prepare('SELECT * FROM signals WHERE id = ?').get(id) as Record<string, unknown> | undefined;
  const position = (token: string) => db.prepare("SELECT * FROM positions WHERE strategy = 's1' AND token_id = ?").get(token) as Record<string, unknown> | undefined;
  /** Signals are handled in order: once a later one is settled, every earlier one is too. */
  const drain = async () => {
    const s = push(signal({ token_id: '999999' }));
    await eventFor('signal', (e) => e.signal_id === s.id, 'sentinel denial');
  };
  const latestMetrics = () => [...stack.events].reverse().find((e) => e.type === 'status')?.metrics as Record<string, number> | undefined;

  beforeAll(async () => {
    const tmp = tempDataDir('pbexec');
    dir = tmp.dir;
    seedScanner(join(dir, 'polybot.db'));
    await clob.start();
    stack = await startBus(dir, tmp);
    runner = executorRunner(dir, clob.url, {}, logs);
    await runner.start();
    // The events path is joined once the executor's status messages arrive.
    await waitFor(() => stack.events.some((e) => e.type === 'status'), { what: 'executor status on events.pub' });
    pusher = new BusPusher({ endpoint: stack.ep['signals.push'], src: 'strategy:s1' });
    pusher.start();
    db = openDatabase(join(dir, 'polybot.db'), { readonly: true });
  });

  afterAll(async () => {
    db?.close();
    await pusher?.close(500);
    await runner?.stop();
    await stack?.sub.close();
    await stack?.fwd.stop();
    await clob.stop();
    stack?.tmp.cleanup();
  });

  it('turns a filled signal into order, trade and position rows and events', async () => {
    clob.mode = 'fill';
    const s = push(signal());
    const filled = await eventFor('order', (e) => e.signal_id === s.id && e.status === 'filled', 'order filled event');
    expect(stack.events.find((e) => e.kind === 'signal' && e.signal_id === s.id)).toMatchObject({ topic: 'event.signal.s1', status: 'accepted' });
    expect(stack.events.find((e) => e.kind === 'order' && e.signal_id === s.id && e.status === 'pending')).toMatchObject({ topic: 'event.order.s1' });
    expect(filled).toMatchObject({ topic: 'event.order.s1', price: '0.56', size: '10', filled: '10', side: 'BUY', order_type: 'GTC', market: M1 });
    const fill = await eventFor('fill', (e) => e.order_id === filled.order_id, 'fill event');
    expect(fill).toMatchObject({ topic: 'event.fill.s1', trade_id: 'trade-1', price: '0.56', size: '10', fee: '0', token_id: YES });
    const pos = await eventFor('position', (e) => e.token_id === YES, 'position event');
    expect(pos).toMatchObject({ topic: 'event.position.s1', size: '10', avg_price: '0.56', cost: '5.6', realized_pnl: '0' });

    const body = clob.posted.at(-1) as PostOrderBody;
    expect(body).toMatchObject({ orderType: 'GTC', owner: clob.keys.get(body.order.signer.toLowerCase())?.apiKey, order: { side: 'BUY', makerAmount: '5600000', takerAmount: '10000000', tokenId: YES } });
    const order = orderOf(s.id);
    expect(order).toMatchObject({ order_id: orderHash(body.order, false), venue_order_id: orderHash(body.order, false), status: 'filled', filled: '10', price: '0.56', size: '10', strategy: 's1', market: M1 });
    expect(JSON.parse(order?.request as string)).toEqual(body); // persisted exactly what was sent
    expect(db.prepare('SELECT * FROM trades WHERE order_id = ?').all(order?.order_id)).toEqual([
      expect.objectContaining({ trade_id: 'trade-1', side: 'BUY', price: '0.56', size: '10', fee: '0', market: M1, strategy: 's1' }),
    ]);
    expect(position(YES)).toMatchObject({ size: '10', avg_price: '0.56', cost: '5.6', realized_pnl: '0', market: M1 });
    expect(signalRow(s.id)).toMatchObject({ status: 'done', strategy: 's1', token_id: YES });
  });

  it('signs every order request with L2 headers that verify against the API secret', async () => {
    expect(clob.requests.length).toBeGreaterThan(0);
    for (const { headers, text } of clob.requests) {
      const body = JSON.parse(text) as PostOrderBody;
      const address = body.order.signer;
      const creds = clob.keys.get(address.toLowerCase()) as ApiCreds;
      expect(headers).toMatchObject({ poly_address: address, poly_api_key: creds.apiKey, poly_passphrase: creds.passphrase });
      const ts = Number(headers.poly_timestamp);
      expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(60);
      expect(headers.poly_signature).toBe(hmacSignature(creds.secret, headers.poly_timestamp as string, 'POST', '/order', text));
      expect(body.owner).toBe(creds.apiKey);
    }
  });

  it('averages buys and realizes PnL on a sell against the average price', async () => {
    clob.mode = 'fill';
    const b = push(signal({ price: 0.59, size: 5 }));
    await eventFor('order', (e) => e.signal_id === b.id && e.status === 'filled', 'second buy filled');
    await waitFor(() => position(YES)?.size === '15');
    expect(position(YES)).toMatchObject({ size: '15', cost: '8.55', avg_price: '0.57', realized_pnl: '0' });
    const s = push(signal({ side: 'SELL', price: 0.6, size: 5 }));
    await eventFor('order', (e) => e.signal_id === s.id && e.status === 'filled', 'sell filled');
    const pos = await eventFor('position', (e) => e.token_id === YES && e.realized_pnl !== '0', 'position after sell');
    // basis 8.55 × 5/15 = 2.85; proceeds 3.00 → realized 0.15
    expect(pos).toMatchObject({ size: '10', cost: '5.7', avg_price: '0.57', realized_pnl: '0.15' });
    expect(position(YES)).toMatchObject({ size: '10', cost: '5.7', avg_price: '0.57', realized_pnl: '0.15' });
    expect(clob.posted.at(-1)?.order).toMatchObject({ side: 'SELL', makerAmount: '5000000', takerAmount: '3000000' });
  });

  it('denies by risk with a code, stores the denial and sends nothing', async () => {
    const sent = clob.posted.length;
    const cases: Array<[Partial<SignalMessage>, string]> = [
      [{ token_id: '424242' }, 'unknown_market'],
      [{ token_id: CLOSED, market: M3 }, 'market_closed'],
      [{ market: M2 }, 'market_mismatch'],
      [{ price: 0.555 }, 'price_off_tick'],
      [{ size: 10.555 }, 'size_precision'],
      [{ size: 3 }, 'size_below_min'],
      [{ price: 0.1, size: 101 }, 'max_order_size'],
      [{ price: 0.6, size: 90 }, 'max_notional'],
      [{ price: 0.1, size: 91 }, 'max_position'], // holds 10, limit 100
      [{ side: 'SELL', price: 0.5, size: 11 }, 'insufficient_position'],
      [{ order_type: 'GTD' }, 'unsupported_order_type'],
      [{ order_type: 'FOK', price: 0.1, size: 5 }, 'min_notional'],
    ];
    for (const [over, code] of cases) {
      const s = push(signal(over));
      const ev = await eventFor('signal', (e) => e.signal_id === s.id, `denial ${code}`);
      expect(ev).toMatchObject({ topic: 'event.signal.s1', status: 'denied', code });
      expect(typeof ev.reason).toBe('string');
      expect(signalRow(s.id)).toMatchObject({ status: 'denied', code });
      expect(orderOf(s.id)).toBeUndefined();
    }
    expect(clob.posted.length).toBe(sent);
  });

  it('ignores a duplicate signal id: no second order', async () => {
    clob.mode = 'fill';
    const s = push(signal({ token_id: NO, price: 0.4, size: 5 }));
    await eventFor('order', (e) => e.signal_id === s.id && e.status === 'filled', 'first order filled');
    const sent = clob.posted.length;
    push(s);
    push({ ...s, price: 0.41 }); // same id, different content: still the same signal
    await drain();
    expect(clob.posted.length).toBe(sent);
    expect(db.prepare('SELECT COUNT(*) FROM orders WHERE signal_id = ?').pluck().get(s.id)).toBe(1);
    await waitFor(() => (latestMetrics()?.signals_duplicate ?? 0) >= 2, { what: 'duplicate metric' });
  });

  it('dead-letters malformed frames and messages that are not signals', async () => {
    const raw = new Push({ immediate: true, linger: 500 });
    raw.connect(stack.ep['signals.push']);
    const before = db.prepare('SELECT COUNT(*) FROM dead_letters').pluck().get() as number;
    await raw.send(['signal', encode({ type: 'signal', id: 'short', strategy: 's1' })]);
    await raw.send(['signal', Buffer.from([0xc1, 0x00, 0xff])]);
    await raw.send(['only-one-frame']);
    const price: Unstamped<PriceMessage> = { type: 'price', token_id: YES, market: M1, bid: 0.5, ask: 0.51, mid: 0.505, bid_size: 1, ask_size: 1, venue_ts: Date.now() };
    pusher.push('price.1001', price);
    const rows = await waitFor(() => {
      const r = db.prepare('SELECT * FROM dead_letters WHERE id > ? ORDER BY id').all(before) as Record<string, unknown>[];
      return r.length >= 4 ? r : undefined;
    }, { what: 'dead letters' });
    // Two sockets: arrival order between them is not defined.
    expect(rows.map((r) => r.code).sort()).toEqual(['frame_count', 'msgpack', 'schema', 'unexpected_type']);
    const schema = rows.find((r) => r.code === 'schema');
    expect(schema).toMatchObject({ source: 'signals.push', topic: 'signal' });
    expect(Buffer.isBuffer(schema?.payload)).toBe(true);
    expect(rows.find((r) => r.code === 'unexpected_type')).toMatchObject({ topic: 'price.1001' });
    await waitFor(() => stack.events.filter((e) => e.topic === 'event.signal.unknown' && e.status === 'dead_lettered').length >= 4, { what: 'dead-letter events' });
    raw.close();
    // Still taking signals afterwards.
    await drain();
  });

  it('records venue rejections with the reason', async () => {
    clob.mode = 'reject';
    const a = push(signal({ price: 0.5, size: 5 }));
    const ea = await eventFor('order', (e) => e.signal_id === a.id && e.status === 'rejected', 'rejected (success:false)');
    expect(ea.reason).toBe('not enough balance / allowance');
    clob.mode = 'reject400';
    const b = push(signal({ price: 0.5, size: 5 }));
    const eb = await eventFor('order', (e) => e.signal_id === b.id && e.status === 'rejected', 'rejected (400)');
    expect(eb.reason).toMatch(/not yet ready/);
    expect(orderOf(a.id)).toMatchObject({ status: 'rejected', reason: 'not enough balance / allowance', filled: '0' });
    expect(signalRow(a.id)).toMatchObject({ status: 'done' });
    expect(position(YES)).toMatchObject({ size: '10' });
  });

  it('leaves an order unknown after a 500 or a timeout, and never re-sends it', async () => {
    for (const mode of ['error500', 'hang'] as const) {
      clob.mode = mode;
      const sent = clob.posted.length;
      const s = push(signal({ price: 0.5, size: 5 }));
      const ev = await eventFor('order', (e) => e.signal_id === s.id && e.status !== 'pending', `${mode} outcome`);
      expect(ev.status).toBe('unknown');
      clob.mode = 'fill';
      await drain();
      expect(clob.posted.length).toBe(sent + 1);
      expect(orderOf(s.id)).toMatchObject({ status: 'unknown', filled: '0' });
      expect(signalRow(s.id)).toMatchObject({ status: 'accepted' });
    }
    // Working and unknown orders count against the position limit: 10 held + 2×5 unknown + 81 > 100.
    const s = push(signal({ price: 0.1, size: 81 }));
    expect(await eventFor('signal', (e) => e.signal_id === s.id, 'denial')).toMatchObject({ status: 'denied', code: 'max_position' });
  });

  it('keeps a resting order live and cancels the unfilled rest of a FAK', async () => {
    clob.mode = 'live';
    const a = push(signal({ token_id: NO, price: 0.3, size: 5 }));
    await eventFor('order', (e) => e.signal_id === a.id && e.status === 'live', 'live order');
    expect(signalRow(a.id)).toMatchObject({ status: 'accepted' });
    clob.mode = 'partial';
    const b = push(signal({ token_id: NO, price: 0.5, size: 10, order_type: 'FAK' }));
    const ev = await eventFor('order', (e) => e.signal_id === b.id && e.status === 'canceled', 'FAK remainder killed');
    expect(ev).toMatchObject({ filled: '5' });
    expect(clob.posted.at(-1)?.order).toMatchObject({ makerAmount: '5000000', takerAmount: '10000000' });
    // NO: 5 @ 0.40 earlier + 5 @ 0.50 now
    await waitFor(() => position(NO)?.size === '10');
    expect(position(NO)).toMatchObject({ size: '10', cost: '4.5', avg_price: '0.45' });
  });

  it('signs for the neg-risk exchange on a neg-risk market', async () => {
    clob.mode = 'fill';
    const s = push(signal({ token_id: NEG, market: M2, price: 0.123, size: 20 }));
    const ev = await eventFor('order', (e) => e.signal_id === s.id && e.status !== 'pending', 'neg-risk order');
    expect(ev.status).toBe('filled'); // the fake verified the signature against the neg-risk exchange
    expect(orderOf(s.id)?.order_id).toBe(orderHash((clob.posted.at(-1) as PostOrderBody).order, true));
    expect(position(NEG)).toMatchObject({ size: '20', cost: '2.46', avg_price: '0.123' });
  });

  it('answers positions.list over executor.rep', async () => {
    const req = new BusRequester({ endpoint: stack.ep['executor.rep'], src: 'test', timeoutMs: 3000 });
    try {
      const all = await req.call('positions.list', {});
      expect(all.positions).toEqual(
        expect.arrayContaining([
          { strategy: 's1', token_id: YES, market: M1, size: '10', avg_price: '0.57', cost: '5.7', realized_pnl: '0.15' },
          { strategy: 's1', token_id: NEG, market: M2, size: '20', avg_price: '0.123', cost: '2.46', realized_pnl: '0' },
        ]),
      );
      expect((await req.call('positions.list', { strategy: 'nobody' })).positions).toEqual([]);
    } finally {
      await req.close();
    }
  });

  it('reports counts in its metrics', async () => {
    // Status goes out every 200 ms: wait for one taken after the last order settled.
    const m = await waitFor(() => {
      const x = latestMetrics();
      return x && x.orders_unknown === 2 && x.orders_canceled === 1 && x.orders_filled === 5 ? x : undefined;
    }, { what: 'metrics' });
    expect(m).toMatchObject({ execution_mode: 'sim', orders_pending: 0, orders_rejected: 2, orders_live: 1, orders_partially_filled: 0 });
    expect(m.signals_denied).toBeGreaterThanOrEqual(12);
    expect(m.signals_dead_lettered).toBeGreaterThanOrEqual(4);
    expect(m.signals_accepted).toBeGreaterThanOrEqual(10);
  });

  it('takes the kill switch, reduce-only and new limits at run time over executor.rep, and keeps them', async () => {
    const req = new BusRequester({ endpoint: stack.ep['executor.rep'], src: 'test', timeoutMs: 3000 });
    const denied = async (over: Partial<SignalMessage>, code: string) => {
      const s = push(signal(over));
      const ev = await eventFor('signal', (e) => e.signal_id === s.id, `denial ${code}`);
      expect(ev).toMatchObject({ status: 'denied', code });
    };
    try {
      const st = await req.call('risk.status', {});
      expect(st).toMatchObject({ state: 'ACTIVE', effective: 'ACTIVE', limits: { max_open_orders: 50, max_daily_loss: '200', price_band: '0.2' } });
      const sent = clob.posted.length;

      expect(await req.call('trading.halt', { reason: 'test halt' })).toMatchObject({ state: 'HALTED', reason: 'test halt' });
      await denied({ side: 'SELL', price: 0.5, size: 5 }, 'trading_halted');
      expect(clob.posted.length).toBe(sent);
      const stored = db.prepare("SELECT value FROM executor_controls WHERE key = 'trading_state'").pluck().get();
      expect(stored).toBe('HALTED');

      await req.call('trading.reduce', {});
      await denied({ price: 0.1, size: 5 }, 'reducing_only');
      // A sell of held shares reduces the position: it goes to the venue.
      clob.mode = 'reject';
      const sell = push(signal({ side: 'SELL', price: 0.5, size: 5 }));
      await eventFor('order', (e) => e.signal_id === sell.id && e.status === 'rejected', 'reduce-only sell sent');
      expect(clob.posted.length).toBe(sent + 1);

      await req.call('trading.resume', {});
      await req.call('risk.set_limits', { max_open_orders: 0 });
      await denied({ price: 0.1, size: 5 }, 'max_open_orders');
      await req.call('risk.set_limits', { max_total_exposure: '0.5', max_open_orders: 50 });
      await denied({ price: 0.1, size: 6 }, 'max_total_exposure');
      await expect(req.request('risk.set_limits', { price_band: 'lots' })).rejects.toMatchObject({ remoteCode: 'bad_params' });
      await expect(req.request('risk.set_limits', { price_band: '2' })).rejects.toMatchObject({ remoteCode: 'bad_limits' });
      const after = await req.call('risk.set_limits', { max_total_exposure: '2000' });
      expect(after).toMatchObject({ state: 'ACTIVE', limits: { max_total_exposure: '2000', max_open_orders: 50, price_band: '0.2' } });
      await expect(req.request('orders.cancel', { order_id: 'nope' })).rejects.toMatchObject({ remoteCode: 'unknown_order' });
    } finally {
      clob.mode = 'fill';
      await req.close();
    }
  });

  it('keeps its dev key private, never logs it, and reuses it after a restart with an order in flight', async () => {
    const keyFile = join(dir, 'keys', 'dev-wallet.key');
    expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyFile, 'utf8').trim();
    const address = new Wallet(key).address.toLowerCase();
    const creds = clob.keys.get(address) as ApiCreds;
    expect(creds).toBeDefined();
    expect(clob.posted.every((b) => b.owner === creds.apiKey)).toBe(true);

    // Graceful stop with an order in flight: intake stops, the order finishes (as unknown), then close.
    clob.mode = 'hang';
    const s = push(signal({ price: 0.5, size: 5 }));
    const sent = clob.posted.length;
    await waitFor(() => clob.posted.length > sent || orderOf(s.id)?.status === 'pending', { what: 'order in flight' });
    await waitFor(() => clob.posted.length > sent, { what: 'order posted' });
    await runner.stop();
    expect(orderOf(s.id)).toMatchObject({ status: 'unknown' });

    clob.mode = 'fill';
    runner = executorRunner(dir, clob.url, {}, logs);
    await runner.start();
    const again = push(signal({ token_id: NO, side: 'SELL', price: 0.5, size: 5 }));
    await eventFor('order', (e) => e.signal_id === again.id && e.status === 'filled', 'order after restart');
    expect(clob.posted.at(-1)?.owner).toBe(creds.apiKey); // derived again after the restart: the same key
    expect(clob.keys.size).toBe(1);
    expect(logs.length).toBeGreaterThan(10);
    const text = logs.join('\n');
    expect(text).not.toContain(key.replace(/^0x/, ''));
    for (const secret of [creds.secret, creds.secret.replace(/=+$/, ''), creds.passphrase, creds.apiKey]) expect(text).not.toContain(secret);
  });
});

describe('executor without venue API credentials', () => {
  it('starts anyway, denies signals until the key is derived, and derives again after a 401', async () => {
    const clob = new FakeClob();
    clob.authUp = false;
    const tmp = tempDataDir('pbexa');
    seedScanner(join(tmp.dir, 'polybot.db'));
    await clob.start();
    const stack = await startBus(tmp.dir, tmp);
    const runner = executorRunner(tmp.dir, clob.url);
    const pusher = new BusPusher({ endpoint: stack.ep['signals.push'], src: 'strategy:s1' });
    const sig = (over: Partial<SignalMessage> = {}): Unstamped<SignalMessage> => ({
      type: 'signal', id: newId('sig-'), strategy: 's1', token_id: YES, market: M1, side: 'BUY', price: 0.5, size: 5, order_type: 'GTC', ...over,
    });
    const outcome = (id: string) =>
      waitFor(() => stack.events.find((e) => e.type === 'event' && ((e.kind === 'signal' && e.signal_id === id && e.status === 'denied') || (e.kind === 'order' && e.signal_id === id && e.status !== 'pending'))), { what: `outcome of ${id}`, timeoutMs: 10_000 });
    try {
      const t0 = Date.now();
      await runner.start();
      expect(Date.now() - t0).toBeLessThan(5000);
      await waitFor(() => stack.events.some((e) => e.type === 'status'), { what: 'executor status' });
      pusher.start();
      const a = sig();
      pusher.push('signal', a);
      expect(await outcome(a.id)).toMatchObject({ kind: 'signal', status: 'denied', code: 'no_api_credentials' });
      expect(String((await outcome(a.id)).reason)).toMatch(/no API credentials.*503|not ready/);
      expect(clob.posted).toHaveLength(0);

      clob.authUp = true; // the venue comes up: the background retry gets the key
      await waitFor(() => clob.keys.size === 1, { what: 'api key created', timeoutMs: 10_000 });
      await waitFor(() => stack.events.some((e) => e.type === 'status' && (e.metrics as Record<string, number>)?.venue_auth_ready === 1), { what: 'auth ready metric' });
      const b = sig();
      pusher.push('signal', b);
      expect(await outcome(b.id)).toMatchObject({ kind: 'order', status: 'filled' });

      // The venue forgets the key: the order is rejected with its reason and the key is derived again.
      clob.mode = 'unauthorized';
      const calls = clob.authCalls;
      const c = sig();
      pusher.push('signal', c);
      expect(await outcome(c.id)).toMatchObject({ kind: 'order', status: 'rejected', reason: 'Unauthorized/Invalid api key' });
      await waitFor(() => clob.authCalls > calls + 1, { what: 'derive again', timeoutMs: 10_000 });
      const since = stack.events.length;
      await waitFor(() => stack.events.slice(since).some((e) => e.type === 'status' && (e.metrics as Record<string, number>)?.venue_auth_ready === 1), { what: 'auth ready again' });
      clob.mode = 'fill';
      const d = sig();
      pusher.push('signal', d);
      expect(await outcome(d.id)).toMatchObject({ kind: 'order', status: 'filled' });
      const key = [...clob.keys.values()][0] as ApiCreds;
      expect(clob.posted.map((p) => p.owner)).toEqual([key.apiKey, key.apiKey, key.apiKey]);
    } finally {
      await pusher.close(500);
      await runner.stop();
      await stack.sub.close();
      await stack.fwd.stop();
      await clob.stop();
      tmp.cleanup();
    }
  });
});

describe('executor configuration', () => {
  it('signs with a key from an encrypted keystore and keeps the password out of logs and errors', async () => {
    const tmp = tempDataDir('pbexk');
    const password = 'correct horse battery staple';
    const keystore = join(tmp.dir, 'keys', 'executor.json');
    const passwordFile = join(tmp.dir, 'keys', 'password.txt');
    try {
      const { address } = await createKeystore({ path: keystore, password, scryptN: 1024 });
      writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
      const logs: string[] = [];
      const r = executorRunner(tmp.dir, 'http://127.0.0.1:9', { POLYBOT_KEYSTORE: keystore, POLYBOT_KEYSTORE_PASSWORD_FILE: passwordFile }, logs);
      await r.start();
      await r.stop();
      const ready = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'wallet ready');
      expect(ready).toMatchObject({ address, key_source: 'keystore' });
      expect(logs.join('\n')).not.toContain(password);

      writeFileSync(passwordFile, 'hunter2-not-it\n', { mode: 0o600 });
      const bad = executorRunner(tmp.dir, 'http://127.0.0.1:9', { POLYBOT_KEYSTORE: keystore, POLYBOT_KEYSTORE_PASSWORD_FILE: passwordFile });
      const err = await bad.start().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      await bad.stop();
      expect(err?.message).toMatch(/cannot load the signing key/);
      expect(err?.message).toMatch(/wrong password/);
      expect(err?.message).not.toContain('hunter2-not-it');

      chmodSync(passwordFile, 0o644);
      const open = executorRunner(tmp.dir, 'http://127.0.0.1:9', { POLYBOT_KEYSTORE: keystore, POLYBOT_KEYSTORE_PASSWORD_FILE: passwordFile });
      await expect(open.start()).rejects.toThrow(/chmod 600/);
      await open.stop();
    } finally {
      tmp.cleanup();
    }
  });

  it('refuses live mode without the explicit opt-in', async () => {
    const tmp = tempDataDir('pbexc');
    try {
      for (const [extra, msg] of [
        [{ POLYBOT_EXECUTION_MODE: 'live' }, /POLYBOT_LIVE_TRADING=yes/],
        [{ POLYBOT_EXECUTION_MODE: 'live', POLYBOT_LIVE_TRADING: 'yes' }, /POLYBOT_PRIVATE_KEY/],
        [{ POLYBOT_VENUE: 'polymarket' }, /real exchange/],
      ] as const) {
        const r = executorRunner(tmp.dir, 'http://127.0.0.1:9', extra);
        await expect(r.start()).rejects.toThrow(msg);
        await r.stop();
        expect(r.currentState).not.toBe('running');
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('names a bad variable without echoing a secret', () => {
    expect(() => loadConfig(ExecutorConfig, { env: { POLYBOT_RISK_MAX_NOTIONAL: 'lots' }, envFile: false })).toThrow(/POLYBOT_RISK_MAX_NOTIONAL/);
    const secret = 'ab'.repeat(31);
    let message = '';
    try {
      loadConfig(ExecutorConfig, { env: { POLYBOT_PRIVATE_KEY: secret }, envFile: false });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/POLYBOT_PRIVATE_KEY/);
    expect(message).not.toContain(secret);
  });
});

describe('executor in paper mode', () => {
  let stack: Stack;
  let runner: ServiceRunner<ExecutorConfig>;
  let pusher: BusPusher;
  let books: BusPublisher;

  beforeAll(async () => {
    const tmp = tempDataDir('pbexp');
    seedScanner(join(tmp.dir, 'polybot.db'));
    stack = await startBus(tmp.dir, tmp);
    books = new BusPublisher({ endpoint: stack.ep['prices.pub'], mode: 'bind', src: 'scanner' });
    await books.start();
    // No venue at all: paper mode must never need one.
    runner = executorRunner(tmp.dir, 'http://127.0.0.1:9', { POLYBOT_EXECUTION_MODE: 'paper' });
    await runner.start();
    await waitFor(() => stack.events.some((e) => e.type === 'status'), { what: 'executor status' });
    pusher = new BusPusher({ endpoint: stack.ep['signals.push'], src: 'strategy:s1' });
    pusher.start();
  });

  afterAll(async () => {
    await pusher?.close(500);
    await runner?.stop();
    await books?.close(200);
    await stack?.sub.close();
    await stack?.fwd.stop();
    stack?.tmp.cleanup();
  });

  const sig = (over: Partial<SignalMessage>): Unstamped<SignalMessage> => ({
    type: 'signal',
    id: newId('sig-'),
    strategy: 's1',
    token_id: YES,
    market: M1,
    side: 'BUY',
    price: 0.56,
    size: 10,
    order_type: 'GTC',
    ...over,
  });
  const orderEvent = (id: string, status: string) =>
    waitFor(() => stack.events.find((e) => e.kind === 'order' && e.signal_id === id && e.status === status), { what: `${status} order`, timeoutMs: 10_000 });
  const book = (bids: Array<[number, number]>, asks: Array<[number, number]>) =>
    books.publish(`book.${YES}`, { type: 'book', token_id: YES, market: M1, bids, asks, tick_size: 0.01, venue_ts: Date.now() });

  it('rests a GTC without a crossing book, then fills it from a later book at its own price', async () => {
    const s = sig({});
    pusher.push('signal', s);
    await orderEvent(s.id, 'live');
    // Resend until the executor's subscription has joined (a PUB drops what nobody hears yet).
    await waitFor(
      () => {
        book([[0.5, 100]], [[0.55, 4], [0.56, 20]]);
        return stack.events.some((e) => e.kind === 'order' && e.signal_id === s.id && e.status === 'filled');
      },
      { what: 'paper fill from a book', timeoutMs: 10_000, intervalMs: 200 },
    );
    const pos = await waitFor(() => [...stack.events].reverse().find((e) => e.kind === 'position'), { what: 'position' });
    expect(pos).toMatchObject({ token_id: YES, size: '10', cost: '5.6', realized_pnl: '0' });
  });

  it('walks the depth for a FAK, refuses a FOK it cannot fill, and never calls a venue', async () => {
    book([[0.52, 3]], [[0.6, 50]]);
    await sleep(200);
    const fok = sig({ side: 'SELL', order_type: 'FOK', price: 0.5, size: 5 });
    pusher.push('signal', fok);
    const rej = await orderEvent(fok.id, 'rejected');
    expect(String(rej.reason)).toMatch(/fully filled|FOK/i);

    book([[0.52, 3], [0.5, 10]], [[0.6, 50]]);
    await sleep(200);
    const fak = sig({ side: 'SELL', order_type: 'FAK', price: 0.5, size: 5 });
    pusher.push('signal', fak);
    await orderEvent(fak.id, 'filled');
    const fills = stack.events.filter((e) => e.kind === 'fill' && e.order_id === stack.events.find((o) => o.kind === 'order' && o.signal_id === fak.id)?.order_id);
    expect(fills.map((f) => [f.price, f.size])).toEqual([
      ['0.52', '3'],
      ['0.5', '2'],
    ]);
    // Sold 5 of 10 bought at 0.56: proceeds 1.56 + 1.00, basis 2.80 → realized −0.24, exactly.
    const pos = await waitFor(() => [...stack.events].reverse().find((e) => e.kind === 'position' && e.size === '5'), { what: 'position after sell' });
    expect(pos).toMatchObject({ size: '5', cost: '2.8', realized_pnl: '-0.24' });
    expect(stack.events.some((e) => e.kind === 'order' && /not sent/.test(String(e.reason ?? '')))).toBe(false);
  });
});
