import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusPublisher, BusPusher } from '@polybot/bus';
import { openDatabase, type ServiceRunner, type SqliteDb } from '@polybot/core';
import { buildSignedOrder, orderHash } from '@polybot/polymarket';
import { fromMicros, newId, toMicros, type BookMessage, type SignalMessage, type Unstamped } from '@polybot/protocol';
import { freePort, tempDataDir, waitFor } from '@polybot/testkit';
import { Wallet } from 'ethers';
import type { ExecutorConfig } from '../src/index.js';
import { takerFee } from '../src/paper.js';
import { executorRunner, gammaMarkets, seedScanner, startBus, type Bus } from './sim-fixture.js';
import { admin, startSimAt, TEST_KEY } from './venue-helpers.js';

/**
 * The executor on the real simulator, in one process: positions follow the venue's trades (a FAILED
 * trade voids its fill), intake waits for reconciliation, and an order a crashed run persisted but
 * never sent is settled with its identical signed body — one venue order, never a second signature.
 */

/** A row read back from SQLite; the columns these tests read. */
type Row = Record<string, string> & { size: string; cost: string; fees: string; fee: string; usdc: string; status: string; order_id: string; price: string; request: string; reason: string };
type Sim = Awaited<ReturnType<typeof startSimAt>>;

const wallet = new Wallet(TEST_KEY);
const ADMIN = 'executor-venue-test-admin';

describe('executor on the simulator', () => {
  let sim: Sim;
  let dir: string;
  let cleanup: () => void;
  let bus: Bus;
  let pusher: BusPusher;
  let db: SqliteDb;
  let runner: ServiceRunner<ExecutorConfig> | undefined;
  let token = '';
  let market = '';

  const startExecutor = async (extra: Record<string, string> = {}) => {
    runner = executorRunner({
      ...extra,
      POLYBOT_DATA_DIR: dir,
      POLYBOT_SIM_PORT: String(sim.service.port),
      POLYBOT_PRIVATE_KEY: TEST_KEY,
      POLYBOT_RISK_MAX_NOTIONAL: '1000',
      POLYBOT_RISK_PRICE_BAND: '0',
      POLYBOT_EXECUTOR_HEARTBEAT_MS: '1000',
    });
    await runner.start();
  };
  const stopExecutor = async () => {
    await runner?.stop();
    runner = undefined;
  };
  const signal = (over: Partial<SignalMessage> = {}): Unstamped<SignalMessage> => ({
    type: 'signal',
    id: newId('sig-'),
    strategy: 's1',
    token_id: token,
    market,
    side: 'BUY',
    price: 0.99,
    size: 10,
    order_type: 'FAK',
    ...over,
  });
  const orderOf = (signalId: string) => db.prepare('SELECT * FROM orders WHERE signal_id = ?').get(signalId) as Row | undefined;
  const position = () => db.prepare("SELECT * FROM positions WHERE strategy = 's1' AND token_id = ?").get(token) as Row | undefined;
  const venueShares = () => toMicros(sim.service.exchange.account(wallet.address)?.positions[token] ?? '0');
  const intakeOpen = () =>
    waitFor(() => [...bus.events].reverse().find((e) => e.topic === 'status.executor' && (e.metrics as Record<string, unknown>)?.intake_open === 1), {
      what: 'executor taking signals',
      timeoutMs: 20_000,
    });
  /** Every trade of the wallet is CONFIRMED or FAILED at the venue and in the executor's rows. */
  const settled = () =>
    waitFor(() => (db.prepare("SELECT COUNT(*) FROM trades WHERE status NOT IN ('confirmed', 'failed')").pluck().get() as number) === 0 || undefined, {
      what: 'trades settled',
      timeoutMs: 20_000,
    });

  beforeAll(async () => {
    const tmp = tempDataDir('pbexecvenue');
    dir = tmp.dir;
    cleanup = tmp.cleanup;
    sim = await startSimAt({
      port: await freePort(),
      dir: join(dir, 'sim'),
      env: { POLYBOT_SIM_ADMIN_SECRET: ADMIN, POLYBOT_SIM_MARKETS: '4', POLYBOT_SIM_EVENT_RATE: '0', POLYBOT_SIM_MINE_MS: '30', POLYBOT_SIM_CONFIRM_MS: '60', POLYBOT_SIM_PERSIST: 'false' },
    });
    const g = sim.service.exchange.gammaMarkets()[0]!;
    market = g.conditionId;
    token = (JSON.parse(g.clobTokenIds) as string[])[0]!;
    seedScanner(join(dir, 'polybot.db'), await gammaMarkets(sim.base));
    bus = await startBus(dir);
    pusher = new BusPusher({ endpoint: bus.ep['signals.push'], src: 'strategy:s1' });
    pusher.start();
    db = openDatabase(join(dir, 'polybot.db'), { readonly: true });
  });

  afterAll(async () => {
    db?.close();
    await pusher?.close(500);
    await stopExecutor();
    await bus?.close();
    await sim?.stop();
    cleanup?.();
  });

  it('takes signals only after reconciling, and fills from the venue trade stream', async () => {
    await startExecutor();
    await intakeOpen();
    const s = signal();
    pusher.push('signal', s);
    const row = await waitFor(() => (orderOf(s.id)?.status === 'filled' ? orderOf(s.id) : undefined), { what: 'order filled', timeoutMs: 20_000 });
    expect(row).toMatchObject({ filled: '10', side: 'BUY', order_type: 'FAK' });
    await settled();
    const pos = await waitFor(() => (position()?.settled === '10' ? position() : undefined), { what: 'position settled', timeoutMs: 20_000 });
    expect(pos).toMatchObject({ size: '10', pending_buy: '0' });
    expect(toMicros(pos.size)).toBe(venueShares());
  });

  it('voids the fills of FAILED trades: positions end equal to the venue balance', async () => {
    sim.service.exchange.configure({ failRate: 0.5 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const s = signal({ size: 5 });
        ids.push(s.id);
        pusher.push('signal', s);
      }
      await waitFor(() => ids.every((id) => ['done', 'denied'].includes((db.prepare('SELECT status FROM signals WHERE id = ?').pluck().get(id) as string) ?? '')) || undefined, {
        what: 'every signal final',
        timeoutMs: 30_000,
      });
      await settled();
      const failed = db.prepare("SELECT COUNT(*) FROM trades WHERE status = 'failed'").pluck().get() as number;
      expect(failed).toBeGreaterThan(0);
      await waitFor(() => (toMicros(position()?.size ?? '0') === venueShares() ? true : undefined), { what: 'position equal to the venue balance', timeoutMs: 20_000 });
    } finally {
      sim.service.exchange.configure({ failRate: 0 });
    }
  });

  it('charges the taker fee of the market schedule exactly as the venue does', async () => {
    // The fourth generated market has the crypto fee schedule (rate 0.25, exponent 2).
    const g = sim.service.exchange.gammaMarkets()[3]!;
    const feeToken = (JSON.parse(g.clobTokenIds) as string[])[0]!;
    const cash = () => toMicros(sim.service.exchange.account(wallet.address)!.collateral);
    const before = cash();
    const s = signal({ token_id: feeToken, market: g.conditionId, size: 20 });
    pusher.push('signal', s);
    const sig = () => db.prepare('SELECT status, code, reason FROM signals WHERE id = ?').get(s.id) as Row | undefined;
    await waitFor(() => (orderOf(s.id)?.status === 'filled' || sig()?.status === 'denied' ? true : undefined), { what: 'fee order filled', timeoutMs: 30_000 });
    expect(orderOf(s.id)?.status, JSON.stringify({ signal: sig(), order: orderOf(s.id) })).toBe('filled');
    await settled();
    const trades = db.prepare('SELECT t.* FROM trades t JOIN orders o ON o.order_id = t.order_id WHERE o.signal_id = ?').all(s.id) as Array<Row>;
    const fee = trades.reduce((n, t) => n + toMicros(t.fee), 0n);
    const usdc = trades.reduce((n, t) => n + toMicros(t.usdc), 0n);
    expect(fee).toBeGreaterThan(0n);
    expect(before - cash()).toBe(usdc + fee);
    const pos = db.prepare("SELECT * FROM positions WHERE strategy = 's1' AND token_id = ?").get(feeToken) as Row;
    expect(toMicros(pos.cost)).toBe(usdc + fee);
    expect(toMicros(pos.fees)).toBe(fee);
  });

  it('prices a market order by walking the scanner depth, capped by the signal limit', async () => {
    // Stands in for the scanner: the simulator's book of the token on prices.pub.
    const prices = new BusPublisher({ endpoint: bus.ep['prices.pub'], mode: 'bind', src: 'scanner' });
    await prices.start();
    try {
      const book = sim.service.exchange.bookSummary(token)!;
      const best = book.asks.at(-1)!;
      const size = Math.min(5, Math.floor(Number(best.size)));
      expect(size).toBeGreaterThan(0);
      const msg: Unstamped<BookMessage> = {
        type: 'book',
        token_id: token,
        market,
        bids: book.bids.map((l) => [Number(l.price), Number(l.size)] as [number, number]),
        asks: book.asks.map((l) => [Number(l.price), Number(l.size)] as [number, number]),
        tick_size: Number(book.tick_size),
        venue_ts: Date.now(),
      };
      const s = signal({ size: Math.max(size, Math.ceil(1 / Number(best.price))), price: 0.99, order_type: 'FOK' });
      // The executor's subscriber reconnects to the new PUB a moment after bind: publish for a while.
      for (let i = 0; i < 15; i++) {
        expect(prices.publish(`book.${token}`, msg)).toBe(true);
        await new Promise((r) => setTimeout(r, 100));
      }
      pusher.push('signal', s);
      const row = await waitFor(() => orderOf(s.id), { what: 'order row', timeoutMs: 20_000 });
      const request = JSON.parse(row.request) as { order: { makerAmount: string; takerAmount: string } };
      // BUY: makerAmount = pUSD at the order's price; the walked price is the ask level reached, not 0.99.
      expect(toMicros(row.price)).toBeLessThan(990_000n);
      expect(toMicros(row.price)).toBeGreaterThanOrEqual(toMicros(best.price));
      expect(BigInt(request.order.makerAmount)).toBe((toMicros(row.price) * toMicros(row.size)) / 1_000_000n);
      expect(fromMicros(BigInt(request.order.takerAmount))).toBe(row.size);
    } finally {
      await prices.close();
    }
  });

  it('rests a GTD order with its expiration, and lets the venue refuse a post-only order that would cross', async () => {
    const expiration = Math.floor(Date.now() / 1000) + 600;
    const gtd = signal({ price: 0.02, size: 5, order_type: 'GTD', expiration });
    pusher.push('signal', gtd);
    const row = await waitFor(() => (orderOf(gtd.id)?.status === 'live' ? orderOf(gtd.id) : undefined), { what: 'GTD resting', timeoutMs: 20_000 });
    expect((JSON.parse(row.request) as { order: { expiration: string } }).order.expiration).toBe(String(expiration));
    expect(sim.service.exchange.getOrder(wallet.address, row.order_id)).toMatchObject({ status: 'LIVE', order_type: 'GTD', expiration: String(expiration) });
    // A post-only BUY at 0.99 would take the asks: the venue refuses it, nothing trades.
    const po = signal({ price: 0.99, size: 5, order_type: 'GTC', post_only: true });
    pusher.push('signal', po);
    const refused = await waitFor(() => (orderOf(po.id)?.status === 'rejected' ? orderOf(po.id) : undefined), { what: 'post-only refused', timeoutMs: 20_000 });
    expect(refused.reason).toMatch(/post-only/);
    expect((JSON.parse(refused.request) as { postOnly: boolean }).postOnly).toBe(true);
  });

  it('answers an order_version_mismatch with one freshly signed order when /version still says 2', async () => {
    await admin(sim.base, ADMIN, 'faults', { version_mismatch_next: 1 });
    const s = signal({ size: 5 });
    pusher.push('signal', s);
    const row = await waitFor(() => (orderOf(s.id)?.status === 'filled' ? orderOf(s.id) : undefined), { what: 'retried order filled', timeoutMs: 20_000 });
    const refused = db.prepare('SELECT * FROM orders WHERE reason LIKE ?').get(`%retried as ${row.order_id}%`) as Row | undefined;
    expect(refused).toMatchObject({ status: 'rejected', signal_id: null });
    expect(refused?.reason).toMatch(/^order_version_mismatch/);
    expect(refused?.order_id).not.toBe(row.order_id);
    expect(sim.service.exchange.getOrder(wallet.address, refused!.order_id)).toBeUndefined();
    expect(db.prepare('SELECT status FROM signals WHERE id = ?').pluck().get(s.id)).toBe('done');
  });

  it('cancels its open orders on a graceful stop when told to, and the rows say so', async () => {
    await stopExecutor();
    await startExecutor({ POLYBOT_EXECUTOR_ON_STOP: 'cancel' });
    await intakeOpen();
    const s = signal({ price: 0.01, size: 5, order_type: 'GTC' });
    pusher.push('signal', s);
    const row = await waitFor(() => (orderOf(s.id)?.status === 'live' ? orderOf(s.id) : undefined), { what: 'order resting', timeoutMs: 20_000 });
    expect(sim.service.exchange.getOrder(wallet.address, row.order_id)?.status).toBe('LIVE');
    await stopExecutor();
    expect(sim.service.exchange.getOrder(wallet.address, row.order_id)?.status).toMatch(/^CANCELED/);
    expect(orderOf(s.id)?.status).toBe('canceled');
    await startExecutor();
    await intakeOpen();
  });

  it('settles an order a crashed run persisted but never sent: the identical body, one venue order', async () => {
    await stopExecutor();
    // What a crash between "persist" and "POST" leaves behind: a pending row with the signed body.
    const order = buildSignedOrder({ wallet, tokenId: token, side: 'BUY', price: '0.99', size: '5', orderType: 'FAK', tickSize: '0.01', negRisk: false });
    const id = orderHash(order, false);
    const body = { order, owner: '', orderType: 'FAK', deferExec: false, postOnly: false };
    const sigId = newId('sig-');
    const rw = openDatabase(join(dir, 'polybot.db'));
    const now = Date.now();
    rw.prepare("INSERT INTO signals (id, strategy, token_id, received_at, status, payload) VALUES (?, 's1', ?, ?, 'accepted', '{}')").run(sigId, token, now);
    rw.prepare(
      `INSERT INTO orders (order_id, signal_id, strategy, venue_order_id, token_id, market, side, order_type, price, size, filled, status, reason, request, created_at, updated_at)
       VALUES (?, ?, 's1', NULL, ?, ?, 'BUY', 'FAK', '0.99', '5', '0', 'pending', NULL, ?, ?, ?)`,
    ).run(id, sigId, token, market, JSON.stringify(body), now, now);
    rw.close();
    const before = venueShares();
    await startExecutor();
    const row = await waitFor(() => (orderOf(sigId)?.status === 'filled' ? orderOf(sigId) : undefined), { what: 'crashed order settled', timeoutMs: 30_000 });
    expect(row.order_id).toBe(id);
    expect(sim.service.exchange.getOrder(wallet.address, id)).toBeDefined();
    await settled();
    await waitFor(() => (toMicros(position()?.size ?? '0') === venueShares() ? true : undefined), { what: 'position equal to the venue balance', timeoutMs: 20_000 });
    expect(venueShares() - before).toBe(5_000_000n);
    expect((db.prepare('SELECT status FROM signals WHERE id = ?').pluck().get(sigId) as string)).toBe('done');
  });
});

describe('takerFee', () => {
  it('reproduces the documented example and rounds half up to micro pUSD', () => {
    // PROTOCOL.md §5.5: $1.56 on 100 shares at 0.50 (rate 0.25, exponent 2) — exactly 1.5625.
    expect(takerFee(100_000_000n, 500_000n, 50_000_000n, { rateBps: 2500, exponent: 2 })).toBe(1_562_500n);
    expect(takerFee(100_000_000n, 500_000n, 50_000_000n, undefined)).toBe(0n);
    // 1 micro share at 0.5: 0.25 × 0.0625 µ = 0.015625 µ → 0.
    expect(takerFee(1n, 500_000n, 0n, { rateBps: 2500, exponent: 2 })).toBe(0n);
    // 3 shares at 0.01, exponent 1: 3 × 0.25 × 0.0099 = 0.007425 → 7425 µ.
    expect(takerFee(3_000_000n, 10_000n, 30_000n, { rateBps: 2500, exponent: 1 })).toBe(7_425n);
  });
});
