/**
 * Restart without loss, end to end: the service stops and starts again on the same data dir, and
 * every book, balance, order and trade a client can see is as before. Needs the persistence wired
 * into `createSimService` (src/index.ts: `openExchange` + `autosave`); until then the tests skip.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, ServiceRunner } from '@polybot/core';
import type { BookSummary, OrderResponse } from '@polybot/polymarket';
import { tempDataDir } from '@polybot/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createSimService, SimConfig, type SimService } from '../src/index.js';
import { statePath } from '../src/persist.js';
import { micros, orderBody } from './helpers.js';

interface Running {
  service: SimService;
  base: string;
  stop(): Promise<void>;
}

/** Starts the simulator in-process on port 0 on an existing data dir (kept after stop). */
async function startAt(dir: string, env: Record<string, string> = {}): Promise<Running> {
  const config = loadConfig(SimConfig, {
    env: {
      POLYBOT_DATA_DIR: dir,
      POLYBOT_SIM_PORT: '0',
      POLYBOT_LOG_LEVEL: 'silent',
      POLYBOT_SIM_REQUIRE_AUTH: 'false',
      POLYBOT_SIM_NEG_RISK: 'false',
      POLYBOT_SIM_ROUND_ASSETS: 'none',
      POLYBOT_SIM_MARKETS: '4',
      POLYBOT_SIM_EVENT_RATE: '0',
      // A frozen world: simulated traders would move the books between the two looks (their own
      // restart is covered by traders-persist.test.ts).
      POLYBOT_SIM_TRADERS: '0',
      POLYBOT_SIM_START_BALANCE: '1000',
      ...env,
    },
    envFile: false,
  });
  let service: SimService | undefined;
  const runner = new ServiceRunner({ name: 'sim', config, env: { POLYBOT_DATA_DIR: dir }, create: (ctx) => (service = createSimService(ctx)) });
  await runner.start();
  if (!service) throw new Error('service not created');
  return { service, base: `http://127.0.0.1:${service.port}`, stop: () => runner.stop() };
}

const wallet = (name: string) => `0x${Buffer.from(name).toString('hex').padEnd(40, '0')}`;
const ALICE = wallet('alice');
const BOB = wallet('bob');

async function call(base: string, method: string, path: string, who?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (who) headers.poly_address = who;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: await res.json() };
}

function body(who: string, opts: Omit<Parameters<typeof orderBody>[0], 'owner'>) {
  const b = orderBody({ ...opts, owner: `key-${who.slice(2, 8)}` });
  const o = b.order as Record<string, unknown>;
  o.maker = o.signer = who;
  return b;
}

/** What clients see: every book (without hash/timestamp), Gamma, balances, open orders, trades. */
async function view(base: string, tokens: string[]) {
  const books = [];
  for (const t of tokens) {
    const { hash: _h, timestamp: _t, ...b } = (await call(base, 'GET', `/book?token_id=${t}`)).body as BookSummary;
    books.push(b);
  }
  const per = async (who: string) => ({
    collateral: (await call(base, 'GET', '/balance-allowance?asset_type=COLLATERAL', who)).body,
    shares: await Promise.all(tokens.map(async (t) => (await call(base, 'GET', `/balance-allowance?asset_type=CONDITIONAL&token_id=${t}`, who)).body)),
    orders: (await call(base, 'GET', '/data/orders', who)).body,
    trades: (await call(base, 'GET', '/data/trades', who)).body,
  });
  const gamma = ((await call(base, 'GET', '/markets?limit=100')).body as Array<Record<string, unknown>>).map(({ updatedAt: _u, ...m }) => m);
  return { books, gamma, alice: await per(ALICE), bob: await per(BOB) };
}

const dirs: Array<{ cleanup(): void }> = [];
afterAll(() => {
  for (const d of dirs) d.cleanup();
});

describe('restart without loss (service)', () => {
  it('a restart on the same data dir keeps books, balances, orders and trades', async (ctx) => {
    const tmp = tempDataDir('pbsimrestart');
    dirs.push(tmp);
    let sim = await startAt(tmp.dir, { POLYBOT_SIM_MINE_MS: '200', POLYBOT_SIM_CONFIRM_MS: '60000' });
    const tokens = sim.service.exchange.markets.flatMap((m) => m.tokenIds);
    const tok = tokens[0]!;
    const b0 = (await call(sim.base, 'GET', `/book?token_id=${tok}`)).body as BookSummary;
    const ask = b0.asks.at(-1)!.price;
    const bid = b0.bids.at(-1)!.price;
    // BOB buys (a trade that will be MINED, not yet CONFIRMED), rests a SELL; ALICE rests a bid.
    const r1 = (await call(sim.base, 'POST', '/order', BOB, body(BOB, { tokenId: tok, side: 'BUY', price: ask, shares: '10', orderType: 'FAK' }))).body as OrderResponse;
    expect(r1.status).toBe('matched');
    const r2 = (await call(sim.base, 'POST', '/order', BOB, body(BOB, { tokenId: tok, side: 'SELL', price: '0.99', shares: '6' }))).body as OrderResponse;
    expect(r2.status).toBe('live');
    const aliceBody = body(ALICE, { tokenId: tok, side: 'BUY', price: (Number(bid) - 0.01).toFixed(2), shares: '20' });
    const r3 = (await call(sim.base, 'POST', '/order', ALICE, aliceBody)).body as OrderResponse;
    expect(r3.status).toBe('live');
    await new Promise((r) => setTimeout(r, 400));
    const before = await view(sim.base, tokens);
    expect(before.bob.trades.data[0].status).toBe('MINED');
    await sim.stop();
    if (!existsSync(statePath(tmp.dir))) {
      ctx.skip(); // persistence not wired into createSimService yet
      return;
    }

    sim = await startAt(tmp.dir, { POLYBOT_SIM_MINE_MS: '200', POLYBOT_SIM_CONFIRM_MS: '60000' });
    try {
      expect(await view(sim.base, tokens)).toEqual(before);
      // Duplicate detection survives; cancels release the reservations made before the restart.
      const dup = (await call(sim.base, 'POST', '/order', ALICE, aliceBody)).body as OrderResponse;
      expect(dup.success).toBe(false);
      expect(dup.errorMsg).toMatch(/Duplicated/);
      const c = await call(sim.base, 'DELETE', '/order', ALICE, { orderID: r3.orderID });
      expect(c.body.canceled).toEqual([r3.orderID]);
      expect((await call(sim.base, 'GET', '/balance-allowance?asset_type=COLLATERAL', ALICE)).body.balance).toBe(String(micros('1000')));
    } finally {
      await sim.stop();
    }
  });

  it('a corrupt state file is moved aside and the service starts fresh', async (ctx) => {
    const tmp = tempDataDir('pbsimcorrupt');
    dirs.push(tmp);
    let sim = await startAt(tmp.dir);
    await sim.stop();
    if (!existsSync(statePath(tmp.dir))) {
      ctx.skip(); // persistence not wired into createSimService yet
      return;
    }
    writeFileSync(statePath(tmp.dir), '{"v":1,"seed":4');
    sim = await startAt(tmp.dir);
    try {
      expect((await fetch(`${sim.base}/ok`)).status).toBe(200);
      expect(sim.service.exchange.account(ALICE)).toBeUndefined();
      expect(readdirSync(join(tmp.dir, 'sim')).some((f) => f.startsWith('state.json.corrupt-'))).toBe(true);
    } finally {
      await sim.stop();
    }
    // A different seed: fresh start, the old state kept aside.
    sim = await startAt(tmp.dir, { POLYBOT_SIM_SEED: '7' });
    await sim.stop();
    expect(readdirSync(join(tmp.dir, 'sim')).some((f) => f.startsWith('state.json.mismatch-'))).toBe(true);
  });
});
