import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Push } from 'zeromq';
import { encode } from '@msgpack/msgpack';
import { Wallet } from 'ethers';
import { BusPublisher, BusPusher, BusRequester } from '@polybot/bus';
import { loadConfig, openDatabase, type ServiceRunner, type SqliteDb } from '@polybot/core';
import { buildL2Headers, createKeystore, createOrDeriveApiKey, hmacSignature, orderHash, type ApiCreds, type PostOrderBody } from '@polybot/polymarket';
import { fromMicros, newId, toMicros, type PriceMessage, type SignalMessage, type Unstamped } from '@polybot/protocol';
import { freePort, sleep, tempDataDir, waitFor } from '@polybot/testkit';
import { generateMarkets } from '../../sim/src/markets.js';
import { ExecutorConfig } from '../src/index.js';
import { Counterparty, executorRunner, gammaMarkets, recordingRelay, seedScanner, startBus, type Bus, type Ev, type ScannerMarket } from './sim-fixture.js';
import { startSimAt, TEST_KEY } from './venue-helpers.js';

// ---------------------------------------------------------------- shared helpers

type Row = Record<string, any>;
type Sim = Awaited<ReturnType<typeof startSimAt>>;

const MINE_MS = 50;
const CONFIRM_MS = 100;
/** Long enough that a held trade never settles by itself during a test. */
const HOLD_MS = 10 * 60_000;
const WAIT = { timeoutMs: 20_000 };

const yes = (m: ScannerMarket) => m.tokens[0]!.tokenId;
const no = (m: ScannerMarket) => m.tokens[1]!.tokenId;
/** Signal fields that put an order on one token of a market. */
const on = (m: ScannerMarket, tokenId: string) => ({ token_id: tokenId, market: m.conditionId });

/** The executor's environment: risk limits as the tests below count on them. */
function baseEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    POLYBOT_DATA_DIR: dir,
    POLYBOT_LOG_LEVEL: 'debug',
    POLYBOT_RISK_MAX_ORDER_SIZE: '100',
    POLYBOT_RISK_MAX_POSITION: '100',
    POLYBOT_RISK_MAX_NOTIONAL: '50',
    POLYBOT_EXECUTOR_ORDER_TIMEOUT_MS: '5000',
    // Fast recovery paths in tests: a REST refresh every second, heartbeats every second.
    POLYBOT_EXECUTOR_POLL_MS: '1000',
    POLYBOT_EXECUTOR_HEARTBEAT_MS: '1000',
    ...extra,
  };
}

const signalOf = (over: Partial<SignalMessage>): Unstamped<SignalMessage> => ({
  type: 'signal',
  id: newId('sig-'),
  strategy: 's1',
  token_id: '0',
  market: '0x',
  side: 'BUY',
  price: 0.56,
  size: 10,
  order_type: 'GTC',
  ...over,
});

/** Waits and reads over one bus and one (read-only) view of polybot.db. */
function probe(bus: () => Bus, db: () => SqliteDb) {
  const eventFor = (kind: string, pred: (e: Ev) => boolean, what: string) =>
    waitFor(() => bus().events.find((e) => e.type === 'event' && e.kind === kind && pred(e)), { what, ...WAIT });
  const statuses = () => bus().events.filter((e) => e.type === 'status');
  return {
    eventFor,
    orderEvent: (s: { id: string }, status: string) => eventFor('order', (e) => e.signal_id === s.id && e.status === status, `${status} order of ${s.id}`),
    signalEvent: (s: { id: string }) => eventFor('signal', (e) => e.signal_id === s.id, `signal event of ${s.id}`),
    orderOf: (signalId: string) => db().prepare('SELECT * FROM orders WHERE signal_id = ?').get(signalId) as Row | undefined,
    signalRow: (id: string) => db().prepare('SELECT * FROM signals WHERE id = ?').get(id) as Row | undefined,
    positionOf: (token: string) => db().prepare("SELECT * FROM positions WHERE strategy = 's1' AND token_id = ?").get(token) as Row | undefined,
    tradesOf: (orderId: string) => db().prepare('SELECT * FROM trades WHERE order_id = ? ORDER BY rowid').all(orderId) as Row[],
    statuses,
    latestMetrics: () => statuses().at(-1)?.metrics as Record<string, any> | undefined,
    /** A status published at `t0` or later (so never one of a runner stopped before). */
    statusSince: (t0: number, pred: (e: Ev) => boolean, what: string, timeoutMs = 30_000) =>
      waitFor(() => statuses().find((e) => (e.ts as number) >= t0 && pred(e)), { what, timeoutMs }),
  };
}

// ---------------------------------------------------------------- the executor against the simulator

describe('executor against the simulator', () => {
  const logs: string[] = [];
  let tmp: ReturnType<typeof tempDataDir>;
  let dir: string;
  let sim: Sim;
  let relay: Awaited<ReturnType<typeof recordingRelay>>;
  let bus: Bus;
  let runner: ServiceRunner<ExecutorConfig>;
  let env: Record<string, string>;
  let pusher: BusPusher;
  let req: BusRequester;
  let db: SqliteDb;
  let cp: Counterparty;
  /** The executor's API key, derived again here from its dev key (the venue hands out the same key). */
  let creds: ApiCreds;
  let address: string;
  // Sim markets (all 0.01 tick, minimum 5): A trades, B rests, C settles late, NEG is neg-risk, D's
  // scanner row is stale. GHOST and CLOSED exist only in the scanner's tables.
  let A: ScannerMarket, B: ScannerMarket, C: ScannerMarket, D: ScannerMarket, NEG: ScannerMarket;
  const GHOST: ScannerMarket = { conditionId: `0x${'a'.repeat(64)}`, question: 'Not at the venue', negRisk: false, tickSize: '0.01', minOrderSize: '5', tokens: [{ tokenId: '1001', outcome: 'Yes' }, { tokenId: '1002', outcome: 'No' }] };
  const CLOSED: ScannerMarket = { conditionId: `0x${'c'.repeat(64)}`, question: 'Old market', negRisk: false, tickSize: '0.01', minOrderSize: '5', closed: true, tokens: [{ tokenId: '3001', outcome: 'Yes' }] };

  const p = probe(() => bus, () => db);
  const { eventFor, orderEvent, signalEvent, orderOf, signalRow, positionOf, tradesOf, latestMetrics } = p;
  const signal = (over: Partial<SignalMessage> = {}) => signalOf({ ...on(A, yes(A)), ...over });
  const push = (s: Unstamped<SignalMessage>) => {
    expect(pusher.push('signal', s)).toBe(true);
    return s;
  };
  /** Signals are taken in order: once a later one is answered, every earlier one has been taken (its post may still be out). */
  const drain = async () => {
    const s = push(signal({ token_id: '999999' }));
    await signalEvent(s);
  };
  /** What reached the venue for a stored order (the relay saw the very same bytes). */
  const sentFor = (row: Row | undefined) => {
    const sent = relay.posted.filter((x) => x.text === row?.request);
    expect(sent).toHaveLength(1);
    return sent[0]!;
  };

  /** The makers quote one tick either side of `price` on `token` (so nobody else is at `price`). */
  const centre = (m: ScannerMarket, token: string, price: string) => {
    const fair = Number(price);
    sim.service.exchange.setFair(m.conditionId, token === yes(m) ? fair : 1 - fair);
  };
  /** `size` for the executor to BUY `token` at exactly `price`: the counterparty bids the complement at 1 − price. */
  const offer = async (m: ScannerMarket, token: string, price: string, size: string) => {
    await cp.cancelAll();
    centre(m, token, price);
    const other = token === yes(m) ? no(m) : yes(m);
    expect(await cp.buy(other, fromMicros(1_000_000n - toMicros(price)), size, { negRisk: m.negRisk })).toMatchObject({ status: 'live' });
  };
  /** `size` for the executor to SELL `token` into at exactly `price`. */
  const bid = async (m: ScannerMarket, token: string, price: string, size: string) => {
    await cp.cancelAll();
    centre(m, token, price);
    expect(await cp.buy(token, price, size, { negRisk: m.negRisk })).toMatchObject({ status: 'live' });
  };
  /**
   * Trades matched from now on stay MATCHED until `release()` moves the sim's trade clock past them
   * (released after each test in any case, so a failure cannot leave later tests unsettled).
   */
  let held: { release(): void } | undefined;
  const holdSettlement = () => {
    const ex = sim.service.exchange;
    ex.configure({ mineMs: HOLD_MS, confirmMs: HOLD_MS });
    held = {
      release: () => {
        held = undefined;
        ex.configure({ mineMs: MINE_MS, confirmMs: CONFIRM_MS });
        ex.tick(Date.now() + 2 * HOLD_MS + 1000);
      },
    };
    return held;
  };
  afterEach(() => held?.release());
  const restartExecutor = async () => {
    await runner.stop();
    const t0 = Date.now();
    runner = executorRunner(env, logs);
    await runner.start();
    // By metrics, not by state: a halted executor reports itself degraded.
    await p.statusSince(t0, (e) => (e.metrics as Row).venue_state === 'ready' && (e.metrics as Row).intake_open === 1, 'executor reconciled and taking signals again');
  };

  beforeAll(async () => {
    tmp = tempDataDir('pbexec');
    dir = tmp.dir;
    const simDir = join(dir, 'venue');
    mkdirSync(simDir);
    sim = await startSimAt({
      port: 0,
      dir: simDir,
      env: {
        POLYBOT_SIM_MARKETS: '4',
        POLYBOT_SIM_NEG_RISK: 'true',
        // Frozen makers: the books only move when a test moves them.
        POLYBOT_SIM_EVENT_RATE: '0',
        POLYBOT_SIM_MINE_MS: String(MINE_MS),
        POLYBOT_SIM_CONFIRM_MS: String(CONFIRM_MS),
        // The executor restarts below without cancelling: the dead-man switch must not fire meanwhile.
        POLYBOT_SIM_HEARTBEAT_TIMEOUT_MS: '600000',
      },
    });
    // Fair values away from the tick-size edges, so every book used here is on the 0.01 grid.
    const ex = sim.service.exchange;
    const negRisk = ex.markets.find((m) => m.negRisk);
    for (const [m, fair] of [[ex.markets[0], 0.56], [ex.markets[1], 0.5], [ex.markets[2], 0.5], [negRisk, 0.12]] as const) ex.setFair(m!.conditionId, fair);
    const listed = await gammaMarkets(sim.base);
    const byId = (id: string | undefined) => listed.find((m) => m.conditionId === id)!;
    [A, B, C, D, NEG] = [byId(ex.markets[0]?.conditionId), byId(ex.markets[1]?.conditionId), byId(ex.markets[2]?.conditionId), byId(ex.markets[3]?.conditionId), byId(negRisk?.conditionId)];
    for (const m of [A, B, C, D, NEG]) expect(m).toMatchObject({ tickSize: '0.01', minOrderSize: '5' });
    expect(NEG.negRisk).toBe(true);
    // D as a stale scanner row: a finer tick and a lower minimum than the venue enforces.
    seedScanner(join(dir, 'polybot.db'), [...listed.map((m) => (m === D ? { ...m, tickSize: '0.001', minOrderSize: '1' } : m)), GHOST, CLOSED]);

    relay = await recordingRelay(sim.base);
    bus = await startBus(dir);
    // REST through the recording relay, the user channel straight to the sim.
    env = baseEnv(dir, { POLYMARKET_CLOB_URL: relay.url, POLYMARKET_WS_URL: sim.base.replace(/^http/, 'ws') });
    runner = executorRunner(env, logs);
    const t0 = Date.now();
    await runner.start();
    await p.statusSince(t0, (e) => e.state === 'running' && (e.metrics as Row).intake_open === 1, 'executor reconciled and taking signals');
    pusher = new BusPusher({ endpoint: bus.ep['signals.push'], src: 'strategy:s1' });
    pusher.start();
    req = new BusRequester({ endpoint: bus.ep['executor.rep'], src: 'test', timeoutMs: 10_000 });
    db = openDatabase(join(dir, 'polybot.db'), { readonly: true });
    cp = await Counterparty.open(sim.base);
    const wallet = new Wallet(readFileSync(join(dir, 'keys', 'dev-wallet.key'), 'utf8').trim());
    address = wallet.address;
    creds = await createOrDeriveApiKey(sim.base, wallet);
  });

  afterAll(async () => {
    try {
      db?.close();
      await req?.close();
      await pusher?.close(500);
      await runner?.stop();
      await bus?.close();
      await relay?.close();
      await sim?.stop();
    } finally {
      tmp?.cleanup();
    }
  });

  it('fills a signal at the venue: events, the exact signed request, a trade that settles, an exact position', async () => {
    await offer(A, yes(A), '0.56', '10');
    const held = holdSettlement();
    const s = push(signal());
    const filled = await orderEvent(s, 'filled');
    expect(bus.events.find((e) => e.kind === 'signal' && e.signal_id === s.id)).toMatchObject({ topic: 'event.signal.s1', status: 'accepted' });
    const pending = bus.events.findIndex((e) => e.kind === 'order' && e.signal_id === s.id && e.status === 'pending');
    expect(pending).toBeGreaterThanOrEqual(0);
    expect(pending).toBeLessThan(bus.events.indexOf(filled));
    expect(filled).toMatchObject({ topic: 'event.order.s1', price: '0.56', size: '10', filled: '10', side: 'BUY', order_type: 'GTC', market: A.conditionId, token_id: yes(A) });

    // Persisted before send, byte for byte what the venue got; owner = the API key, id = the EIP-712 hash.
    // (The stream may report the fill before the POST answer, which brings the venue's order id.)
    const order = await waitFor(() => orderOf(s.id)?.venue_order_id && orderOf(s.id), { what: 'POST answer applied', ...WAIT });
    const sent = sentFor(order);
    const body = JSON.parse(order.request) as PostOrderBody;
    expect(body).toMatchObject({ orderType: 'GTC', owner: creds.apiKey, order: { side: 'BUY', makerAmount: '5600000', takerAmount: '10000000', tokenId: yes(A), signer: address } });
    expect(order).toMatchObject({ order_id: orderHash(body.order, false), venue_order_id: orderHash(body.order, false), status: 'filled', filled: '10', price: '0.56', size: '10', strategy: 's1', market: A.conditionId });

    // The executor took: its fill is the venue's trade, known only from the trade event.
    const venueTrade = (JSON.parse(sent.answer) as { tradeIDs: string[] }).tradeIDs[0]!;
    const fill = await eventFor('fill', (e) => e.order_id === order.order_id, 'fill event');
    expect(fill).toMatchObject({ topic: 'event.fill.s1', trade_id: venueTrade, price: '0.56', size: '10', fee: '0', token_id: yes(A), side: 'BUY' });
    const pos = await eventFor('position', (e) => e.token_id === yes(A), 'position event');
    expect(pos).toMatchObject({ topic: 'event.position.s1', size: '10', avg_price: '0.56', cost: '5.6', realized_pnl: '0' });
    await waitFor(() => tradesOf(order.order_id).length === 1, { what: 'trade row', ...WAIT });
    // Matched, not yet confirmed: counted in the position, but still pending.
    expect(tradesOf(order.order_id)).toEqual([
      expect.objectContaining({ trade_id: venueTrade, venue_trade_id: venueTrade, status: 'matched', side: 'BUY', price: '0.56', size: '10', usdc: '5.6', fee: '0', market: A.conditionId, strategy: 's1' }),
    ]);
    expect(positionOf(yes(A))).toMatchObject({ size: '10', avg_price: '0.56', cost: '5.6', realized_pnl: '0', settled: '0', pending_buy: '10', market: A.conditionId });

    held.release();
    await waitFor(() => tradesOf(order.order_id)[0]?.status === 'confirmed', { what: 'trade confirmed', ...WAIT });
    await waitFor(() => positionOf(yes(A))?.settled === '10', { what: 'position settled', ...WAIT });
    expect(positionOf(yes(A))).toMatchObject({ size: '10', avg_price: '0.56', cost: '5.6', pending_buy: '0', pending_sell: '0' });
    expect(typeof tradesOf(order.order_id)[0]?.match_ts).toBe('number');
    expect(signalRow(s.id)).toMatchObject({ status: 'done', strategy: 's1', token_id: yes(A) });
  });

  it('signs every order request with L2 headers that verify against the API secret', () => {
    expect(relay.posted.length).toBeGreaterThan(0);
    for (const { headers, text } of relay.posted) {
      expect(headers).toMatchObject({ poly_address: address, poly_api_key: creds.apiKey, poly_passphrase: creds.passphrase });
      expect(Math.abs(Number(headers.poly_timestamp) - Date.now() / 1000)).toBeLessThan(120);
      expect(headers.poly_signature).toBe(hmacSignature(creds.secret, headers.poly_timestamp as string, 'POST', '/order', text));
      expect((JSON.parse(text) as PostOrderBody).owner).toBe(creds.apiKey);
    }
  });

  it('averages buys and realizes PnL on a sell of confirmed shares against the average price', async () => {
    await offer(A, yes(A), '0.59', '5');
    const b = push(signal({ price: 0.59, size: 5 }));
    await orderEvent(b, 'filled');
    await waitFor(() => positionOf(yes(A))?.settled === '15', { what: 'second buy confirmed', ...WAIT });
    expect(positionOf(yes(A))).toMatchObject({ size: '15', cost: '8.55', avg_price: '0.57', realized_pnl: '0' });

    await bid(A, yes(A), '0.6', '5');
    const s = push(signal({ side: 'SELL', price: 0.6, size: 5 }));
    await orderEvent(s, 'filled');
    // basis 8.55 × 5/15 = 2.85; proceeds 3.00 → realized 0.15
    const pos = await eventFor('position', (e) => e.token_id === yes(A) && e.realized_pnl !== '0', 'position after sell');
    expect(pos).toMatchObject({ size: '10', cost: '5.7', avg_price: '0.57', realized_pnl: '0.15' });
    await waitFor(() => positionOf(yes(A))?.settled === '10', { what: 'sell confirmed', ...WAIT });
    expect(positionOf(yes(A))).toMatchObject({ size: '10', cost: '5.7', avg_price: '0.57', realized_pnl: '0.15', pending_sell: '0' });
    expect(JSON.parse(sentFor(orderOf(s.id)).text).order).toMatchObject({ side: 'SELL', makerAmount: '5000000', takerAmount: '3000000' });
  });

  it('denies a sell of shares whose buy has not confirmed yet (unsettled_inventory), and sells them once it has', async () => {
    await offer(C, yes(C), '0.5', '5');
    const held = holdSettlement();
    const b = push(signal({ ...on(C, yes(C)), price: 0.5, size: 5 }));
    await orderEvent(b, 'filled');
    await waitFor(() => positionOf(yes(C))?.pending_buy === '5', { what: 'matched buy', ...WAIT });
    const sent = relay.posted.length;
    const early = push(signal({ ...on(C, yes(C)), side: 'SELL', price: 0.5, size: 5 }));
    expect(await signalEvent(early)).toMatchObject({ status: 'denied', code: 'unsettled_inventory' });
    expect(orderOf(early.id)).toBeUndefined();
    expect(relay.posted.length).toBe(sent);

    held.release();
    await waitFor(() => positionOf(yes(C))?.settled === '5', { what: 'buy confirmed', ...WAIT });
    await bid(C, yes(C), '0.52', '5');
    const s = push(signal({ ...on(C, yes(C)), side: 'SELL', price: 0.52, size: 5 }));
    await orderEvent(s, 'filled');
    await waitFor(() => positionOf(yes(C))?.settled === '0' && positionOf(yes(C))?.realized_pnl === '0.1', { what: 'sold flat', ...WAIT });
    expect(positionOf(yes(C))).toMatchObject({ size: '0', cost: '0', realized_pnl: '0.1', pending_buy: '0', pending_sell: '0' });
  });

  it('denies by risk with a code, stores the denial and sends nothing', async () => {
    const sent = relay.posted.length;
    const cases: Array<[Partial<SignalMessage>, string]> = [
      [{ token_id: '424242' }, 'unknown_market'],
      [on(CLOSED, '3001'), 'market_closed'],
      [{ market: B.conditionId }, 'market_mismatch'],
      [{ price: 0.555 }, 'price_off_tick'],
      [{ size: 10.555 }, 'size_precision'],
      [{ size: 3 }, 'size_below_min'],
      [{ price: 0.1, size: 101 }, 'max_order_size'],
      [{ price: 0.6, size: 90 }, 'max_notional'],
      [{ price: 0.1, size: 91 }, 'max_position'], // holds 10, limit 100
      [{ side: 'SELL', price: 0.5, size: 11 }, 'insufficient_position'],
      [{ order_type: 'GTD' }, 'invalid_expiration'],
      [{ order_type: 'GTD', expiration: Math.floor(Date.now() / 1000) + 30 }, 'invalid_expiration'], // inside the venue's 60 s buffer
      [{ order_type: 'GTC', expiration: Math.floor(Date.now() / 1000) + 600 }, 'invalid_expiration'],
      [{ order_type: 'FOK', post_only: true }, 'post_only_order_type'],
      [{ order_type: 'FOK', price: 0.1, size: 5 }, 'min_notional'],
    ];
    for (const [over, code] of cases) {
      const s = push(signal(over));
      const ev = await signalEvent(s);
      expect(ev).toMatchObject({ topic: 'event.signal.s1', status: 'denied', code });
      expect(typeof ev.reason).toBe('string');
      expect(signalRow(s.id)).toMatchObject({ status: 'denied', code });
      expect(orderOf(s.id)).toBeUndefined();
    }
    expect(relay.posted.length).toBe(sent);
  });

  it('ignores a duplicate signal id: no second order', async () => {
    await offer(A, no(A), '0.4', '5');
    const s = push(signal({ ...on(A, no(A)), price: 0.4, size: 5 }));
    await orderEvent(s, 'filled');
    const sent = relay.posted.length;
    push(s);
    push({ ...s, price: 0.41 }); // same id, different content: still the same signal
    await drain();
    expect(relay.posted.length).toBe(sent);
    expect(db.prepare('SELECT COUNT(*) FROM orders WHERE signal_id = ?').pluck().get(s.id)).toBe(1);
    await waitFor(() => (latestMetrics()?.signals_duplicate ?? 0) >= 2, { what: 'duplicate metric', ...WAIT });
  });

  it('dead-letters malformed frames and messages that are not signals', async () => {
    const raw = new Push({ immediate: true, linger: 500 });
    raw.connect(bus.ep['signals.push']);
    const before = db.prepare('SELECT COUNT(*) FROM dead_letters').pluck().get() as number;
    await raw.send(['signal', encode({ type: 'signal', id: 'short', strategy: 's1' })]);
    await raw.send(['signal', Buffer.from([0xc1, 0x00, 0xff])]);
    await raw.send(['only-one-frame']);
    const price: Unstamped<PriceMessage> = { type: 'price', token_id: yes(A), market: A.conditionId, bid: 0.5, ask: 0.51, mid: 0.505, bid_size: 1, ask_size: 1, venue_ts: Date.now() };
    pusher.push(`price.${yes(A)}`, price);
    const rows = await waitFor(() => {
      const r = db.prepare('SELECT * FROM dead_letters WHERE id > ? ORDER BY id').all(before) as Row[];
      return r.length >= 4 ? r : undefined;
    }, { what: 'dead letters', ...WAIT });
    // Two sockets: arrival order between them is not defined.
    expect(rows.map((r) => r.code).sort()).toEqual(['frame_count', 'msgpack', 'schema', 'unexpected_type']);
    const schema = rows.find((r) => r.code === 'schema');
    expect(schema).toMatchObject({ source: 'signals.push', topic: 'signal' });
    expect(Buffer.isBuffer(schema?.payload)).toBe(true);
    expect(rows.find((r) => r.code === 'unexpected_type')).toMatchObject({ topic: `price.${yes(A)}` });
    await waitFor(() => bus.events.filter((e) => e.topic === 'event.signal.unknown' && e.status === 'dead_lettered').length >= 4, { what: 'dead-letter events', ...WAIT });
    raw.close();
    await drain(); // still taking signals afterwards
  });

  it("records the venue's rejections with the venue's reason", async () => {
    const cases: Array<[Partial<SignalMessage>, RegExp]> = [
      // Known to the scanner, unknown at the venue.
      [{ ...on(GHOST, '1001'), price: 0.5, size: 5 }, /No orderbook exists for the requested token id/],
      // The scanner's row is stale (minimum 1, tick 0.001): the venue enforces 5 and 0.01.
      [{ ...on(D, yes(D)), price: 0.5, size: 3 }, /lower than the minimum: 5/],
      [{ ...on(D, yes(D)), price: 0.555, size: 10 }, /breaks minimum tick size rule: 0\.01/],
      // Nothing to fill it at 0.30 (B's asks start at 0.51): a FOK is killed.
      [{ ...on(B, yes(B)), price: 0.3, size: 5, order_type: 'FOK' }, /FOK orders are fully filled or killed/],
    ];
    for (const [over, reason] of cases) {
      const sent = relay.posted.length;
      const s = push(signal(over));
      const ev = await orderEvent(s, 'rejected');
      expect(String(ev.reason)).toMatch(reason);
      expect(relay.posted.length).toBe(sent + 1); // it did reach the venue
      expect(orderOf(s.id)).toMatchObject({ status: 'rejected', filled: '0' });
      expect(String(orderOf(s.id)?.reason)).toMatch(reason);
      expect(signalRow(s.id)).toMatchObject({ status: 'done' });
    }
    expect(positionOf(yes(A))).toMatchObject({ size: '10' });
  });

  it('keeps a resting GTC live, cancels over executor.rep, fills as maker, and cancels the unfilled rest of a FAK', async () => {
    // One resting order, cancelled by id.
    const a = push(signal({ ...on(B, yes(B)), price: 0.3, size: 5 }));
    const live = await orderEvent(a, 'live');
    expect(signalRow(a.id)).toMatchObject({ status: 'accepted' });
    expect(orderOf(a.id)).toMatchObject({ status: 'live', filled: '0' });
    // A working order counts against the limits: 5 resting + 96 > 100.
    const over = push(signal({ ...on(B, yes(B)), price: 0.1, size: 96 }));
    expect(await signalEvent(over)).toMatchObject({ status: 'denied', code: 'max_position' });
    expect((await req.call('orders.list', {})).orders).toEqual([expect.objectContaining({ order_id: live.order_id, signal_id: a.id, status: 'live', price: '0.3', size: '5' })]);
    expect(await req.call('orders.cancel', { order_id: live.order_id as string })).toMatchObject({ canceled: [live.order_id] });
    await orderEvent(a, 'canceled');
    expect(signalRow(a.id)).toMatchObject({ status: 'done' });
    expect((await req.call('orders.list', {})).orders).toEqual([]);

    // Two resting orders, cancelled together.
    const b1 = push(signal({ ...on(B, yes(B)), price: 0.31, size: 5 }));
    const b2 = push(signal({ ...on(B, no(B)), price: 0.32, size: 5 }));
    const ids = [(await orderEvent(b1, 'live')).order_id, (await orderEvent(b2, 'live')).order_id];
    const all = await req.call('orders.cancel_all', {});
    expect(all.canceled).toEqual(expect.arrayContaining(ids));
    await orderEvent(b1, 'canceled');
    await orderEvent(b2, 'canceled');

    // A resting bid the counterparty hits (by minting against it): a maker fill, keyed `<trade>:<order>`.
    const c = push(signal({ ...on(B, yes(B)), price: 0.5, size: 5 }));
    const cLive = await orderEvent(c, 'live');
    await cp.buy(no(B), '0.5', '5', { orderType: 'FAK' });
    await orderEvent(c, 'filled');
    const makerFill = await eventFor('fill', (e) => e.order_id === cLive.order_id, 'maker fill');
    const [makerTrade] = tradesOf(cLive.order_id as string);
    expect(makerFill).toMatchObject({ trade_id: `${makerTrade?.venue_trade_id}:${cLive.order_id}`, price: '0.5', size: '5' });
    expect(makerTrade).toMatchObject({ trade_id: makerFill.trade_id, side: 'BUY', price: '0.5', size: '5' });

    // A FAK for 10 with 5 on offer: 5 fill, the rest is killed.
    await offer(B, yes(B), '0.5', '5');
    const d = push(signal({ ...on(B, yes(B)), price: 0.5, size: 10, order_type: 'FAK' }));
    const killed = await orderEvent(d, 'canceled');
    expect(killed).toMatchObject({ filled: '5' });
    expect(JSON.parse(sentFor(orderOf(d.id)).text).order).toMatchObject({ makerAmount: '5000000', takerAmount: '10000000' });
    const takerFill = await eventFor('fill', (e) => e.order_id === killed.order_id, 'FAK fill');
    expect(takerFill.trade_id).toBe((JSON.parse(sentFor(orderOf(d.id)).answer) as { tradeIDs: string[] }).tradeIDs[0]);
    // B YES: 5 @ 0.50 as maker + 5 @ 0.50 as taker
    await waitFor(() => positionOf(yes(B))?.size === '10', { what: 'B position', ...WAIT });
    expect(positionOf(yes(B))).toMatchObject({ size: '10', cost: '5', avg_price: '0.5' });
  });

  it('signs for the neg-risk exchange on a neg-risk market', async () => {
    await offer(NEG, yes(NEG), '0.12', '20');
    const s = push(signal({ ...on(NEG, yes(NEG)), price: 0.12, size: 20 }));
    // (A `live` may come first: the venue's PLACEMENT event can overtake the POST answer.)
    const ev = await eventFor('order', (e) => e.signal_id === s.id && ['filled', 'rejected', 'canceled'].includes(e.status as string), 'neg-risk order');
    expect(ev).toMatchObject({ status: 'filled', filled: '20' }); // the sim checked the signature against the neg-risk exchange
    const order = orderOf(s.id)!;
    const body = JSON.parse(sentFor(order).text) as PostOrderBody;
    expect(order.order_id).toBe(orderHash(body.order, true));
    expect(order.order_id).not.toBe(orderHash(body.order, false));
    await waitFor(() => positionOf(yes(NEG))?.size === '20', { what: 'neg-risk position', ...WAIT });
    expect(positionOf(yes(NEG))).toMatchObject({ size: '20', cost: '2.4', avg_price: '0.12' });
  });

  it('answers positions.list over executor.rep', async () => {
    // Every trade confirmed first, so settled = size everywhere.
    await waitFor(() => positionOf(yes(B))?.settled === '10' && positionOf(yes(NEG))?.settled === '20', { what: 'trades confirmed', ...WAIT });
    const all = await req.call('positions.list', {});
    expect(all.positions).toHaveLength(5);
    expect(all.positions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ strategy: 's1', token_id: yes(A), market: A.conditionId, size: '10', avg_price: '0.57', cost: '5.7', realized_pnl: '0.15', settled: '10', pending_buy: '0', pending_sell: '0' }),
        expect.objectContaining({ strategy: 's1', token_id: no(A), market: A.conditionId, size: '5', avg_price: '0.4', cost: '2', realized_pnl: '0' }),
        expect.objectContaining({ strategy: 's1', token_id: yes(B), market: B.conditionId, size: '10', avg_price: '0.5', cost: '5', realized_pnl: '0' }),
        expect.objectContaining({ strategy: 's1', token_id: yes(C), market: C.conditionId, size: '0', avg_price: '0', cost: '0', realized_pnl: '0.1' }),
        expect.objectContaining({ strategy: 's1', token_id: yes(NEG), market: NEG.conditionId, size: '20', avg_price: '0.12', cost: '2.4', realized_pnl: '0' }),
      ]),
    );
    expect((await req.call('positions.list', { strategy: 'nobody' })).positions).toEqual([]);
  });

  it('reports venue state, intake and counts in its metrics', async () => {
    // Filled: 2 A YES buys + 1 sell, C buy + sell, A NO, B maker, NEG; canceled: 3 on request + the FAK; rejected: 4.
    const m = await waitFor(() => {
      const x = latestMetrics();
      // A fill can arrive on the user channel before its POST answer is counted: wait for both.
      return x && x.orders_filled === 8 && x.orders_canceled === 4 && x.orders_rejected === 4 && x.venue_posts_accepted === 12 && x.venue_posts_rejected === 4 ? x : undefined;
    }, { what: 'metrics', ...WAIT });
    expect(m).toMatchObject({
      execution_mode: 'sim',
      venue_state: 'ready',
      venue_auth_ready: 1,
      intake_open: 1,
      trading_state: 'ACTIVE',
      orders_pending: 0,
      orders_live: 0,
      orders_unknown: 0,
      orders_partially_filled: 0,
      venue_posts_accepted: 12,
      venue_posts_rejected: 4,
      venue_posts_not_sent: 0,
      venue_posts_ambiguous: 0,
    });
    expect(m.venue_posts_accepted + m.venue_posts_rejected).toBe(relay.posted.length);
    expect(m.venue_reconciliations).toBeGreaterThanOrEqual(1);
    expect(m).not.toHaveProperty('venue_not_sent');
    expect(m).not.toHaveProperty('venue_ambiguous');
    expect(m.signals_denied).toBeGreaterThanOrEqual(14); // 12 risk cases, unsettled_inventory, max_position (+ drain sentinels)
    expect(m.signals_dead_lettered).toBeGreaterThanOrEqual(4);
    expect(m.signals_accepted).toBe(16);
    expect(await req.call('venue.status', {})).toMatchObject({
      mode: 'sim',
      state: 'ready',
      taking_signals: true,
      can_trade: true,
      address,
      collateral: '10000', // at the start's reconciliation, before any trade
      balance_mismatches: [],
    });
  });

  it('takes the kill switch, reduce-only and new limits over executor.rep, and keeps them across a restart', async () => {
    const denied = async (over: Partial<SignalMessage>, code: string) => {
      const s = push(signal(over));
      expect(await signalEvent(s)).toMatchObject({ status: 'denied', code });
    };
    expect(await req.call('risk.status', {})).toMatchObject({ state: 'ACTIVE', effective: 'ACTIVE', limits: { max_open_orders: 50, max_daily_loss: '200', price_band: '0.2' } });
    const sent = relay.posted.length;

    expect(await req.call('trading.halt', { reason: 'test halt' })).toMatchObject({ state: 'HALTED', reason: 'test halt' });
    await denied({ side: 'SELL', price: 0.5, size: 5 }, 'trading_halted');
    expect(relay.posted.length).toBe(sent);
    expect(db.prepare("SELECT value FROM executor_controls WHERE key = 'trading_state'").pluck().get()).toBe('HALTED');

    await req.call('trading.reduce', {});
    await denied({ price: 0.1, size: 5 }, 'reducing_only');
    // A sell of held shares reduces the position: it goes to the venue (a FAK with no bid there is killed).
    const sell = push(signal({ side: 'SELL', price: 0.9, size: 5, order_type: 'FAK' }));
    expect(String((await orderEvent(sell, 'rejected')).reason)).toMatch(/no orders found to match with FAK order/);
    expect(relay.posted.length).toBe(sent + 1);

    await req.call('trading.resume', {});
    await req.call('risk.set_limits', { max_open_orders: 0 });
    await denied({ price: 0.1, size: 5 }, 'max_open_orders');
    await req.call('risk.set_limits', { max_total_exposure: '0.5', max_open_orders: 50 });
    await denied({ price: 0.1, size: 6 }, 'max_total_exposure');
    await expect(req.request('risk.set_limits', { price_band: 'lots' })).rejects.toMatchObject({ remoteCode: 'bad_params' });
    await expect(req.request('risk.set_limits', { price_band: '2' })).rejects.toMatchObject({ remoteCode: 'bad_limits' });
    expect(await req.call('risk.set_limits', { max_total_exposure: '2000', max_open_orders: 40 })).toMatchObject({
      state: 'ACTIVE',
      limits: { max_total_exposure: '2000', max_open_orders: 40, price_band: '0.2' },
    });
    await expect(req.request('orders.cancel', { order_id: 'nope' })).rejects.toMatchObject({ remoteCode: 'unknown_order' });

    // The halt and the limits live in SQLite: a restart keeps both.
    await req.call('trading.halt', { reason: 'halted before restart' });
    await restartExecutor();
    expect(await req.call('risk.status', {})).toMatchObject({ state: 'HALTED', reason: 'halted before restart', limits: { max_open_orders: 40, max_total_exposure: '2000' } });
    await denied({ price: 0.1, size: 5 }, 'trading_halted');
    await req.call('trading.resume', {});
    await req.call('risk.set_limits', { max_open_orders: 50 });
    expect(relay.posted.length).toBe(sent + 1);
  });

  it('keeps its dev key private, never logs it, and reuses it and its open orders after a restart', async () => {
    const keyFile = join(dir, 'keys', 'dev-wallet.key');
    expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyFile, 'utf8').trim();
    expect(relay.posted.every((x) => (JSON.parse(x.text) as PostOrderBody).owner === creds.apiKey)).toBe(true);

    // An order resting across the restart: the next run reconciles it and can still cancel it.
    const rest = push(signal({ ...on(B, yes(B)), price: 0.3, size: 5 }));
    const live = await orderEvent(rest, 'live');
    await restartExecutor();
    expect(orderOf(rest.id)).toMatchObject({ status: 'live' });
    expect(await req.call('orders.cancel', { order_id: live.order_id as string })).toMatchObject({ canceled: [live.order_id] });
    await waitFor(() => orderOf(rest.id)?.status === 'canceled', { what: 'canceled after restart', ...WAIT });

    // Derived again after the restart: the very same key, and the venue holds only that one.
    const again = push(signal({ ...on(B, yes(B)), price: 0.3, size: 5, order_type: 'FOK' }));
    await orderEvent(again, 'rejected');
    expect((JSON.parse(sentFor(orderOf(again.id)).text) as PostOrderBody).owner).toBe(creds.apiKey);
    const keys = await fetch(`${sim.base}/auth/api-keys`, { headers: { ...buildL2Headers(creds, address, { method: 'GET', requestPath: '/auth/api-keys' }) } });
    expect(await keys.json()).toEqual({ apiKeys: [creds.apiKey] });

    expect(logs.length).toBeGreaterThan(10);
    const text = logs.join('\n');
    expect(text).not.toContain(key.replace(/^0x/, ''));
    for (const secret of [creds.secret, creds.secret.replace(/=+$/, ''), creds.passphrase, creds.apiKey]) expect(text).not.toContain(secret);
  });
});

// ---------------------------------------------------------------- the venue down, back, and refusing the key

describe('executor without the venue', () => {
  it('starts while the venue is down, takes no signal until reconciled, denies while the venue is away, and derives its key again when refused', async () => {
    const tmp = tempDataDir('pbexd');
    const simDir = join(tmp.dir, 'venue');
    mkdirSync(simDir);
    const port = await freePort();
    const simEnv = { POLYBOT_SIM_MARKETS: '2', POLYBOT_SIM_EVENT_RATE: '0', POLYBOT_SIM_HEARTBEAT_TIMEOUT_MS: '600000' };
    // The sim's markets follow from its seed alone, so the scanner knows them before the venue is up.
    const m0 = generateMarkets(42, 2)[0]!;
    const M: ScannerMarket = { conditionId: m0.conditionId, question: m0.question, negRisk: false, tickSize: '0.01', minOrderSize: '5', tokens: m0.tokenIds.map((tokenId, i) => ({ tokenId, outcome: m0.outcomes[i] ?? String(i) })) };
    seedScanner(join(tmp.dir, 'polybot.db'), [M]);
    const bus = await startBus(tmp.dir);
    const db = openDatabase(join(tmp.dir, 'polybot.db'), { readonly: true });
    const p = probe(() => bus, () => db);
    // A fixed key, so the test can act as the same account (and revoke its API key).
    const wallet = new Wallet(TEST_KEY);
    const runner = executorRunner(baseEnv(tmp.dir, { POLYBOT_SIM_PORT: String(port), POLYBOT_PRIVATE_KEY: TEST_KEY }));
    const pusher = new BusPusher({ endpoint: bus.ep['signals.push'], src: 'strategy:s1' });
    const req = new BusRequester({ endpoint: bus.ep['executor.rep'], src: 'test', timeoutMs: 10_000 });
    // Resting far below the book: every one of these goes live.
    const sig = () => signalOf({ ...on(M, yes(M)), price: 0.02, size: 5 });
    let sim: Sim | undefined;
    try {
      const t0 = Date.now();
      await runner.start(); // does not wait for the venue
      const down = await p.statusSince(t0, (e) => e.state === 'degraded' && /API key failed/.test(String(e.message)), 'degraded: no API key');
      expect(down.message).toMatch(/^venue closed: creating or deriving the API key failed: .*; not taking signals until reconciled$/);
      expect(down.metrics).toMatchObject({ intake_open: 0, venue_auth_ready: 0 });
      expect(await req.call('venue.status', {})).toMatchObject({ mode: 'sim', state: expect.stringMatching(/^(closed|reconciling)$/), taking_signals: false, can_trade: false });

      // The signal waits in the strategy's socket: nothing received, stored or sent while the intake is closed.
      pusher.start();
      const a = sig();
      pusher.push('signal', a);
      await sleep(1500);
      expect(bus.events.some((e) => e.signal_id === a.id)).toBe(false);
      expect(p.signalRow(a.id)).toBeUndefined();
      expect(p.latestMetrics()).toMatchObject({ intake_open: 0, signals_received: 0 });

      // The venue comes up: key, user channel, reconciliation, then the intake opens and the signal flows.
      sim = await startSimAt({ port, dir: simDir, env: simEnv });
      expect(await p.orderEvent(a, 'live')).toMatchObject({ token_id: yes(M) });
      const t1 = Date.now();
      await p.statusSince(t1, (e) => e.state === 'running' && (e.metrics as Row).venue_state === 'ready' && (e.metrics as Row).intake_open === 1, 'running and ready');

      // The venue goes away while running: health says why, and a signal is denied, not sent.
      await sim.stop();
      sim = undefined;
      const t2 = Date.now();
      const away = await p.statusSince(t2, (e) => e.state === 'degraded', 'degraded while the venue is away');
      expect(String(away.message)).toMatch(/venue|paused/);
      const b = sig();
      pusher.push('signal', b);
      expect(await p.signalEvent(b)).toMatchObject({ status: 'denied', code: expect.stringMatching(/^venue_(not_ready|degraded|heartbeat)$/) });
      expect(p.orderOf(b.id)).toBeUndefined();

      // Back on the same port with its saved state: reconciled again; the resting order is still live.
      sim = await startSimAt({ port, dir: simDir, env: simEnv });
      const t3 = Date.now();
      await p.statusSince(t3, (e) => e.state === 'running' && (e.metrics as Row).venue_state === 'ready', 'ready again');
      const c = sig();
      pusher.push('signal', c);
      await p.orderEvent(c, 'live');
      expect(p.orderOf(a.id)).toMatchObject({ status: 'live' });

      // The venue forgets the API key: the next refresh is refused, the key is derived again, trading goes on.
      const creds = await createOrDeriveApiKey(sim.base, wallet);
      const before = Number(p.latestMetrics()?.venue_reconciliations ?? 0);
      const del = await fetch(`${sim.base}/auth/api-key`, { method: 'DELETE', headers: { ...buildL2Headers(creds, wallet.address, { method: 'DELETE', requestPath: '/auth/api-key' }) } });
      expect(del.status).toBe(200);
      const t4 = Date.now();
      await p.statusSince(t4, (e) => e.state === 'running' && Number((e.metrics as Row).venue_reconciliations) > before, 'reconciled with a derived key', 40_000);
      const d = sig();
      pusher.push('signal', d);
      await p.orderEvent(d, 'live');
      const now = await createOrDeriveApiKey(sim.base, wallet);
      expect((JSON.parse(p.orderOf(d.id)?.request) as PostOrderBody).owner).toBe(now.apiKey);
    } finally {
      try {
        await req.close();
        await pusher.close(500);
        await runner.stop();
        await bus.close();
        db.close();
        await sim?.stop();
      } finally {
        tmp.cleanup();
      }
    }
  }, 120_000);
});

// ---------------------------------------------------------------- configuration (no venue needed)

describe('executor configuration', () => {
  it('signs with a key from an encrypted keystore and keeps the password out of logs and errors', async () => {
    const tmp = tempDataDir('pbexk');
    const password = 'correct horse battery staple';
    const keystore = join(tmp.dir, 'keys', 'executor.json');
    const passwordFile = join(tmp.dir, 'keys', 'password.txt');
    const env = (extra: Record<string, string>) => baseEnv(tmp.dir, { POLYMARKET_CLOB_URL: 'http://127.0.0.1:9', ...extra });
    try {
      const { address } = await createKeystore({ path: keystore, password, scryptN: 1024 });
      writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
      const logs: string[] = [];
      const r = executorRunner(env({ POLYBOT_KEYSTORE: keystore, POLYBOT_KEYSTORE_PASSWORD_FILE: passwordFile }), logs);
      await r.start();
      await r.stop();
      const ready = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'wallet ready');
      expect(ready).toMatchObject({ address, key_source: 'keystore' });
      expect(logs.join('\n')).not.toContain(password);

      writeFileSync(passwordFile, 'hunter2-not-it\n', { mode: 0o600 });
      const bad = executorRunner(env({ POLYBOT_KEYSTORE: keystore, POLYBOT_KEYSTORE_PASSWORD_FILE: passwordFile }));
      const err = await bad.start().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      await bad.stop();
      expect(err?.message).toMatch(/cannot load the signing key/);
      expect(err?.message).toMatch(/wrong password/);
      expect(err?.message).not.toContain('hunter2-not-it');

      chmodSync(passwordFile, 0o644);
      const open = executorRunner(env({ POLYBOT_KEYSTORE: keystore, POLYBOT_KEYSTORE_PASSWORD_FILE: passwordFile }));
      await expect(open.start()).rejects.toThrow(/chmod 600/);
      await open.stop();
    } finally {
      tmp.cleanup();
    }
  });

  it('refuses live mode without the explicit opt-in, and sim mode against the real venue', async () => {
    const tmp = tempDataDir('pbexc');
    try {
      for (const [extra, msg] of [
        [{ POLYBOT_EXECUTION_MODE: 'live' }, /POLYBOT_LIVE_TRADING=yes/],
        [{ POLYBOT_EXECUTION_MODE: 'live', POLYBOT_LIVE_TRADING: 'yes' }, /POLYBOT_PRIVATE_KEY/],
        [{ POLYBOT_VENUE: 'polymarket' }, /real exchange/],
      ] as const) {
        const r = executorRunner(baseEnv(tmp.dir, { POLYMARKET_CLOB_URL: 'http://127.0.0.1:9', ...extra }));
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

// ---------------------------------------------------------------- paper mode (never touches a venue)

describe('executor in paper mode', () => {
  const M1 = `0x${'a'.repeat(64)}`;
  const YES = '1001';
  const PAPER: ScannerMarket[] = [{ conditionId: M1, question: 'Will it rain?', negRisk: false, tickSize: '0.01', minOrderSize: '5', tokens: [{ tokenId: YES, outcome: 'Yes' }, { tokenId: '1002', outcome: 'No' }] }];
  let tmp: ReturnType<typeof tempDataDir>;
  let bus: Bus;
  let runner: ServiceRunner<ExecutorConfig>;
  let pusher: BusPusher;
  let books: BusPublisher;

  beforeAll(async () => {
    tmp = tempDataDir('pbexp');
    seedScanner(join(tmp.dir, 'polybot.db'), PAPER);
    bus = await startBus(tmp.dir);
    books = new BusPublisher({ endpoint: bus.ep['prices.pub'], mode: 'bind', src: 'scanner' });
    await books.start();
    // No venue at all: paper mode must never need one.
    runner = executorRunner(baseEnv(tmp.dir, { POLYMARKET_CLOB_URL: 'http://127.0.0.1:9', POLYBOT_EXECUTION_MODE: 'paper' }));
    await runner.start();
    await waitFor(() => bus.events.some((e) => e.type === 'status'), { what: 'executor status' });
    pusher = new BusPusher({ endpoint: bus.ep['signals.push'], src: 'strategy:s1' });
    pusher.start();
  });

  afterAll(async () => {
    try {
      await pusher?.close(500);
      await runner?.stop();
      await books?.close(200);
      await bus?.close();
    } finally {
      tmp?.cleanup();
    }
  });

  const sig = (over: Partial<SignalMessage>) => signalOf({ token_id: YES, market: M1, ...over });
  const orderEvent = (id: string, status: string) =>
    waitFor(() => bus.events.find((e) => e.kind === 'order' && e.signal_id === id && e.status === status), { what: `${status} order`, ...WAIT });
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
        return bus.events.some((e) => e.kind === 'order' && e.signal_id === s.id && e.status === 'filled');
      },
      { what: 'paper fill from a book', intervalMs: 200, ...WAIT },
    );
    const pos = await waitFor(() => [...bus.events].reverse().find((e) => e.kind === 'position'), { what: 'position' });
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
    const fills = bus.events.filter((e) => e.kind === 'fill' && e.order_id === bus.events.find((o) => o.kind === 'order' && o.signal_id === fak.id)?.order_id);
    expect(fills.map((f) => [f.price, f.size])).toEqual([
      ['0.52', '3'],
      ['0.5', '2'],
    ]);
    // Sold 5 of 10 bought at 0.56: proceeds 1.56 + 1.00, basis 2.80 → realized −0.24, exactly.
    const pos = await waitFor(() => [...bus.events].reverse().find((e) => e.kind === 'position' && e.size === '5'), { what: 'position after sell' });
    expect(pos).toMatchObject({ size: '5', cost: '2.8', realized_pnl: '-0.24' });
    expect(bus.events.some((e) => e.kind === 'order' && /not sent/.test(String(e.reason ?? '')))).toBe(false);
  });
});
