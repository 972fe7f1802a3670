import { Wallet } from 'ethers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildL2Headers,
  buildSignedOrder,
  ClobAccountClient,
  ClobTradingClient,
  createOrDeriveApiKey,
  orderHash,
  RateLimiter,
  VenueGate,
  type ApiCreds,
  type AuthHeadersFn,
  type GateEvent,
  type PostOrderBody,
} from '@polybot/polymarket';
import { freePort, tempDataDir, waitFor } from '@polybot/testkit';
import { faultController, faultMetrics } from '../../sim/src/faults.js';
import { startSim, type RunningSim } from '../../sim/test/helpers.js';
import { VenueSession, type VenueOrderUpdate, type VenueSessionOptions, type VenueTradeUpdate } from '../src/venue-session.js';
import { admin, expectNoSecrets, faultyFetch, record, recordingLogger, relay, startSimAt, TEST_KEY } from './venue-helpers.js';

const ADMIN = 'venue-session-admin-secret';
const wallet = new Wallet(TEST_KEY);
const SLOW = { timeoutMs: 30_000 };

const l2 = (creds: ApiCreds): AuthHeadersFn => (method, path, body) => ({ ...buildL2Headers(creds, wallet.address, { method, requestPath: path, body }) });

/** A signed GTC (or other) order body; the session sets the owner. */
function signed(tokenId: string, side: 'BUY' | 'SELL', price: string, size: string, extra: { orderType?: 'GTC' | 'FOK' | 'FAK'; postOnly?: boolean } = {}): PostOrderBody {
  const orderType = extra.orderType ?? 'GTC';
  const order = buildSignedOrder({ wallet, tokenId, side, price, size, orderType, tickSize: '0.01', negRisk: false });
  return { order, owner: 'set-by-the-session', orderType, ...(extra.postOnly ? { postOnly: true } : {}) };
}

/** Each (trade id, status) at most once across everything the session emitted. */
function duplicatesOf(trades: VenueTradeUpdate[]): string[] {
  const seen = new Set<string>();
  const dups: string[] = [];
  for (const t of trades) {
    const k = `${t.tradeId}|${t.rawStatus}`;
    if (seen.has(k)) dups.push(k);
    seen.add(k);
  }
  return dups;
}

const isVenue = (u: VenueOrderUpdate, type: string) => u.source === 'stream' && u.input.kind === 'venue' && u.input.type === type;

describe('VenueSession against the simulator (auth on)', () => {
  let sim: RunningSim;
  let creds: ApiCreds;
  let trading: ClobTradingClient;
  let account: ClobAccountClient;
  let tokenA: string;
  let tokenB: string;
  let marketA: string;
  const sessions: VenueSession[] = [];
  const logs: unknown[][] = [];

  const tops = async (tokenId: string) => {
    const book = (await (await fetch(`${sim.base}/book?token_id=${tokenId}`)).json()) as { bids: Array<{ price: string }>; asks: Array<{ price: string }> };
    // Best levels are the last ones, as on the venue.
    return { bid: Number(book.bids.at(-1)?.price ?? '0.02'), ask: Number(book.asks.at(-1)?.price ?? '0.98') };
  };
  const resting = async (tokenId: string) => Math.max(0.01, (await tops(tokenId)).bid - 0.1).toFixed(2);
  const crossing = async (tokenId: string) => Math.min(0.99, (await tops(tokenId)).ask + 0.02).toFixed(2);

  /** An order placed behind the session's back (same account, own client). */
  async function place(tokenId: string, price: string, size: string): Promise<{ id: string; status: string | undefined }> {
    const order = buildSignedOrder({ wallet, tokenId, side: 'BUY', price, size, orderType: 'GTC', tickSize: '0.01', negRisk: false });
    const out = await trading.postOrder({ order, owner: creds.apiKey, orderType: 'GTC' });
    if (out.kind !== 'accepted' || !out.response.orderID) throw new Error(`order not accepted: ${JSON.stringify(out)}`);
    return { id: out.response.orderID, status: out.response.status };
  }

  function newSession(extra: Partial<VenueSessionOptions> = {}) {
    const { lines, log } = recordingLogger();
    logs.push(lines);
    const session = new VenueSession({
      urls: { clob: sim.base, ws: sim.base.replace(/^http/, 'ws') },
      signer: wallet,
      log,
      tradingEnabled: true,
      heartbeat: { intervalMs: 1000, expiryMs: 6000, marginMs: 2000 },
      retryBaseMs: 100,
      retryMaxMs: 1000,
      ...extra,
    });
    sessions.push(session);
    return { session, rec: record(session) };
  }

  const acceptedAtVenue = () => sim.service.exchange.stats.ordersAccepted;
  const liveAtVenue = async (id: string) => (await account.getOpenOrders({ id })).items.filter((o) => o.id === id).length;

  beforeAll(async () => {
    sim = await startSim({
      POLYBOT_SIM_REQUIRE_AUTH: 'true',
      POLYBOT_SIM_ADMIN_SECRET: ADMIN,
      POLYBOT_SIM_MARKETS: '2',
      // Frozen makers: the books only move when these tests trade.
      POLYBOT_SIM_EVENT_RATE: '0',
      POLYBOT_SIM_MINE_MS: '100',
      POLYBOT_SIM_CONFIRM_MS: '200',
      // Sessions come and go on one account: the dead-man switch is tested on its own simulator below.
      POLYBOT_SIM_HEARTBEAT_TIMEOUT_MS: '600000',
    });
    creds = await createOrDeriveApiKey(sim.base, wallet);
    trading = new ClobTradingClient({ baseUrl: sim.base, authHeaders: l2(creds) });
    account = new ClobAccountClient({ baseUrl: sim.base, authHeaders: l2(creds) });
    const markets = (await (await fetch(`${sim.base}/markets?limit=5`)).json()) as Array<{ conditionId: string; clobTokenIds: string }>;
    marketA = markets[0]!.conditionId;
    tokenA = (JSON.parse(markets[0]!.clobTokenIds) as string[])[0]!;
    tokenB = (JSON.parse(markets[1]!.clobTokenIds) as string[])[0]!;
  }, 120_000);

  afterEach(async () => {
    for (const s of sessions.splice(0)) await s.stop();
    await admin(sim.base, ADMIN, 'faults/reset');
    faultController(sim.service.exchange)!.clock = Date.now;
    // No credential in any log line of any session.
    for (const lines of logs.splice(0)) {
      const text = JSON.stringify(lines);
      expect(expectNoSecrets(text, creds)).toEqual([]);
      expect(text).not.toContain(creds.apiKey);
    }
  });

  afterAll(async () => {
    await sim?.stop();
  });

  it('reconciles before ready: open orders and trades placed before the session started, balances, version', async () => {
    const since = Date.now();
    const r1 = await place(tokenA, await resting(tokenA), '5');
    const r2 = await place(tokenB, await resting(tokenB), '6');
    const taker = await place(tokenA, await crossing(tokenA), '5');
    expect(taker.status).toBe('matched');
    // One the caller still holds as open, cancelled while it was away: not listed, so looked up.
    const gone = await place(tokenA, await resting(tokenA), '5');
    await account.cancelOrder(gone.id);
    await waitFor(async () => (await account.getTrades({ after: since })).items.some((t) => t.taker_order_id === taker.id), { what: 'the trade at the venue' });

    const { session, rec } = newSession({ tradingEnabled: false });
    expect(session.state()).toMatchObject({ state: 'closed', reason: 'not started' });
    const st = await session.start({ tradesSinceMs: since, tokens: [tokenA], openOrderIds: [r1.id, gone.id] });
    expect(st.state).toBe('ready');
    // Ready was reported only after the snapshot went out.
    const readyAt = rec.states.findIndex((s) => s.state === 'ready');
    expect(rec.states.slice(0, readyAt).map((s) => s.state)).not.toContain('ready');
    expect(rec.snapshots).toHaveLength(1);
    const snap = rec.snapshots[0]!;
    expect(snap).toMatchObject({ cause: 'start', version: 2, tradesSinceMs: since });
    const byId = new Map(snap.orders.map((o) => [o.orderId, o]));
    expect(byId.get(r1.id)).toMatchObject({ input: { kind: 'lookup', found: true, status: 'LIVE', sizeMatched: 0n }, order: { assetId: tokenA, originalSize: '5', side: 'BUY' } });
    expect(byId.get(r2.id)).toMatchObject({ input: { kind: 'lookup', found: true, status: 'LIVE' }, order: { assetId: tokenB, originalSize: '6' } });
    expect(byId.get(gone.id)).toMatchObject({ input: { kind: 'lookup', found: true, status: 'CANCELED' } });
    expect(session.openOrderIds).not.toContain(gone.id);
    const mine = snap.trades.filter((t) => t.fills.some((f) => f.orderId === taker.id));
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((t) => t.source === 'reconcile' && t.fills[0]!.role === 'TAKER' && t.fills[0]!.assetId === tokenA)).toBe(true);
    // Exact micro shares: the taker bought exactly 5 across its trades.
    expect(mine.reduce((s, t) => s + t.fills.find((f) => f.orderId === taker.id)!.size, 0n)).toBe(5_000_000n);
    expect(snap.balances.collateral.balance).toMatch(/^\d+$/);
    expect(BigInt(snap.balances.tokens[tokenA]!.balance)).toBeGreaterThanOrEqual(5_000_000n);
    // Open order tokens come with their balances too.
    expect(Object.keys(snap.balances.tokens).sort()).toEqual([tokenA, tokenB].sort());
    expect(session.openOrderIds).toEqual(expect.arrayContaining([r1.id, r2.id]));
    // Fail closed: reconciled, but trading is off.
    expect(session.canTrade()).toMatchObject({ ok: false, code: 'trading_disabled' });
    // Open orders keep the dead-man heartbeat running even with trading off.
    await waitFor(() => session.heartbeatHealthy, { what: 'heartbeats for the open orders' });
    await session.cancel([r1.id, r2.id]);
  });

  it('submits through the gate and reports stream events: placement, the trade lifecycle, a rejection and cancels', async () => {
    const { session, rec } = newSession();
    const early = await session.submit(signed(tokenA, 'BUY', '0.05', '5'), { negRisk: false });
    expect(early.outcome).toMatchObject({ kind: 'not_sent', code: 'not_ready' });
    expect(early.input).toMatchObject({ kind: 'post', outcome: 'not_sent' });

    await session.start();
    await waitFor(() => session.canTrade().ok, { what: 'canTrade (first accepted heartbeat)' });

    const restBody = signed(tokenA, 'BUY', await resting(tokenA), '5');
    const rest = await session.submit(restBody, { negRisk: false, orderId: orderHash(restBody.order, false) });
    expect(rest.outcome.kind).toBe('accepted');
    expect(rest.input).toMatchObject({ kind: 'post', outcome: 'accepted', status: 'live', venueOrderId: rest.orderId });
    const placed = await waitFor(() => rec.orders.find((u) => u.orderId === rest.orderId && isVenue(u, 'PLACEMENT')), { what: 'PLACEMENT' });
    expect(placed.input).toMatchObject({ kind: 'venue', status: 'LIVE', sizeMatched: 0n });
    expect(session.openOrderIds).toContain(rest.orderId);

    const take = await session.submit(signed(tokenA, 'BUY', await crossing(tokenA), '5'), { negRisk: false });
    expect(take.outcome).toMatchObject({ kind: 'accepted', response: { status: 'matched' } });
    expect(take.input).toMatchObject({ outcome: 'accepted', status: 'matched', matched: 5_000_000n });
    const mine = () => rec.trades.filter((t) => t.fills.some((f) => f.orderId === take.orderId));
    await waitFor(() => mine().length > 0 && new Set(mine().map((t) => t.tradeId)).size * 3 === mine().length, { what: 'every trade MATCHED → MINED → CONFIRMED' });
    for (const id of new Set(mine().map((t) => t.tradeId))) {
      expect(mine().filter((t) => t.tradeId === id).map((t) => t.status)).toEqual(['matched', 'mined', 'confirmed']);
    }
    expect(mine().filter((t) => t.terminal).reduce((s, t) => s + t.fills[0]!.size, 0n)).toBe(5_000_000n);
    expect(duplicatesOf(rec.trades)).toEqual([]);

    const tooSmall = await session.submit(signed(tokenA, 'BUY', await resting(tokenA), '1'), { negRisk: false });
    expect(tooSmall.outcome).toMatchObject({ kind: 'rejected', retryable: false, errorMsg: expect.stringMatching(/lower than the minimum/) });
    expect(tooSmall.input).toMatchObject({ outcome: 'rejected' });
    // A hash that does not belong to the body is a caller bug, not an outcome.
    await expect(session.submit(restBody, { negRisk: false, orderId: `0x${'1'.repeat(64)}` })).rejects.toThrow(/does not match/);

    const c = await session.cancel([rest.orderId]);
    expect(c).toMatchObject({ canceled: [rest.orderId], unconfirmed: [], acks: [{ orderId: rest.orderId, input: { kind: 'cancel_ack', canceled: true } }] });
    await waitFor(() => rec.orders.find((u) => u.orderId === rest.orderId && isVenue(u, 'CANCELLATION')), { what: 'CANCELLATION' });
    expect(session.openOrderIds).not.toContain(rest.orderId);
    // Idempotent at the venue: repeating the cancel is answered, not failed.
    const again = await session.cancel([rest.orderId]);
    expect(again.notCanceled[rest.orderId]).toMatch(/already canceled/);
    expect(again.acks[0]!.input).toMatchObject({ canceled: false });
  });

  it('settles an accepted-then-timed-out order by looking it up: the real state, and no second order at the venue', async () => {
    const net = faultyFetch({});
    // Stream limited to another market, so the lookup (not the stream) is what settles it.
    const { session, rec } = newSession({ orderTimeoutMs: 1500, markets: [marketA], fetch: net.fetch });
    await session.start();
    await waitFor(() => session.canTrade().ok, { what: 'canTrade' });
    await admin(sim.base, ADMIN, 'faults', { accept_then_timeout_rate: 1 });
    const before = acceptedAtVenue();

    const r = await session.submit(signed(tokenB, 'BUY', await resting(tokenB), '7'), { negRisk: false });
    expect(r.outcome).toMatchObject({ kind: 'ambiguous', code: 'timeout' });
    expect(r.input).toMatchObject({ kind: 'post', outcome: 'ambiguous' });
    const settled = await waitFor(() => rec.orders.find((u) => u.orderId === r.orderId && u.settlement), { what: 'settlement', ...SLOW });
    expect(settled).toMatchObject({ source: 'settle', settlement: 'exists', input: { kind: 'lookup', found: true, status: 'LIVE', sizeMatched: 0n }, order: { originalSize: '7' } });
    await waitFor(() => session.inFlightOrderIds.length === 0, { what: 'in-flight cleared' });
    expect(session.openOrderIds).toContain(r.orderId);

    expect(acceptedAtVenue()).toBe(before + 1);
    expect(await liveAtVenue(r.orderId)).toBe(1);
    expect(net.seen.posts).toBe(1);

    // On a streamed market the PLACEMENT arrives while the post is still out; the ambiguity is
    // still closed by exactly one settlement update, and still without a second order.
    const streamed = await session.submit(signed(tokenA, 'BUY', await resting(tokenA), '7'), { negRisk: false });
    expect(streamed.outcome).toMatchObject({ kind: 'ambiguous', code: 'timeout' });
    await waitFor(() => rec.orders.find((u) => u.orderId === streamed.orderId && u.settlement), { what: 'settlement', ...SLOW });
    await waitFor(() => session.inFlightOrderIds.length === 0, { what: 'in-flight cleared' });
    const forIt = rec.orders.filter((u) => u.orderId === streamed.orderId);
    expect(forIt.find((u) => isVenue(u, 'PLACEMENT'))?.settlement).toBeUndefined();
    expect(forIt.filter((u) => u.settlement)).toEqual([expect.objectContaining({ source: 'settle', settlement: 'exists', input: expect.objectContaining({ kind: 'lookup', status: 'LIVE' }) })]);
    expect(acceptedAtVenue()).toBe(before + 2);
    expect(net.seen.posts).toBe(2);
    await session.cancel([r.orderId, streamed.orderId]);
  });

  describe('settling ambiguity when the network, not the venue, fails', () => {
    it('lost answer and a lagging index: the identical re-post is answered "Duplicated", the lookup then finds it', async () => {
      const net = faultyFetch({ post: ['lose_answer'], lookup: ['miss'] });
      const { session, rec } = newSession({ markets: [marketA], fetch: net.fetch });
      await session.start();
      await waitFor(() => session.canTrade().ok, { what: 'canTrade' });
      const before = acceptedAtVenue();
      const r = await session.submit(signed(tokenB, 'BUY', await resting(tokenB), '8'), { negRisk: false });
      expect(r.outcome).toMatchObject({ kind: 'ambiguous', code: 'ECONNRESET' });
      const settled = await waitFor(() => rec.orders.find((u) => u.orderId === r.orderId && u.settlement), { what: 'settlement', ...SLOW });
      expect(settled).toMatchObject({ source: 'settle', settlement: 'exists', input: { kind: 'lookup', found: true, status: 'LIVE' } });
      // The re-post reached the venue and was deduplicated by it.
      expect(net.seen).toMatchObject({ posts: 2, postedToVenue: 2 });
      expect(acceptedAtVenue()).toBe(before + 1);
      expect(await liveAtVenue(r.orderId)).toBe(1);
      await session.cancel([r.orderId]);
    });

    it('a post that never left: the identical re-post places it, once', async () => {
      const net = faultyFetch({ post: ['swallow'] });
      const { session, rec } = newSession({ markets: [marketA], fetch: net.fetch });
      await session.start();
      await waitFor(() => session.canTrade().ok, { what: 'canTrade' });
      const before = acceptedAtVenue();
      const r = await session.submit(signed(tokenB, 'BUY', await resting(tokenB), '9'), { negRisk: false });
      expect(r.outcome.kind).toBe('ambiguous');
      const settled = await waitFor(() => rec.orders.find((u) => u.orderId === r.orderId && u.settlement), { what: 'settlement', ...SLOW });
      expect(settled).toMatchObject({ source: 'settle', settlement: 'exists', input: { kind: 'post', outcome: 'accepted', status: 'live', venueOrderId: r.orderId } });
      expect(net.seen).toMatchObject({ posts: 2, postedToVenue: 1 });
      expect(acceptedAtVenue()).toBe(before + 1);
      expect(await liveAtVenue(r.orderId)).toBe(1);
      await session.cancel([r.orderId]);
    });

    it('a post that never left, re-posting off: reported not found after the deadline', async () => {
      const net = faultyFetch({ post: ['swallow'] });
      const { session, rec } = newSession({ markets: [marketA], fetch: net.fetch, settle: { repost: false, firstLookupMs: 100, maxDelayMs: 300, deadlineMs: 1500, graceMs: 500 } });
      await session.start();
      await waitFor(() => session.canTrade().ok, { what: 'canTrade' });
      const before = acceptedAtVenue();
      const r = await session.submit(signed(tokenB, 'BUY', await resting(tokenB), '10'), { negRisk: false });
      expect(r.outcome.kind).toBe('ambiguous');
      expect(session.inFlightOrderIds).toEqual([r.orderId]);
      const settled = await waitFor(() => rec.orders.find((u) => u.orderId === r.orderId && u.settlement), { what: 'settlement', ...SLOW });
      expect(settled).toMatchObject({ source: 'settle', settlement: 'not_found', input: { kind: 'lookup', found: false, final: true }, reason: expect.stringMatching(/not found/) });
      expect(net.seen.posts).toBe(1);
      expect(net.seen.lookups).toBeGreaterThanOrEqual(2);
      expect(acceptedAtVenue()).toBe(before);
      await waitFor(() => session.inFlightOrderIds.length === 0, { what: 'in-flight cleared' });
    });
  });

  it('429 with Retry-After: the gate pauses POST /order, the identical body goes again after it, one 429 in all', async () => {
    const events: Array<GateEvent & { at: number }> = [];
    const gate = new VenueGate({ limiter: new RateLimiter(), onEvent: (e) => events.push({ ...e, at: Date.now() }) });
    const posts: number[] = [];
    const timed: typeof fetch = async (input, init) => {
      if ((init?.method ?? 'GET') === 'POST' && new URL(String(input)).pathname === '/order') posts.push(Date.now());
      return fetch(input, init);
    };
    // Default heartbeat pace: at 0.1 % of the limits the CLOB family allows 9 requests per 10 s.
    const { session } = newSession({ gate, fetch: timed, heartbeat: {} });
    await session.start();
    await waitFor(() => session.canTrade().ok, { what: 'canTrade' });

    // Read before the limits shrink: /book is limited too.
    const price = await resting(tokenA);
    // The simulator's rate windows run on a clock this test moves: no 10 s waits.
    const ctl = faultController(sim.service.exchange)!;
    let offset = 601_000; // every window of the earlier tests is over
    ctl.clock = () => Date.now() + offset;
    await admin(sim.base, ADMIN, 'faults', { rate_limit_scale: 0.001 }); // POST /order: 4 per 10 s
    const firstAt = ctl.clock();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await session.submit(signed(tokenA, 'BUY', price, '5'), { negRisk: false });
      expect(r.outcome.kind).toBe('accepted');
      ids.push(r.orderId);
    }
    // 8 s into the window: the fifth order is turned away with Retry-After ≈ 2 s.
    offset = firstAt + 8_000 - Date.now();
    const before429 = faultMetrics(sim.service.exchange).fault_429s ?? 0;
    const fifth = await session.submit(signed(tokenA, 'BUY', price, '5'), { negRisk: false });
    expect(fifth.outcome.kind).toBe('accepted');
    ids.push(fifth.orderId);
    expect((faultMetrics(sim.service.exchange).fault_429s ?? 0) - before429).toBe(1);
    const throttled = events.find((e) => e.type === 'throttled');
    expect(throttled).toMatchObject({ type: 'throttled', endpointClass: 'POST /order' });
    const until = (throttled as { until: number }).until;
    // The gate's clock is monotonic, Date.now is the wall clock: allow them a few ms apart.
    expect(until - throttled!.at).toBeGreaterThanOrEqual(900);
    // Five accepted posts plus the refused one; the re-post waited out the pause.
    expect(posts).toHaveLength(6);
    expect(posts[5]!).toBeGreaterThanOrEqual(until - 50);
    await session.cancel(ids);
  });

  it('425: the venue refusal comes back as such, then orders are not sent during back-off and the post-only window; post-only orders and cancels go', async () => {
    const { session } = newSession();
    await session.start();
    await waitFor(() => session.canTrade().ok, { what: 'canTrade' });
    const m0 = faultMetrics(sim.service.exchange);
    await admin(sim.base, ADMIN, 'faults', { too_early_s: 2, post_only_s: 30 });

    const first = await session.submit(signed(tokenA, 'BUY', await resting(tokenA), '5'), { negRisk: false });
    expect(first.outcome).toMatchObject({ kind: 'rejected', status: 425, retryable: true });
    expect(session.gate.mode()).toBe('backoff');
    expect(session.canTrade()).toMatchObject({ ok: false, code: 'venue_mode', reason: expect.stringMatching(/425/) });
    const during = await session.submit(signed(tokenA, 'BUY', await resting(tokenA), '5'), { negRisk: false });
    expect(during.outcome).toMatchObject({ kind: 'not_sent', code: 'venue_mode' });

    await waitFor(async () => ((await (await fetch(`${sim.base}/admin/faults`, { headers: { 'x-admin-secret': ADMIN } })).json()) as { phase: string }).phase === 'post_only', {
      what: 'the simulator in its post-only window',
      ...SLOW,
    });
    await waitFor(() => session.canTrade('post_only_order').ok, { what: 'the gate past its back-off', ...SLOW });
    const taker = await session.submit(signed(tokenA, 'BUY', await resting(tokenA), '5'), { negRisk: false });
    expect(taker.outcome).toMatchObject({ kind: 'not_sent', error: expect.stringMatching(/post-only/) });

    const po = await session.submit(signed(tokenA, 'BUY', await resting(tokenA), '5', { postOnly: true }), { negRisk: false });
    expect(po.outcome).toMatchObject({ kind: 'accepted', response: { status: 'live' } });
    expect(session.gate.mode()).toBe('post_only');
    const stillNot = await session.submit(signed(tokenA, 'BUY', await resting(tokenA), '5'), { negRisk: false });
    expect(stillNot.outcome).toMatchObject({ kind: 'not_sent', error: expect.stringMatching(/post-only/) });
    expect(await session.cancel([po.orderId])).toMatchObject({ canceled: [po.orderId] });

    const m1 = faultMetrics(sim.service.exchange);
    // One 425 in all (no storm), and nothing the simulator had to refuse for post-only mode.
    expect((m1.fault_425s ?? 0) - (m0.fault_425s ?? 0)).toBe(1);
    expect((m1.fault_post_only_rejected ?? 0) - (m0.fault_post_only_rejected ?? 0)).toBe(0);
  });

  it('the fallback poll recovers a change the stream never carried', async () => {
    // The channel filter leaves market B out: only the timer's REST refresh can see it.
    const { session, rec } = newSession({ markets: [marketA], pollIntervalMs: 300, tradingEnabled: false });
    await session.start();
    const ext = await place(tokenB, await resting(tokenB), '5');
    const seen = await waitFor(() => rec.orders.find((u) => u.orderId === ext.id), { what: 'the order via the poll', ...SLOW });
    expect(seen).toMatchObject({ source: 'refresh', reason: 'poll', input: { kind: 'lookup', found: true, status: 'LIVE' } });
    await account.cancelOrder(ext.id);
    const gone = await waitFor(() => rec.orders.find((u) => u.orderId === ext.id && u.input.kind === 'lookup' && u.input.found && u.input.status === 'CANCELED'), { what: 'the cancel via the poll', ...SLOW });
    expect(gone.source).toBe('refresh');
    expect(session.openOrderIds).not.toContain(ext.id);
    expect(session.state().state).toBe('ready');
  });

  it('recovers what happened while the user channel was down through the REST refresh after the reconnect', async () => {
    const proxy = await relay(Number(new URL(sim.base).port));
    try {
      const { session, rec } = newSession({ urls: { clob: sim.base, ws: `ws://127.0.0.1:${proxy.port}` }, userWs: { initialBackoffMs: 100, maxBackoffMs: 300 } });
      await session.start();
      await waitFor(() => session.canTrade().ok, { what: 'canTrade' });
      const r1 = await session.submit(signed(tokenA, 'BUY', await resting(tokenA), '5'), { negRisk: false });
      expect(r1.outcome.kind).toBe('accepted');
      await waitFor(() => rec.orders.find((u) => u.orderId === r1.orderId && isVenue(u, 'PLACEMENT')), { what: 'PLACEMENT' });

      expect(proxy.block()).toBeGreaterThanOrEqual(1);
      await waitFor(() => session.state().state === 'degraded' && /user channel down/.test(session.state().reason ?? ''), { what: 'degraded: channel down' });
      expect(session.canTrade()).toMatchObject({ ok: false, code: 'degraded' });

      // Meanwhile the account trades and changes through another client.
      const since = Date.now();
      const ext = await place(tokenA, await crossing(tokenA), '5');
      expect(ext.status).toBe('matched');
      await account.cancelOrder(r1.orderId);
      const ext2 = await place(tokenB, await resting(tokenB), '5');
      await waitFor(async () => {
        const mine = (await account.getTrades({ after: since })).items.filter((t) => t.taker_order_id === ext.id);
        return mine.length > 0 && mine.every((t) => /CONFIRMED/.test(t.status));
      }, { what: 'the trade confirmed at the venue' });
      const seenBefore = rec.trades.length;

      proxy.unblock();
      await waitFor(() => rec.states.some((s) => s.state === 'degraded' && /resynchronising/.test(s.reason ?? '')), { what: 'resynchronising', ...SLOW });
      await waitFor(() => session.state().state === 'ready', { what: 'ready after the refresh', ...SLOW });

      const recovered = rec.trades.slice(seenBefore).filter((t) => t.fills.some((f) => f.orderId === ext.id));
      expect(recovered.length).toBeGreaterThan(0);
      expect(recovered.every((t) => t.source === 'refresh' && t.status === 'confirmed' && t.terminal)).toBe(true);
      expect(recovered.reduce((s, t) => s + t.fills[0]!.size, 0n)).toBe(5_000_000n);
      expect(rec.orders.find((u) => u.orderId === r1.orderId && u.source === 'refresh')).toMatchObject({ input: { kind: 'lookup', found: true, status: 'CANCELED' } });
      expect(rec.orders.find((u) => u.orderId === ext2.id && u.source === 'refresh')).toMatchObject({ input: { kind: 'lookup', found: true, status: 'LIVE' } });
      expect(session.openOrderIds).not.toContain(r1.orderId);
      expect(session.openOrderIds).toContain(ext2.id);
      expect(duplicatesOf(rec.trades)).toEqual([]);
      // Trading resumes only now.
      await waitFor(() => session.canTrade().ok, { what: 'canTrade after the resync' });
      await session.cancel([ext2.id]);
    } finally {
      await proxy.close();
    }
  });
});

describe('VenueSession when the venue goes away and when heartbeats fail', () => {
  const tmp = tempDataDir('pbvs');
  let port: number;
  let sim: Awaited<ReturnType<typeof startSimAt>> | undefined;
  let session: VenueSession | undefined;
  const env = {
    POLYBOT_SIM_REQUIRE_AUTH: 'true',
    POLYBOT_SIM_ADMIN_SECRET: ADMIN,
    POLYBOT_SIM_MARKETS: '2',
    POLYBOT_SIM_EVENT_RATE: '0',
    POLYBOT_SIM_MINE_MS: '100',
    POLYBOT_SIM_CONFIRM_MS: '200',
    POLYBOT_SIM_HEARTBEAT_TIMEOUT_MS: '3000',
    POLYBOT_SIM_SAVE_INTERVAL_S: '0',
  };
  let tokenA: string;

  beforeAll(async () => {
    port = await freePort();
  });

  afterAll(async () => {
    await session?.stop();
    await sim?.stop();
    tmp.cleanup();
  });

  it('stays closed with a reason while the venue is down, never trades, and reaches ready once it is back', async () => {
    sim = await startSimAt({ port, dir: tmp.dir, env });
    const base = sim.base;
    const creds = await createOrDeriveApiKey(base, wallet);
    const markets = (await (await fetch(`${base}/markets?limit=5`)).json()) as Array<{ clobTokenIds: string }>;
    tokenA = (JSON.parse(markets[0]!.clobTokenIds) as string[])[0]!;
    const trading = new ClobTradingClient({ baseUrl: base, authHeaders: l2(creds) });
    const order = buildSignedOrder({ wallet, tokenId: tokenA, side: 'BUY', price: '0.02', size: '5', orderType: 'GTC', tickSize: '0.01', negRisk: false });
    const out = await trading.postOrder({ order, owner: creds.apiKey, orderType: 'GTC' });
    if (out.kind !== 'accepted') throw new Error(`order not accepted: ${JSON.stringify(out)}`);
    const resting = out.response.orderID!;
    await sim.stop();
    sim = undefined;

    const { lines, log } = recordingLogger();
    session = new VenueSession({
      urls: { clob: base, ws: base.replace(/^http/, 'ws') },
      signer: wallet,
      log,
      tradingEnabled: true,
      retryBaseMs: 200,
      retryMaxMs: 1000,
      heartbeat: { intervalMs: 500, expiryMs: 2500, marginMs: 500, retryMs: 200, timeoutMs: 1000 },
    });
    const rec = record(session);
    const first = await session.start();
    expect(first).toMatchObject({ state: 'closed', reason: expect.stringMatching(/^creating or deriving the API key failed: .*(ECONNREFUSED|fetch failed).*; retrying in/) });
    expect(session.canTrade()).toMatchObject({ ok: false, code: 'not_ready' });
    const refused = await session.submit(signed(tokenA, 'BUY', '0.03', '5'), { negRisk: false });
    expect(refused.outcome).toMatchObject({ kind: 'not_sent', code: 'not_ready' });
    // Several attempts later it is still closed, and nothing was ever reported ready or reconciled.
    await waitFor(() => rec.states.filter((s) => s.state === 'reconciling').length >= 3, { what: 'three attempts', ...SLOW });
    expect(session.state().state).not.toBe('ready');
    expect(rec.states.some((s) => s.state === 'ready' || s.state === 'degraded')).toBe(false);
    expect(rec.snapshots).toHaveLength(0);

    sim = await startSimAt({ port, dir: tmp.dir, env });
    await waitFor(() => session!.state().state === 'ready', { what: 'ready once the venue is back', ...SLOW });
    expect(rec.snapshots).toHaveLength(1);
    // The order from before the outage (persisted by the venue) is in the snapshot.
    expect(rec.snapshots[0]!.orders.map((o) => o.orderId)).toContain(resting);
    expect(JSON.stringify(lines)).not.toContain(creds.secret);
  });

  it('cannot trade while heartbeats fail; the venue’s dead-man switch cancels the orders, the stream says so, and trading resumes when beats are accepted again', async () => {
    const s = session!;
    const rec = record(s);
    await waitFor(() => s.canTrade().ok, { what: 'canTrade', ...SLOW });
    const r = await s.submit(signed(tokenA, 'BUY', '0.03', '5'), { negRisk: false });
    expect(r.outcome.kind).toBe('accepted');
    await waitFor(() => rec.orders.find((u) => u.orderId === r.orderId && isVenue(u, 'PLACEMENT')), { what: 'PLACEMENT' });

    await admin(sim!.base, ADMIN, 'faults', { error_rate: 1 });
    await waitFor(() => {
      const c = s.canTrade();
      return !c.ok && c.code === 'heartbeat';
    }, { what: 'canTrade false for heartbeats', ...SLOW });
    expect(s.canTrade()).toMatchObject({ ok: false, reason: expect.stringMatching(/heartbeat/) });
    expect(s.state()).toMatchObject({ state: 'degraded', reason: expect.stringMatching(/heartbeat/) });
    const blocked = await s.submit(signed(tokenA, 'BUY', '0.03', '5'), { negRisk: false });
    expect(blocked.outcome).toMatchObject({ kind: 'not_sent', code: 'heartbeat' });

    // The venue's switch fires after its 3 s and cancels our open orders; the stream still works.
    const cancelled = await waitFor(() => rec.orders.find((u) => u.orderId === r.orderId && isVenue(u, 'CANCELLATION')), { what: 'dead-man cancellation', ...SLOW });
    expect(cancelled.input).toMatchObject({ kind: 'venue', status: 'CANCELED' });

    await admin(sim!.base, ADMIN, 'faults/reset');
    await waitFor(() => s.canTrade().ok, { what: 'canTrade again', ...SLOW });
    expect(s.state().state).toBe('ready');
    expect(s.openOrderIds).not.toContain(r.orderId);

    await s.stop({ cancelAll: true });
    expect(s.state()).toMatchObject({ state: 'closed', reason: 'stopped' });
  });
});
