import { toMicros as micros } from '@polybot/protocol';
import { describe, expect, it } from 'vitest';
import { Exchange } from '../src/exchange.js';

const T0 = 1_900_000_000_000;
const opts = (seed: number) => ({ seed, markets: 8, startBalance: 1_000_000_000n, timers: false, now: () => T0, negRisk: true });
/** The longest maker lag (MISPRICE_LAG_MAX) plus the event that ends it. */
const M = 61;

function bestAsk(ex: Exchange, tokenId: string): bigint {
  const a = ex.bookSummary(tokenId)?.asks ?? [];
  return micros(a[a.length - 1]?.price ?? '1');
}

/** Runs `n` maker steps and records every stretch of steps during which a mispricing was visible. */
function episodes(ex: Exchange, n: number) {
  const binary = ex.markets.filter((m) => !m.negRisk);
  const group = ex.markets.filter((m) => m.negRisk);
  const open = new Map<string, number>();
  const done: Array<{ key: string; from: number; to: number }> = [];
  for (let i = 1; i <= n; i++) {
    ex.step();
    const now = new Set<string>();
    for (const m of binary) if (bestAsk(ex, m.tokenIds[0]) + bestAsk(ex, m.tokenIds[1]) < 1_000_000n) now.add(m.gammaId);
    if (group.length > 0 && group.reduce((s, m) => s + bestAsk(ex, m.tokenIds[0]), 0n) < 1_000_000n) now.add('neg-risk');
    for (const k of now) if (!open.has(k)) open.set(k, i);
    for (const [k, from] of [...open]) {
      if (now.has(k)) continue;
      done.push({ key: k, from, to: i });
      open.delete(k);
    }
  }
  return { done, open, n };
}

describe('maker mispricings that correct themselves', () => {
  it('appear with the seed (YES + NO asks below 1, and the neg-risk YES asks below 1) and each closes within M steps', () => {
    const ex = new Exchange(opts(3));
    const r = episodes(ex, 20_000);
    expect(r.done.length).toBeGreaterThan(0);
    expect(r.done.some((e) => e.key !== 'neg-risk')).toBe(true);
    expect(r.done.some((e) => e.key === 'neg-risk')).toBe(true);
    for (const e of r.done) expect(e.to - e.from).toBeLessThanOrEqual(M);
    for (const from of r.open.values()) expect(r.n - from).toBeLessThanOrEqual(M);
    // No trades: the makers never take their own mispriced quotes.
    expect(ex.stats.trades).toBe(0);
  });

  it('are deterministic from the seed and survive a snapshot mid-lag', () => {
    const a = episodes(new Exchange(opts(5)), 6_000);
    const b = episodes(new Exchange(opts(5)), 6_000);
    expect(b.done).toEqual(a.done);
    expect(a.done.length).toBeGreaterThan(0);
    // Snapshot while a lag is under way: the restored exchange continues identically.
    const x = new Exchange(opts(5));
    let lagging = false;
    for (let i = 0; i < 20_000 && !lagging; i++) {
      x.step();
      lagging = x.markets.some((m) => x.mispricingLag(m.gammaId) !== undefined);
    }
    expect(lagging).toBe(true);
    const snap = JSON.parse(JSON.stringify(x.toSnapshot()));
    expect(snap.lags.length).toBeGreaterThan(0);
    const y = Exchange.fromSnapshot(opts(5), snap);
    for (let i = 0; i < 200; i++) {
      x.step();
      y.step();
    }
    expect(y.toSnapshot()).toEqual(x.toSnapshot());
  });
});
