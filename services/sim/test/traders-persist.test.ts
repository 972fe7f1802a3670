import { describe, expect, it } from 'vitest';
import { DataApi } from '../src/data-api.js';
import { Exchange, type ExchangeOptions, type ExchangeSnapshot } from '../src/exchange.js';
import { Traders, TradersSnapshotError, type StepResult, type TradersSnapshot } from '../src/traders.js';

const T0 = 1_900_000_000_000;

const options = (seed: number, clock: { now: number }): ExchangeOptions => ({
  seed,
  markets: 12,
  startBalance: 10_000_000_000n,
  timers: false,
  now: () => clock.now,
  negRisk: true,
  failRate: 0.2,
  mineMs: 500,
  confirmMs: 1500,
});

/** An exchange and its traders on one fake clock; `run(n)` = n rounds of 5 maker events + 1 trader decision + 250 ms. */
function pair(exchange: Exchange, traders: Traders, clock: { now: number }) {
  const run = (n: number): StepResult[] => {
    const out: StepResult[] = [];
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 5; k++) exchange.step();
      out.push(traders.step());
      clock.now += 250;
      if (i % 20 === 0) exchange.tick(clock.now);
    }
    exchange.tick(clock.now);
    return out;
  };
  const view = () => {
    const api = new DataApi(exchange, { traders, includeUnmined: true });
    return {
      traders: api.traders(),
      fills: traders.profiles.map((p) => traders.fills(p.address)),
      pnl: traders.profiles.map((p) => traders.pnl(p.address)),
      stats: { ...traders.stats },
      trades: exchange.toSnapshot().trades,
      accounts: traders.profiles.map((p) => exchange.account(p.address)),
    };
  };
  return { exchange, traders, clock, run, view };
}

const json = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

function fresh(seed: number, count?: number) {
  const clock = { now: T0 };
  const exchange = new Exchange(options(seed, clock));
  const traders = new Traders(exchange, { seed, now: () => clock.now, ...(count ? { count } : {}) });
  return pair(exchange, traders, clock);
}

/** Restores both snapshots (through JSON) onto a new clock starting at `at`. */
function restore(seed: number, ex: ExchangeSnapshot, tr: TradersSnapshot, at: number, count?: number) {
  const clock = { now: at };
  const exchange = Exchange.fromSnapshot(options(seed, clock), json(ex));
  const traders = new Traders(exchange, { seed, now: () => clock.now, restore: json(tr), ...(count ? { count } : {}) });
  return pair(exchange, traders, clock);
}

describe('simulated traders: snapshot and restore', () => {
  it('continues exactly like the original after a restore', () => {
    const a = fresh(7);
    a.run(400);
    const before = a.view();
    expect(before.stats.fills).toBeGreaterThan(0);
    const exSnap = a.exchange.toSnapshot();
    const trSnap = a.traders.toSnapshot();
    expect(json(trSnap)).toEqual(trSnap);
    expect(trSnap.v).toBe(1);

    const b = restore(7, exSnap, trSnap, a.clock.now);
    // Nothing changed by the restore itself: same wallets, fills, baselines (PnL) and stats, no top-up.
    expect(b.traders.profiles).toEqual(a.traders.profiles);
    expect(b.view()).toEqual(before);
    expect(b.traders.toSnapshot()).toEqual(trSnap);

    const ra = a.run(400);
    const rb = b.run(400);
    expect(rb).toEqual(ra);
    expect(ra.some((r) => r.action === 'buy' || r.action === 'sell')).toBe(true);
    const after = a.view();
    expect(after.stats.fills).toBeGreaterThan(before.stats.fills);
    expect(b.view()).toEqual(after);
    expect(b.traders.toSnapshot()).toEqual(a.traders.toSnapshot());
    a.traders.close();
    b.traders.close();
  });

  it('measures PnL from creation, not from the restart', () => {
    const a = fresh(11);
    a.run(300);
    const pnl = a.traders.profiles.map((p) => a.traders.pnl(p.address));
    expect(pnl.some((x) => x !== 0n)).toBe(true);
    const b = restore(11, a.exchange.toSnapshot(), a.traders.toSnapshot(), a.clock.now);
    expect(b.traders.profiles.map((p) => b.traders.pnl(p.address))).toEqual(pnl);
  });

  it('refuses a snapshot of another seed, count or version with a typed error, leaving the exchange untouched', () => {
    const a = fresh(5, 6);
    a.run(50);
    const trSnap = a.traders.toSnapshot();
    const exSnap = a.exchange.toSnapshot();

    const clock = { now: a.clock.now };
    const ex = Exchange.fromSnapshot(options(5, clock), json(exSnap));
    const accounts = ex.toSnapshot().accounts;
    const attempt = (restoreSnap: unknown, seed = 5, count = 6) => {
      try {
        new Traders(ex, { seed, count, restore: restoreSnap as TradersSnapshot });
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const otherSeed = attempt(trSnap, 6);
    expect(otherSeed).toBeInstanceOf(TradersSnapshotError);
    expect((otherSeed as TradersSnapshotError).kind).toBe('mismatch');
    expect((otherSeed as Error).message).toMatch(/seed 5, configured 6/);
    expect((attempt(trSnap, 5, 7) as Error).message).toMatch(/6 wallets, configured 7/);
    expect((attempt({ ...trSnap, v: 2 }) as Error).message).toMatch(/format v2, expected v1/);
    const malformed = attempt({ ...trSnap, rng: [1, 2, 3] });
    expect((malformed as TradersSnapshotError).kind).toBe('malformed');
    expect((attempt({ ...trSnap, wallets: trSnap.wallets.map((w) => ({ ...w, baseline: 12 })) }) as Error).message).toMatch(/baseline/);
    expect(ex.toSnapshot().accounts).toEqual(accounts);

    expect(Traders.snapshotMismatch({ seed: 5, count: 6 }, trSnap)).toBeUndefined();
    expect(Traders.snapshotMismatch({ seed: 5 }, trSnap)).toMatch(/6 wallets, configured 20/);
    expect(Traders.snapshotMismatch({ seed: 5, count: 6 }, 'x')).toMatch(/not a JSON object/);
  });

  it('open(): restores a usable snapshot, else starts fresh and says why', () => {
    const a = fresh(3, 4);
    a.run(100);
    const trSnap = json(a.traders.toSnapshot());
    const exSnap = a.exchange.toSnapshot();
    const mk = () => Exchange.fromSnapshot(options(3, { now: a.clock.now }), json(exSnap));

    const ok = Traders.open(mk(), { seed: 3, count: 4 }, trSnap);
    expect(ok.restored).toBe(true);
    expect(ok.reason).toBeUndefined();
    expect(ok.traders.stats).toEqual(a.traders.stats);

    const none = Traders.open(mk(), { seed: 3, count: 4, bankroll: 0n }, undefined);
    expect(none).toMatchObject({ restored: false });
    expect(none.reason).toBeUndefined();
    expect(none.traders.stats.steps).toBe(0);

    const ex = mk();
    const accounts = ex.toSnapshot().accounts;
    const other = Traders.open(ex, { seed: 3, count: 5, bankroll: 0n }, trSnap);
    expect(other.restored).toBe(false);
    expect(other.reason).toMatch(/4 wallets, configured 5/);
    // bankroll 0: existing wallets were not topped up (only the new fifth wallet's account was created).
    const after = ex.toSnapshot().accounts;
    for (const acct of accounts) expect(after).toContainEqual(acct);
  });
});
