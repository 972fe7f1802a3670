import { describe, expect, it } from 'vitest';
import { Exchange } from '../src/exchange.js';
import { getJson, startSim } from './helpers.js';

const make = (seed: number, markets = 12) => new Exchange({ seed, markets, startBalance: 10_000_000_000n });

describe('determinism', () => {
  it('builds the same markets and books from the same seed', () => {
    const [a, b, c] = [make(42), make(42), make(43)];
    expect(a.markets).toEqual(b.markets);
    expect(a.snapshot()).toEqual(b.snapshot());
    expect(c.markets[0]!.conditionId).not.toBe(a.markets[0]!.conditionId);
    // The maker sequence is part of the seed's promise too.
    for (let i = 0; i < 500; i++) {
      a.step();
      b.step();
    }
    expect(a.snapshot()).toEqual(b.snapshot());
  });

  it('serves the same Gamma markets from two services with the same seed', async () => {
    const env = { POLYBOT_SIM_SEED: '7', POLYBOT_SIM_MARKETS: '5', POLYBOT_SIM_EVENT_RATE: '0' };
    const [s1, s2] = [await startSim(env), await startSim(env)];
    try {
      const strip = (ms: Record<string, unknown>[]) => ms.map(({ updatedAt: _u, ...rest }) => rest);
      const m1 = (await getJson<Record<string, unknown>[]>(`${s1.base}/markets`)).body;
      const m2 = (await getJson<Record<string, unknown>[]>(`${s2.base}/markets`)).body;
      expect(strip(m1)).toEqual(strip(m2));
      expect(s1.service.exchange.snapshot()).toEqual(s2.service.exchange.snapshot());
    } finally {
      await s1.stop();
      await s2.stop();
    }
  });

  it('gives a threshold strategy something to trade within a minute of events', () => {
    for (const seed of [1, 42, 1234, 99999]) {
      const ex = make(seed);
      let cheap = false;
      let dear = false;
      // 1200 events = one minute at the default 20 events/s.
      for (let i = 0; i < 1200 && !(cheap && dear); i++) {
        ex.step();
        for (const m of ex.markets) {
          const b = ex.bookSummary(m.tokenIds[0])!;
          const ask = b.asks[b.asks.length - 1];
          const bid = b.bids[b.bids.length - 1];
          if (ask && Number(ask.price) < 0.35) cheap = true;
          if (bid && Number(bid.price) > 0.65) dear = true;
        }
      }
      expect({ seed, cheap, dear }).toEqual({ seed, cheap: true, dear: true });
    }
  });

  it('keeps every book two-sided and uncrossed, and makers never trade with each other', () => {
    const ex = make(5, 6);
    for (let i = 0; i < 3000; i++) {
      ex.step();
      if (i % 100 !== 0) continue;
      for (const m of ex.markets) {
        for (const t of m.tokenIds) {
          const b = ex.bookSummary(t)!;
          expect(b.bids.length).toBeGreaterThan(0);
          expect(b.asks.length).toBeGreaterThan(0);
          expect(Number(b.bids[b.bids.length - 1]!.price)).toBeLessThan(Number(b.asks[b.asks.length - 1]!.price));
        }
      }
    }
    expect(ex.stats.trades).toBe(0);
  });
});
