/**
 * Same seed + same order flow ⇒ same event log. Two levels:
 *  1. the Exchange alone, with an injected clock and no timers: every market event, user event and
 *     query answer of a scripted run (maker steps, signed orders with fixed salts and timestamps,
 *     fills, cancels, trade lifecycle via tick()) hashed with sha256;
 *  2. the whole service over the wire (REST + market and user WebSockets, auth on, maker timer off),
 *     with `Date` frozen by vitest and advanced explicitly, and a fixed server secret so the API keys
 *     are the same in both runs.
 * A different seed (or a different order) must give a different hash.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, ServiceRunner } from '@polybot/core';
import { buildL2Headers, buildSignedOrder, createOrDeriveApiKey, type ApiCreds, type PostOrderBody, type VenueOrderType } from '@polybot/polymarket';
import { tempDataDir } from '@polybot/testkit';
import { Wallet } from 'ethers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Exchange } from '../src/exchange.js';
import { createSimService, SimConfig, type SimService } from '../src/index.js';
import { verifyOrder } from '../src/verify-order.js';
import { WsClient } from './helpers.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** 2026-01-01T00:00:00Z: every clock of both levels starts here. */
const T0 = 1_767_225_600_000;
// Hardhat accounts #0 and #1: public test keys, never funded anywhere.
const walletA = new Wallet('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
const walletB = new Wallet('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');

type Level = { price: string; size: string };
const best = (levels: Level[]) => levels.at(-1) as Level;
const cents = (p: string, d: number) => (Math.min(99, Math.max(1, Math.round(Number(p) * 100) + d)) / 100).toFixed(2);

/** One scripted order: fixed salt and timestamp, so the same script signs the same bytes. */
function signed(wallet: Wallet, tokenId: string, side: 'BUY' | 'SELL', price: string, size: string, orderType: VenueOrderType, salt: number, timestampMs: number) {
  return buildSignedOrder({ wallet, tokenId, side, price, size, orderType, tickSize: '0.01', negRisk: false, salt, timestampMs });
}

// ------------------------------------------------------------------ level 1: the exchange

function exchangeRun(seed: number, variant = 0): { hash: string; lines: number; kinds: string[] } {
  let now = T0;
  const ex = new Exchange({
    seed,
    markets: 4,
    startBalance: 10_000_000_000n,
    now: () => now,
    timers: false,
    mineMs: 1000,
    confirmMs: 2000,
    // The neg-risk event and 10-second up/down rounds (several open and resolve during the run).
    negRisk: true,
    rounds: { assets: ['BTC', 'ETH'], roundSeconds: 10 },
  });
  const log: string[] = [];
  const rec = (tag: string, v: unknown) => log.push(`${tag} ${JSON.stringify(v)}`);
  ex.on((ev) => rec('market', ev));
  ex.onUser((ev) => rec('user', ev));
  const [m0, m1] = ex.markets as [Exchange['markets'][number], Exchange['markets'][number]];
  let salt = 1;
  const post = (wallet: Wallet, tokenId: string, side: 'BUY' | 'SELL', price: string, size: string, orderType: VenueOrderType) => {
    const body: PostOrderBody = { order: signed(wallet, tokenId, side, price, size, orderType, salt++, now), owner: `key-${wallet.address.slice(2, 10)}`, orderType };
    const v = verifyOrder(body, { negRisk: false, now, callerAddress: wallet.address });
    if (!v.ok) throw new Error(v.errorMsg);
    const res = ex.postOrder(body, { orderId: v.orderId, address: wallet.address });
    rec('POST /order', res);
    return res;
  };
  const queries = () => {
    for (const m of [m0, m1]) for (const t of m.tokenIds) rec('GET /book', ex.bookSummary(t));
    for (const w of [walletA, walletB]) {
      rec('GET /data/orders', ex.openOrders(w.address));
      rec('GET /data/trades', ex.tradesOf(w.address));
      rec('account', ex.account(w.address) ?? null);
    }
    rec('gamma', ex.gammaMarkets());
  };
  const steps = (n: number) => {
    for (let i = 0; i < n; i++) {
      now += 50;
      ex.step();
      if (i % 10 === 9) ex.tick(now);
    }
  };

  steps(100);
  let b = ex.bookSummary(m0.tokenIds[0])!;
  // A rests a bid at the best bid; B buys from the asks (FAK), then sells into the bid level.
  const restA = post(walletA, m0.tokenIds[0], 'BUY', best(b.bids).price, '20', 'GTC');
  post(walletB, m0.tokenIds[0], 'BUY', cents(best(b.asks).price, 5), String(Math.ceil(Number(best(b.bids).size)) + 40), 'FAK');
  b = ex.bookSummary(m0.tokenIds[0])!;
  post(walletB, m0.tokenIds[0], 'SELL', best(b.bids).price, String(Math.ceil(Number(best(b.bids).size))), 'FAK');
  queries();
  steps(50 + variant);
  // A FOK on the other market, a far-away resting order and its cancel, and a rejection.
  const b1 = ex.bookSummary(m1.tokenIds[1])!;
  post(walletA, m1.tokenIds[1], 'BUY', cents(best(b1.asks).price, 2), '10', 'FOK');
  const far = post(walletA, m1.tokenIds[0], 'BUY', '0.02', '50', 'GTC');
  rec('DELETE /order', ex.cancelOrders(walletA.address, [far.orderID as string]));
  rec('DELETE /order', ex.cancelOrders(walletA.address, [far.orderID as string]));
  post(walletB, m1.tokenIds[0], 'SELL', '0.99', '100000', 'GTC'); // not enough shares
  queries();
  // Trade lifecycle: MATCHED → MINED → CONFIRMED, in explicit time steps.
  for (let i = 0; i < 4; i++) {
    now += 1000;
    ex.tick(now);
    queries();
  }
  steps(100);
  rec('DELETE /cancel-all', ex.cancelAll(walletA.address));
  expect(restA.success).toBe(true);
  queries();
  ex.close();
  const kinds = new Set(log.filter((l) => l.startsWith('market ')).map((l) => (JSON.parse(l.slice(7)) as { event_type: string }).event_type));
  return { hash: sha256(log.join('\n')), lines: log.length, kinds: [...kinds].sort() };
}

describe('event log of the exchange (injected clock, explicit steps)', () => {
  it('is identical for the same seed and order flow, and differs for another seed or flow', () => {
    const a = exchangeRun(42);
    const b = exchangeRun(42);
    expect(a.lines).toBeGreaterThan(200);
    // Every kind of market event is in the log, round openings and resolutions included.
    expect(a.kinds).toEqual(expect.arrayContaining(['book', 'last_trade_price', 'market_resolved', 'new_market', 'price_change']));
    expect(b).toEqual(a);
    expect(exchangeRun(43).hash).not.toBe(a.hash);
    expect(exchangeRun(42, 1).hash).not.toBe(a.hash);
  });
});

// ------------------------------------------------------------------ level 2: the service

/** A fixed server secret: the API keys derived for a wallet are the same in every run. */
const SERVER_SECRET = 'ab'.repeat(32);

async function startService(seed: number): Promise<{ service: SimService; base: string; stop(): Promise<void> }> {
  const tmp = tempDataDir('pbsim-log');
  mkdirSync(join(tmp.dir, 'sim'), { recursive: true, mode: 0o700 });
  writeFileSync(join(tmp.dir, 'sim', 'api-keys.json'), JSON.stringify({ version: 1, serverSecret: SERVER_SECRET, keys: [] }), { mode: 0o600 });
  const config = loadConfig(SimConfig, {
    env: {
      POLYBOT_DATA_DIR: tmp.dir,
      POLYBOT_SIM_PORT: '0',
      POLYBOT_LOG_LEVEL: 'silent',
      POLYBOT_SIM_SEED: String(seed),
      POLYBOT_SIM_MARKETS: '4',
      POLYBOT_SIM_EVENT_RATE: '0',
      POLYBOT_SIM_TRADERS: '0',
      POLYBOT_SIM_REQUIRE_AUTH: 'true',
      POLYBOT_SIM_MINE_MS: '1000',
      POLYBOT_SIM_CONFIRM_MS: '2000',
      // Rounds roll over during the run (their clock is the frozen, explicitly advanced Date).
      POLYBOT_SIM_ROUND_SECONDS: '10',
    },
    envFile: false,
  });
  let service: SimService | undefined;
  const runner = new ServiceRunner({ name: 'sim', config, env: { POLYBOT_DATA_DIR: tmp.dir }, create: (ctx) => (service = createSimService(ctx)) });
  await runner.start();
  if (!service) throw new Error('service not created');
  const s = service;
  return {
    service: s,
    base: `http://127.0.0.1:${s.port}`,
    async stop() {
      await runner.stop();
      tmp.cleanup();
    },
  };
}

/** `waitFor` of testkit reads Date, which is frozen here: this one counts real time. */
async function until(fn: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!fn()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every frame sent before the PONG has arrived (one socket is one ordered stream). */
async function barrier(c: WsClient): Promise<void> {
  const n = c.texts.length;
  c.send('PING');
  await until(() => c.texts.length > n, 'PONG');
}

async function serviceRun(seed: number): Promise<{ hash: string; log: Record<string, unknown[]> }> {
  let clock = T0;
  vi.setSystemTime(clock);
  const sim = await startService(seed);
  const ex = sim.service.exchange;
  const rest: unknown[] = [];
  const clients: WsClient[] = [];
  try {
    const call = async (creds: ApiCreds, wallet: Wallet, method: string, path: string, body?: unknown) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string> = { ...buildL2Headers(creds, wallet.address, { method, requestPath: path, body: text ?? null }) };
      if (text !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${sim.base}${path}`, { method, headers, ...(text !== undefined ? { body: text } : {}) });
      const answer = { status: res.status, body: (await res.json()) as any };
      rest.push({ method, path, ...answer });
      return answer;
    };
    const get = async (path: string) => {
      const res = await fetch(`${sim.base}${path}`);
      const answer = { status: res.status, body: (await res.json()) as any };
      rest.push({ method: 'GET', path, ...answer });
      return answer;
    };
    let salt = 1;
    const post = (creds: ApiCreds, wallet: Wallet, tokenId: string, side: 'BUY' | 'SELL', price: string, size: string, orderType: VenueOrderType) =>
      call(creds, wallet, 'POST', '/order', { order: signed(wallet, tokenId, side, price, size, orderType, salt++, clock), owner: creds.apiKey, orderType });
    /** Maker steps and trade lifecycle, synchronously at explicit times (no await in between). */
    const advance = (ms: number, steps: number) => {
      for (let i = 0; i < steps; i++) {
        clock += ms;
        vi.setSystemTime(clock);
        ex.step();
        ex.tick(clock);
      }
    };
    const queries = async (tokens: string[]) => {
      for (const t of tokens) await get(`/book?token_id=${t}`);
      for (const [c, w] of [[credsA, walletA], [credsB, walletB]] as const) {
        await call(c, w, 'GET', '/data/orders');
        await call(c, w, 'GET', '/data/trades');
        await call(c, w, 'GET', '/balance-allowance?asset_type=COLLATERAL');
      }
    };

    const credsA = await createOrDeriveApiKey(sim.base, walletA);
    const credsB = await createOrDeriveApiKey(sim.base, walletB);
    const [m0, m1] = ex.markets as [Exchange['markets'][number], Exchange['markets'][number]];
    const tokens = [...m0.tokenIds, ...m1.tokenIds];
    const market = await WsClient.open(`${sim.base.replace('http', 'ws')}/ws/market`);
    clients.push(market);
    market.send({ assets_ids: tokens, type: 'market' });
    await until(() => market.events.filter((e) => e.event_type === 'book').length === tokens.length, 'initial books');
    const users: WsClient[] = [];
    for (const c of [credsA, credsB]) {
      const u = await WsClient.open(`${sim.base.replace('http', 'ws')}/ws/user`);
      clients.push(u);
      users.push(u);
      u.send({ auth: { apiKey: c.apiKey, secret: c.secret, passphrase: c.passphrase }, markets: [], type: 'user' });
      await barrier(u);
    }

    advance(50, 100);
    let b = (await get(`/book?token_id=${m0.tokenIds[0]}`)).body;
    await post(credsA, walletA, m0.tokenIds[0], 'BUY', best(b.bids).price, '20', 'GTC');
    await post(credsB, walletB, m0.tokenIds[0], 'BUY', cents(best(b.asks).price, 5), String(Math.ceil(Number(best(b.bids).size)) + 40), 'FAK');
    b = (await get(`/book?token_id=${m0.tokenIds[0]}`)).body;
    await post(credsB, walletB, m0.tokenIds[0], 'SELL', best(b.bids).price, String(Math.ceil(Number(best(b.bids).size))), 'FAK');
    await queries(tokens);
    advance(50, 50);
    const b1 = (await get(`/book?token_id=${m1.tokenIds[1]}`)).body;
    await post(credsA, walletA, m1.tokenIds[1], 'BUY', cents(best(b1.asks).price, 2), '10', 'FOK');
    const far = (await post(credsA, walletA, m1.tokenIds[0], 'BUY', '0.02', '50', 'GTC')).body;
    await call(credsA, walletA, 'DELETE', '/order', { orderID: far.orderID });
    await call(credsA, walletA, 'DELETE', '/order', { orderID: far.orderID });
    await post(credsB, walletB, m1.tokenIds[0], 'SELL', '0.99', '100000', 'GTC');
    await queries(tokens);
    advance(1000, 4); // MATCHED → MINED → CONFIRMED
    await queries(tokens);
    await call(credsA, walletA, 'DELETE', '/cancel-all');
    await get(`/markets/${m0.gammaId}`);
    await get('/events?limit=500');
    await get('/markets?limit=500');
    await queries(tokens);
    for (const c of clients) await barrier(c);

    const log = { market: market.events, userA: users[0]!.events, userB: users[1]!.events, rest };
    expect(rest.length).toBeGreaterThan(40);
    expect(users[0]!.events.some((e) => e.event_type === 'trade' && e.status === 'CONFIRMED')).toBe(true);
    expect(users[1]!.events.some((e) => e.event_type === 'trade' && e.trader_side === 'TAKER')).toBe(true);
    return { hash: sha256(JSON.stringify(log)), log };
  } finally {
    for (const c of clients) await c.close();
    await sim.stop();
  }
}

describe('event log of the service over the wire (frozen Date, explicit steps)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is identical for two services with the same seed and order flow; another seed differs', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const a = await serviceRun(42);
    const b = await serviceRun(42);
    // Compare the parts first: a failure then shows where the logs diverge.
    expect(b.log.rest).toEqual(a.log.rest);
    expect(b.log.market).toEqual(a.log.market);
    expect(b.log.userA).toEqual(a.log.userA);
    expect(b.log.userB).toEqual(a.log.userB);
    expect(b.hash).toBe(a.hash);
    const c = await serviceRun(43);
    expect(c.hash).not.toBe(a.hash);
  }, 120_000);
});
