import type { PostOrderBody } from '@polybot/polymarket';
import { toMicros as micros } from '@polybot/protocol';
import { describe, expect, it } from 'vitest';
import { Exchange } from '../src/exchange.js';
import { traderAddress, Traders } from '../src/traders.js';
import { engineOrder } from './engine-orders.js';

const T0 = 1_900_000_000_000;

/** An exchange and its traders on one fake clock; `run(n)` = n rounds of 5 maker events + 1 trader decision + 250 ms. */
function world(seed: number, opts: { negRisk?: boolean; count?: number } = {}) {
  const clock = { now: T0 };
  const exchange = new Exchange({
    seed,
    markets: 12,
    startBalance: 10_000_000_000n,
    timers: false,
    now: () => clock.now,
    negRisk: opts.negRisk ?? true,
  });
  const traders = new Traders(exchange, { seed, now: () => clock.now, ...(opts.count ? { count: opts.count } : {}) });
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 5; k++) exchange.step();
      traders.step();
      clock.now += 250;
      if (i % 20 === 0) exchange.tick(clock.now);
    }
    exchange.tick(clock.now);
  };
  return { clock, exchange, traders, run };
}

function order(who: string, tokenId: string, side: 'BUY' | 'SELL', price: bigint, shares: bigint, type: 'GTC' | 'FAK' | 'FOK'): PostOrderBody {
  return engineOrder({ who, tokenId, side, price, shares, type, timestampMs: T0 });
}

describe('simulated traders', () => {
  it('creates deterministic, funded wallets with a spread of skills and one arbitrageur', () => {
    const { exchange, traders } = world(42);
    const ps = traders.profiles;
    expect(ps).toHaveLength(20);
    expect(new Set(ps.map((p) => p.address)).size).toBe(20);
    ps.forEach((p, i) => {
      expect(p.address).toBe(traderAddress(42, i));
      expect(p.address).toMatch(/^0x[0-9a-f]{40}$/);
      expect(p.skill).toBeGreaterThanOrEqual(0);
      expect(p.skill).toBeLessThanOrEqual(1);
      // ensureAccount gave the start balance (10 000), above the 1000 bankroll: nothing to top up.
      expect(exchange.account(p.address)?.collateral).toBe('10000');
    });
    expect(ps[0]?.style).toBe('arbitrageur');
    expect(ps.filter((p) => p.style === 'informed').length).toBeGreaterThanOrEqual(3);
    expect(ps.filter((p) => p.style === 'noise').length).toBeGreaterThanOrEqual(3);
    expect(world(42).traders.profiles).toEqual(ps);
    expect(world(43).traders.profiles[1]?.address).not.toBe(ps[1]?.address);
    // A small start balance is topped up to the bankroll.
    const small = new Exchange({ seed: 1, markets: 2, startBalance: 0n, timers: false, now: () => T0 });
    const t2 = new Traders(small, { seed: 1, count: 3, bankroll: 250_000_000n });
    for (const p of t2.profiles) expect(small.account(p.address)?.collateral).toBe('250');
  });

  it('trades small, on the tick, never short; skilled wallets out-earn unskilled ones', () => {
    const { exchange, traders, run } = world(42);
    run(3000);
    expect(traders.stats.errors).toBe(0);
    expect(traders.stats.fills).toBeGreaterThan(1000);
    for (const p of traders.profiles) {
      const acct = exchange.account(p.address);
      for (const v of Object.values(acct?.positions ?? {})) expect(micros(v)).toBeGreaterThanOrEqual(0n);
      expect(micros(acct?.collateral ?? '0')).toBeGreaterThan(0n);
      for (const f of traders.fills(p.address)) {
        expect(micros(f.size)).toBeGreaterThan(0n);
        // 5–50 shares; the arbitrageur takes up to 100 per mispricing (the makers' lags create them).
        expect(micros(f.size)).toBeLessThanOrEqual(p.style === 'arbitrageur' ? 100_000_000n : 50_000_000n);
        expect(micros(f.price) % 1000n).toBe(0n); // on the tick (0.01, or 0.001 near the edges)
      }
    }
    const avg = (skillOk: (s: number) => boolean) => {
      const xs = traders.profiles.filter((p) => p.style !== 'arbitrageur' && skillOk(p.skill));
      return xs.reduce((s, p) => s + Number(traders.pnl(p.address)), 0) / xs.length;
    };
    const skilled = avg((s) => s >= 0.7);
    const unskilled = avg((s) => s <= 0.3);
    expect(skilled).toBeGreaterThan(unskilled);
    expect(skilled).toBeGreaterThan(0);
    expect(unskilled).toBeLessThan(0);
    // Unskilled wallets trade much more (noise makes them see edges everywhere).
    const fills = (skillOk: (s: number) => boolean) =>
      traders.profiles.filter((p) => p.style !== 'arbitrageur' && skillOk(p.skill)).reduce((s, p) => s + traders.fills(p.address).length, 0);
    expect(fills((s) => s <= 0.3)).toBeGreaterThan(fills((s) => s >= 0.7));
  });

  it('same seed → same trades', () => {
    const a = world(7);
    const b = world(7);
    a.run(600);
    b.run(600);
    const fa = a.traders.profiles.flatMap((p) => a.traders.fills(p.address));
    const fb = b.traders.profiles.flatMap((p) => b.traders.fills(p.address));
    expect(fa.length).toBeGreaterThan(100);
    expect(fb).toEqual(fa);
    const c = world(8);
    c.run(600);
    expect(c.traders.profiles.flatMap((p) => c.traders.fills(p.address)).map((f) => f.tradeId)).not.toEqual(fa.map((f) => f.tradeId));
  });

  it('the makers mispricings (a lagging side after a news jump) are what the arbitrageur sees', () => {
    // Before the mispricing lags the makers never quoted YES + NO asks below 1 and this asserted an
    // idle arbitrageur; now their seeded lags open short-lived mispricings (see MISPRICE_CHANCE).
    const { traders, run } = world(99);
    run(1500);
    expect(traders.stats.mispricings).toBeGreaterThan(0);
  });

  it('the arbitrageur buys YES + NO when a resting order makes their asks sum below 1', () => {
    const { exchange, traders } = world(5, { negRisk: false, count: 2 });
    const arb = traders.profiles[0]?.address as string;
    const seller = `0x${'5e'.repeat(20)}`;
    const m = exchange.markets[0];
    if (!m) throw new Error('no market');
    const [yes, no] = m.tokenIds;
    const ask = (t: string) => {
      const b = exchange.bookSummary(t);
      return micros(b?.asks[b.asks.length - 1]?.price ?? '1');
    };
    // With these makers 1 − (YES ask) is exactly the NO best bid, so a cheap NO ask only rests once
    // the NO bids at or above it are sold into: the seller buys NO, then sells through the top two
    // bid levels and leaves 30 shares resting one tick below the old best bid.
    expect(exchange.postOrder(order(seller, no, 'BUY', 990_000n, 3000_000_000n, 'FAK')).success).toBe(true);
    const bids = exchange.bookSummary(no)?.bids ?? [];
    const bestBid = micros(bids[bids.length - 1]?.price ?? '0');
    expect(bestBid).toBe(1_000_000n - ask(yes));
    const cheap = bestBid - 10_000n;
    const through = bids.filter((l) => micros(l.price) >= cheap).reduce((s, l) => s + micros(l.size), 0n);
    expect(exchange.availableBalance(seller, no)).toBeGreaterThan(through + 30_000_000n);
    const rest = exchange.postOrder(order(seller, no, 'SELL', cheap, through + 30_000_000n, 'GTC'));
    expect(rest.status).toBe('matched'); // partly: the 30 left rest
    expect(exchange.openOrders(seller)).toHaveLength(1);
    expect(ask(yes) + ask(no)).toBe(990_000n);
    const yesAsk = ask(yes);
    const r = traders.step();
    expect(r.arbitrages).toBe(1);
    expect(traders.stats.mispricings).toBe(1);
    const fills = traders.fills(arb);
    expect(fills.map((f) => [f.tokenId, f.side])).toEqual([
      [yes, 'BUY'],
      [no, 'BUY'],
    ]);
    expect(fills[0]?.size).toBe(fills[1]?.size);
    expect(micros(fills[0]?.price ?? '0') + micros(fills[1]?.price ?? '0')).toBe(yesAsk + cheap);
    // The mispricing is gone once taken (the cheap order was consumed or the sum is back above 1).
    expect(ask(yes) + ask(no)).toBeGreaterThanOrEqual(1_000_000n);
    // A complete set pays exactly 1 at resolution, whoever wins: 30 sets bought at 0.99 earn 0.30.
    exchange.resolve(m.gammaId, 1);
    expect(traders.pnl(arb)).toBe(300_000n);
  });

  it('runs live at the configured rate and stops', async () => {
    const exchange = new Exchange({ seed: 3, markets: 4, startBalance: 10_000_000_000n });
    const traders = new Traders(exchange, { seed: 3, rate: 100, now: Date.now });
    traders.start();
    traders.start(); // idempotent
    await new Promise((r) => setTimeout(r, 450));
    traders.stop();
    const steps = traders.stats.steps;
    expect(steps).toBeGreaterThan(10);
    await new Promise((r) => setTimeout(r, 250));
    expect(traders.stats.steps).toBe(steps);
    traders.close();
    exchange.close();
  });
});
