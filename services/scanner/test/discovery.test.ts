import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GammaClient, type MarketInfo } from '@polybot/polymarket';
import { startSim, type RunningSim } from '../../sim/test/helpers.js';
import { DiscoveryAdapter, type Selection } from '../src/adapters/gamma.js';
import type { RawFrame } from '../src/pipeline/types.js';

/** Discovery's selections against the simulator's Gamma: every active market, or a watch list, tags, series and filters. */
describe('Gamma discovery selection', () => {
  let sim: RunningSim;
  const quiet = { info() {}, warn() {} };
  const all: Selection = { watch: [], tags: [], series: [], minVolume: 0, minLiquidity: 0, endWithinHours: 0, maxMarkets: 1000 };

  async function discover(sel: Partial<Selection>): Promise<MarketInfo[]> {
    const frames: RawFrame[] = [];
    const d = new DiscoveryAdapter({ gamma: new GammaClient(sim.base), selection: { ...all, ...sel }, intervalMs: 3_600_000, sink: (f) => frames.push(f), log: quiet });
    await d.start();
    await d.stop();
    expect(d.lastError).toBeUndefined();
    expect(frames).toHaveLength(1);
    expect(frames[0]!.source).toBe('gamma');
    return JSON.parse(frames[0]!.data) as MarketInfo[];
  }

  beforeAll(async () => {
    sim = await startSim({ POLYBOT_SIM_ROUND_ASSETS: 'BTC,ETH', POLYBOT_SIM_NEG_RISK: 'true' });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('follows every active market by default, up to the cap', async () => {
    const listed = (await (await fetch(`${sim.base}/markets?active=true&closed=false&limit=1000`)).json()) as Array<{ conditionId: string }>;
    const got = await discover({});
    expect(got.map((m) => m.conditionId).sort()).toEqual(listed.map((m) => m.conditionId).sort());
    expect(got.every((m) => m.active && !m.closed && m.tokens.length >= 2)).toBe(true);
    expect(await discover({ maxMarkets: 3 })).toHaveLength(3);
  });

  it('follows exactly a watch list of slugs and condition ids', async () => {
    const every = await discover({});
    const [a, b, c] = every;
    const got = await discover({ watch: [a!.slug, b!.slug, c!.conditionId] });
    expect(got.map((m) => m.conditionId).sort()).toEqual([a!.conditionId, b!.conditionId, c!.conditionId].sort());
  });

  it('follows a series and a tag through their events', async () => {
    const btc = await discover({ series: ['btc-up-or-down-15m'] });
    expect(btc.length).toBeGreaterThan(0);
    expect(btc.every((m) => m.slug.startsWith('btc-updown-15m-'))).toBe(true);
    const crypto = await discover({ tags: ['crypto'] });
    expect(crypto.length).toBeGreaterThanOrEqual(btc.length);
    expect(crypto.every((m) => /-updown-/.test(m.slug))).toBe(true);
  });

  it('filters by volume, liquidity and end date', async () => {
    expect(await discover({ minVolume: 1e15 })).toEqual([]);
    expect(await discover({ minLiquidity: 1e15 })).toEqual([]);
    const soon = await discover({ endWithinHours: 1 });
    const limit = Date.now() + 3_600_000 + 60_000;
    expect(soon.length).toBeGreaterThan(0);
    expect(soon.every((m) => m.endDate !== null && Date.parse(m.endDate) <= limit)).toBe(true);
    expect(soon.length).toBeLessThan((await discover({})).length);
  });
});
