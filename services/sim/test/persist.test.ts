import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PostOrderBody } from '@polybot/polymarket';
import { tempDataDir } from '@polybot/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { Exchange, type ExchangeOptions, type ExchangeSnapshot } from '../src/exchange.js';
import { PriceRecorder } from '../src/history.js';
import { autosave, openExchange, saveState, statePath } from '../src/persist.js';
import { engineOrder } from './engine-orders.js';

const T0 = 1_900_000_020_000;
const wallet = (name: string) => `0x${Buffer.from(name).toString('hex').padEnd(40, '0')}`;
const ALICE = wallet('alice');
const BOB = wallet('bob');
const CAROL = wallet('carol');
const WHO = [ALICE, BOB, CAROL];

function order(o: { who: string; tokenId: string; side: 'BUY' | 'SELL'; price: bigint; shares: bigint; type?: 'GTC' | 'GTD' | 'FOK' | 'FAK'; expiration?: string }): PostOrderBody {
  return engineOrder({ ...o, timestampMs: T0, owner: `key-${o.who.slice(2, 8)}` });
}

const M = (x: number) => BigInt(Math.round(x * 1_000_000));
const TICK = 10_000n;

function options(clock: { now: number }, extra: Partial<ExchangeOptions> = {}): ExchangeOptions {
  return {
    seed: 42,
    markets: 12,
    startBalance: 1_000_000_000n,
    now: () => clock.now,
    timers: false,
    mineMs: 1000,
    confirmMs: 3000,
    failRate: 0.5,
    negRisk: true,
    rounds: { assets: ['BTC', 'ETH'], roundSeconds: 60, ahead: 1 },
    ...extra,
  };
}

const top = (ex: Exchange, tokenId: string) => {
  const b = ex.bookSummary(tokenId)!;
  return { bid: M(Number(b.bids.at(-1)!.price)), ask: M(Number(b.asks.at(-1)!.price)) };
};

/** A fee-free generated token whose spread is at least two ticks (room for a user order inside). */
function wideToken(ex: Exchange): string {
  for (const m of ex.markets.slice(0, 12)) {
    if (m.feeSchedule) continue;
    for (const t of m.tokenIds) {
      const { bid, ask } = top(ex, t);
      if (ask - bid >= 2n * TICK) return t;
    }
  }
  throw new Error('no wide token');
}

/** Everything a client can observe, without the clock-dependent fields. */
function observe(ex: Exchange) {
  const tokens = ex.markets.flatMap((m) => m.tokenIds);
  return {
    books: tokens.map((t) => {
      const { hash: _h, timestamp: _t, ...b } = ex.bookSummary(t)!;
      return b;
    }),
    // updatedAt is wall-clock time, not state.
    gamma: ex.gammaMarkets().map((g) => ({ ...g, updatedAt: undefined })),
    accounts: WHO.map((w) => ex.account(w)),
    open: WHO.map((w) => ex.openOrders(w)),
    trades: WHO.map((w) => ex.tradesOf(w)),
    redemptions: WHO.map((w) => ex.redemptionsOf(w)),
    stats: { ...ex.stats },
    pending: ex.pendingTrades,
    btc: ex.roundStarts('BTC'),
    fairs: ex.negRiskFairs(),
  };
}

/** A busy exchange: maker activity, resting and filled user orders of three accounts, trades in every lifecycle status. */
function busy() {
  const clock = { now: T0 };
  const opts = options(clock);
  const ex = new Exchange(opts);
  for (let i = 0; i < 300; i++) ex.step();
  const tok = wideToken(ex);
  const ids: Record<string, string> = {};
  let { ask } = top(ex, tok);
  // Trade 0: BOB lifts the ask (FOK); it completes (CONFIRMED or FAILED).
  const r0 = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'BUY', price: ask, shares: M(20), type: 'FAK' }));
  expect(r0.errorMsg).toBe('');
  expect(r0.status).toBe('matched');
  clock.now += 5_000;
  ex.tick();
  // ALICE bids inside the spread (rests), BOB sells part of it to her: a user-vs-user trade, MINED later.
  const now = top(ex, tok);
  ask = now.ask;
  const inside = now.bid + TICK;
  const ra = ex.postOrder(order({ who: ALICE, tokenId: tok, side: 'BUY', price: inside, shares: M(30) }));
  expect(ra.status).toBe('live');
  ids.alice = ra.orderID!;
  const held = ex.availableBalance(BOB, tok);
  const rb = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'SELL', price: inside, shares: M(4), type: 'FAK' }));
  expect(rb.status).toBe('matched');
  clock.now += 1_500;
  ex.tick();
  // CAROL lifts an ask elsewhere: still MATCHED at the snapshot.
  const other = ex.markets[0]!.tokenIds[0];
  const rc = ex.postOrder(order({ who: CAROL, tokenId: other, side: 'BUY', price: top(ex, other).ask, shares: M(10), type: 'FAK' }));
  expect(rc.success).toBe(true);
  // BOB rests a SELL far above (shares reserved) and CAROL a GTD bid far below.
  const rs = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'SELL', price: ask + 5n * TICK, shares: held - M(4) }));
  expect(rs.status).toBe('live');
  ids.bobSell = rs.orderID!;
  const exp = String(Math.floor(clock.now / 1000) + 30);
  const rg = ex.postOrder(order({ who: CAROL, tokenId: other, side: 'BUY', price: M(0.02), shares: M(50), type: 'GTD', expiration: exp }));
  expect(rg.status).toBe('live');
  ids.carolGtd = rg.orderID!;
  for (let i = 0; i < 50; i++) ex.step();
  return { ex, clock, opts, tok, ids, bodies: { bobSell: rs } };
}

const dirs: Array<{ cleanup(): void }> = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

describe('exchange snapshots', () => {
  it('restores books, balances, orders, trades and statuses exactly', () => {
    const { ex, opts } = busy();
    const statuses = new Set(WHO.flatMap((w) => ex.tradesOf(w).map((t) => t.status)));
    expect(statuses.has('MATCHED')).toBe(true);
    expect(statuses.has('MINED')).toBe(true);
    expect([...statuses].some((s) => s === 'CONFIRMED' || s === 'FAILED')).toBe(true);
    const snap = JSON.parse(JSON.stringify(ex.toSnapshot())) as ExchangeSnapshot;
    expect(snap.v).toBe(1);
    const ex2 = Exchange.fromSnapshot(opts, snap);
    expect(observe(ex2)).toEqual(observe(ex));
    // Book hashes too: same clock, same books.
    for (const t of ex.markets.flatMap((m) => m.tokenIds)) expect(ex2.bookSummary(t)).toEqual(ex.bookSummary(t));
    expect(JSON.parse(JSON.stringify(ex2.toSnapshot()))).toEqual(snap);
  });

  it('continues deterministically: makers, fair values, trades and rounds', () => {
    const { ex, clock, opts } = busy();
    const ex2 = Exchange.fromSnapshot(opts, JSON.parse(JSON.stringify(ex.toSnapshot())) as ExchangeSnapshot);
    for (const e of [ex, ex2]) {
      for (let i = 0; i < 500; i++) e.step();
      // Past two round boundaries: rounds resolve (redemptions), open and list.
    }
    const startClock = clock.now;
    for (let s = 0; s < 130; s += 5) {
      clock.now = startClock + s * 1000;
      ex.tick();
      ex2.tick();
      for (let i = 0; i < 10; i++) {
        ex.step();
        ex2.step();
      }
    }
    expect(observe(ex2)).toEqual(observe(ex));
    expect(ex2.toSnapshot()).toEqual(ex.toSnapshot());
  });

  it('a pending trade resumes its remaining delay, a cancel releases the right reservation, duplicates stay rejected', () => {
    const { ex, clock, opts, tok, ids } = busy();
    const snap = JSON.parse(JSON.stringify(ex.toSnapshot())) as ExchangeSnapshot;
    // The restarted exchange comes up 10 minutes later.
    const clock2 = { now: clock.now + 600_000 };
    const ex2 = Exchange.fromSnapshot({ ...opts, now: () => clock2.now, rounds: opts.rounds }, snap);
    const carolTrade = () => ex2.tradesOf(CAROL).find((t) => t.side === 'BUY' && t.asset_id === ex.markets[0]!.tokenIds[0])!;
    expect(carolTrade().status).toBe('MATCHED');
    ex2.tick(clock2.now);
    expect(carolTrade().status).toBe('MATCHED'); // not completed by the downtime
    clock2.now += 1_000;
    ex2.tick(clock2.now);
    expect(carolTrade().status).toBe('MINED');
    clock2.now += 3_000;
    ex2.tick(clock2.now);
    expect(['CONFIRMED', 'FAILED']).toContain(carolTrade().status);
    expect(ex2.pendingTrades).toBe(0);
    // The GTD bid (30 s) expired during the downtime: cancelled on the first tick.
    expect(ex2.getOrder(CAROL, ids.carolGtd!)!.status).toBe('CANCELED');
    expect(ex2.account(CAROL)!.lockedCollateral).toBe('0');

    // ALICE's partly filled bid: cancelling it releases exactly price × remaining.
    const ex3 = Exchange.fromSnapshot(opts, JSON.parse(JSON.stringify(snap)) as ExchangeSnapshot);
    const before = ex3.account(ALICE)!;
    expect(Number(before.lockedCollateral)).toBeGreaterThan(0);
    const o = ex3.getOrder(ALICE, ids.alice!)!;
    const remaining = M(Number(o.original_size)) - M(Number(o.size_matched));
    expect(remaining).toBe(M(26));
    const avail = ex3.availableBalance(ALICE);
    expect(ex3.cancelOrder(ALICE, ids.alice!).canceled).toEqual([ids.alice]);
    expect(ex3.availableBalance(ALICE) - avail).toBe((M(Number(o.price)) * remaining) / 1_000_000n);
    expect(ex3.account(ALICE)!.lockedCollateral).toBe('0');
    expect(ex.cancelOrder(ALICE, ids.alice!).canceled).toEqual([ids.alice]);
    expect(ex3.account(ALICE)).toEqual(ex.account(ALICE));
    // BOB's resting SELL: cancelling releases its shares.
    const lockedShares = ex3.account(BOB)!.lockedPositions[tok];
    expect(Number(lockedShares)).toBeGreaterThan(0);
    ex3.cancelOrder(BOB, ids.bobSell!);
    expect(ex3.account(BOB)!.lockedPositions[tok]).toBeUndefined();
    expect(ex3.availableBalance(BOB, tok)).toBe(M(Number(ex3.account(BOB)!.positions[tok])));
  });

  it('keeps trades and redemptions of rounds that were resolved and forgotten', () => {
    const clock = { now: T0 };
    const opts = options(clock, { failRate: 0, negRisk: false, rounds: { assets: ['BTC'], roundSeconds: 60, ahead: 0, keepClosed: 0 } });
    const ex = new Exchange(opts);
    const start = ex.roundStarts('BTC')[0]!;
    const up = ex.markets.find((m) => m.slug.endsWith(`-${start}`))!.tokenIds[0];
    const res = ex.postOrder(order({ who: CAROL, tokenId: up, side: 'BUY', price: top(ex, up).ask, shares: M(10), type: 'FAK' }));
    expect(res.status).toBe('matched');
    clock.now += 130_000;
    ex.tick();
    expect(ex.hasToken(up)).toBe(false); // resolved and pruned
    expect(ex.redemptionsOf(CAROL)).toHaveLength(1);
    const snap = JSON.parse(JSON.stringify(ex.toSnapshot())) as ExchangeSnapshot;
    expect(snap.orphans.length).toBeGreaterThan(0);
    const ex2 = Exchange.fromSnapshot(opts, snap);
    expect(ex2.tradesOf(CAROL)).toEqual(ex.tradesOf(CAROL));
    expect(ex2.getOrder(CAROL, res.orderID!)).toEqual(ex.getOrder(CAROL, res.orderID!));
    expect(ex2.redemptionsOf(CAROL)).toEqual(ex.redemptionsOf(CAROL));
    expect(ex2.account(CAROL)).toEqual(ex.account(CAROL));
    expect(ex2.toSnapshot()).toEqual(ex.toSnapshot());
  });

  it('rejects an order id seen before the restart', () => {
    const clock = { now: T0 };
    const opts = options(clock, { rounds: false, negRisk: false, failRate: 0 });
    const ex = new Exchange(opts);
    const tok = ex.markets[1]!.tokenIds[0];
    const body = order({ who: ALICE, tokenId: tok, side: 'BUY', price: M(0.02), shares: M(10) });
    const first = ex.postOrder(body);
    expect(first.success).toBe(true);
    ex.cancelOrder(ALICE, first.orderID!);
    const ex2 = Exchange.fromSnapshot(opts, JSON.parse(JSON.stringify(ex.toSnapshot())) as ExchangeSnapshot);
    const again = ex2.postOrder(body);
    expect(again.success).toBe(false);
    expect(again.errorMsg).toMatch(/Duplicated/);
  });

  it('refuses a snapshot of another configuration', () => {
    const clock = { now: T0 };
    const ex = new Exchange(options(clock));
    const snap = ex.toSnapshot();
    expect(Exchange.snapshotMismatch(options(clock, { seed: 7 }), snap)).toMatch(/seed/);
    expect(Exchange.snapshotMismatch(options(clock, { markets: 5 }), snap)).toMatch(/markets/);
    expect(Exchange.snapshotMismatch(options(clock, { rounds: false }), snap)).toMatch(/rounds/);
    expect(Exchange.snapshotMismatch(options(clock), snap)).toBeUndefined();
    expect(() => Exchange.fromSnapshot(options(clock, { seed: 7 }), snap)).toThrow(/seed/);
  });
});

describe('state file', () => {
  const logs: Array<{ level: string; msg: string }> = [];
  const log = {
    info: (_o: object, msg: string) => logs.push({ level: 'info', msg }),
    warn: (_o: object, msg: string) => logs.push({ level: 'warn', msg }),
    error: (_o: object, msg: string) => logs.push({ level: 'error', msg }),
  };
  const tmp = () => {
    const d = tempDataDir('pbsimstate');
    dirs.push(d);
    return d.dir;
  };

  it('saves atomically with private modes and restores from it', () => {
    const dir = tmp();
    const { ex, opts } = busy();
    const { path } = saveState(ex, dir);
    expect(path).toBe(join(dir, 'sim', 'state.json'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'sim')).mode & 0o777).toBe(0o700);
    expect(existsSync(`${path}.tmp`)).toBe(false);
    const { exchange, restored } = openExchange(opts, { dataDir: dir, log });
    expect(restored).toBe(true);
    expect(observe(exchange)).toEqual(observe(ex));
  });

  it('autosave writes periodically and on stop', async () => {
    const dir = tmp();
    const clock = { now: T0 };
    const ex = new Exchange(options(clock, { rounds: false }));
    const saver = autosave(ex, { dataDir: dir, log, intervalMs: 20 });
    await new Promise((r) => setTimeout(r, 80));
    expect(existsSync(statePath(dir))).toBe(true);
    ex.postOrder(order({ who: ALICE, tokenId: ex.markets[2]!.tokenIds[0], side: 'BUY', price: M(0.02), shares: M(10) }));
    expect(saver.stop()).toBe(true);
    const saved = JSON.parse(readFileSync(statePath(dir), 'utf8')) as ExchangeSnapshot;
    expect(saved.orders).toHaveLength(1);
  });

  it('carries the state of other components as extras', () => {
    const dir = tmp();
    const clock = { now: T0 };
    const opts = options(clock, { rounds: false });
    const saver = autosave(new Exchange(opts), { dataDir: dir, intervalMs: 0, extras: () => ({ traders: { salt: 7 } }) });
    saver.stop();
    const back = openExchange(opts, { dataDir: dir });
    expect(back.restored).toBe(true);
    expect(back.extras).toEqual({ traders: { salt: 7 } });
  });

  it('a corrupt file is moved aside and the exchange starts fresh', () => {
    for (const text of ['{"v":1,"seed":42', '[1,2]', '{"v":99}', JSON.stringify({ v: 1, seed: 42, markets: 12, negRisk: true, rounds: { assets: ['BTC', 'ETH'], seconds: 60 }, states: 'x' })]) {
      const dir = tmp();
      mkdirSync(join(dir, 'sim'), { recursive: true });
      writeFileSync(statePath(dir), text);
      logs.length = 0;
      const clock = { now: T0 };
      const { exchange, restored, outcome } = openExchange(options(clock), { dataDir: dir, log });
      expect(restored).toBe(false);
      expect(outcome).toBe('corrupt');
      expect(exchange.toSnapshot().orders).toEqual([]);
      expect(existsSync(statePath(dir))).toBe(false);
      const aside = readdirSync(join(dir, 'sim')).filter((f) => f.startsWith('state.json.corrupt-'));
      expect(aside).toHaveLength(1);
      expect(readFileSync(join(dir, 'sim', aside[0]!), 'utf8')).toBe(text);
      expect(logs.some((l) => l.level === 'error' && /unreadable/.test(l.msg) && l.msg.includes(aside[0]!))).toBe(true);
    }
  });

  it('a snapshot of another seed is kept aside with a warning', () => {
    const dir = tmp();
    const clock = { now: T0 };
    saveState(new Exchange(options(clock, { rounds: false })), dir);
    logs.length = 0;
    const { restored, outcome } = openExchange(options(clock, { rounds: false, seed: 43 }), { dataDir: dir, log });
    expect(restored).toBe(false);
    expect(outcome).toBe('mismatch');
    expect(readdirSync(join(dir, 'sim')).some((f) => f.startsWith('state.json.mismatch-'))).toBe(true);
    expect(logs.some((l) => l.level === 'warn' && /seed/.test(l.msg))).toBe(true);
  });

  it('a failed save is logged, not thrown', () => {
    const dir = tmp();
    // A directory where the temporary file should go makes every write fail.
    mkdirSync(`${statePath(dir)}.tmp`, { recursive: true });
    const clock = { now: T0 };
    const saver = autosave(new Exchange(options(clock, { rounds: false })), { dataDir: dir, log, intervalMs: 0 });
    logs.length = 0;
    expect(saver.saveNow()).toBe(false);
    expect(saver.stop()).toBe(false);
    expect(logs.filter((l) => l.level === 'error')).toHaveLength(1);
    expect(existsSync(statePath(dir))).toBe(false);
  });
});

describe('price history of tokens listed after startup', () => {
  it('records rounds listed later and forgets pruned ones', () => {
    const clock = { now: T0 };
    const ex = new Exchange(options(clock, { negRisk: false, rounds: { assets: ['BTC'], roundSeconds: 60, ahead: 0, keepClosed: 0 } }));
    const rec = new PriceRecorder(ex, () => clock.now);
    const first = ex.roundStarts('BTC')[0]!;
    const upOf = (start: number) => ex.markets.find((m) => m.slug.endsWith(`-${start}`))?.tokenIds[0];
    const firstUp = upOf(first)!;
    expect(rec.has(firstUp)).toBe(true);
    clock.now += 65_000;
    ex.tick();
    const next = ex.roundStarts('BTC').find((s) => s > first)!;
    const up = upOf(next)!;
    expect(up).toBeDefined();
    expect(rec.has(up)).toBe(true);
    const nowS = Math.floor(clock.now / 1000);
    const h = rec.history(up, { startS: nowS - 600, endS: nowS, fidelityMin: 1 });
    expect(h.length).toBeGreaterThan(0);
    expect(h.at(-1)!.p).toBeGreaterThan(0);
    // Two windows later the first round is resolved and forgotten, and so is its series.
    clock.now += 60_000;
    ex.tick();
    expect(ex.hasToken(firstUp)).toBe(false);
    expect(rec.has(firstUp)).toBe(false);
    rec.close();
  });
});
