import { createLogger, loadConfig } from '@polybot/core';
import { tempDataDir } from '@polybot/testkit';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKeyStore } from '../src/auth.js';
import { Exchange, type ExchangeEvent } from '../src/exchange.js';
import { SimConfig } from '../src/index.js';
import { MarketHub } from '../src/market-ws.js';
import { NEG_RISK_EVENT_SLUG } from '../src/markets.js';
import { buildServer } from '../src/server.js';
import { getJson, micros, orderBody } from './helpers.js';
import { expectSampleTypes, expectSchema, fixture, GammaEvent } from './public-schemas.js';

const NEGRISK_EVENT = fixture('gamma_event_negrisk_2026.json')[0];
const make = (seed = 3) => new Exchange({ seed, markets: 3, startBalance: micros('1000'), negRisk: true, timers: false });

describe('neg-risk event', () => {
  it('adds six Yes/No candidates with one negRiskMarketID, neg-risk books, fair values summing to 1', () => {
    const ex = make();
    const cands = ex.markets.filter((m) => m.negRisk);
    expect(cands).toHaveLength(6);
    expect(new Set(cands.map((m) => m.negRiskMarketID)).size).toBe(1);
    expect(new Set(cands.map((m) => m.event?.slug))).toEqual(new Set([NEG_RISK_EVENT_SLUG]));
    for (const m of cands) {
      expect(m.outcomes).toEqual(['Yes', 'No']);
      expect(m.questionId.slice(0, 64)).toBe(m.negRiskMarketID!.slice(0, 64));
      expect(ex.bookSummary(m.tokenIds[0])!.neg_risk).toBe(true);
      const g = ex.gammaMarket(m.gammaId) as Record<string, any>;
      expect(g).toMatchObject({ negRisk: true, negRiskMarketID: m.negRiskMarketID, groupItemTitle: m.groupItemTitle, acceptingOrders: true });
    }
    // The generated markets are unchanged by the event (same ids as without it).
    const plain = new Exchange({ seed: 3, markets: 3, startBalance: 0n, timers: false });
    expect(ex.markets.slice(0, 3)).toEqual(plain.markets);
    for (let i = 0; i < 3000; i++) ex.step();
    const fairs = Object.values(ex.negRiskFairs());
    expect(fairs).toHaveLength(6);
    expect(Math.abs(fairs.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(0.001);
    const mids = cands.map((m) => {
      const b = ex.bookSummary(m.tokenIds[0])!;
      return (Number(b.bids.at(-1)!.price) + Number(b.asks.at(-1)!.price)) / 2;
    });
    expect(Math.abs(mids.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(0.05);
  });
});

describe('tick_size_change', () => {
  it('moves a market to 0.001 when a best bid crosses above 0.96, and back when it returns', () => {
    const ex = new Exchange({ seed: 11, markets: 2, startBalance: micros('1000'), timers: false });
    const events: ExchangeEvent[] = [];
    ex.on((e) => events.push(e));
    const m = ex.markets[0]!;
    ex.setFair(m.gammaId, 0.975);
    const book = ex.bookSummary(m.tokenIds[0])!;
    expect(Number(book.bids.at(-1)!.price)).toBeGreaterThan(0.96);
    const ticks = events.filter((e) => e.event_type === 'tick_size_change');
    expect(ticks).toEqual(
      m.tokenIds.map((asset_id) => ({
        event_type: 'tick_size_change',
        asset_id,
        market: m.conditionId,
        old_tick_size: '0.01',
        new_tick_size: '0.001',
        timestamp: expect.stringMatching(/^\d{13}$/),
      })),
    );
    expect(book.tick_size).toBe('0.001');
    expect((ex.gammaMarket(m.gammaId) as any).orderPriceMinTickSize).toBe(0.001);
    // A fresh book follows the change for both tokens.
    const after = events.slice(events.indexOf(ticks[1]!));
    expect(after.filter((e) => e.event_type === 'book').map((e: any) => e.tick_size)).toEqual(['0.001', '0.001']);
    // The makers requoted on the fine grid.
    expect(book.bids.at(-1)!.price).toBe('0.972');
    // Orders validate against the new grid: 0.015 is fine now.
    const fine = ex.postOrder(orderBody({ tokenId: m.tokenIds[1], side: 'BUY', price: '0.015', shares: '10', orderType: 'GTC' }) as any);
    expect(fine.success).toBe(true);
    // Back near the middle: every best bid ≤ 0.95 and ask ≥ 0.05, so the market returns to 0.01.
    events.length = 0;
    ex.setFair(m.gammaId, 0.5);
    const back = events.filter((e) => e.event_type === 'tick_size_change');
    expect(back.map((e: any) => [e.old_tick_size, e.new_tick_size])).toEqual([
      ['0.001', '0.01'],
      ['0.001', '0.01'],
    ]);
    expect(ex.bookSummary(m.tokenIds[0])!.tick_size).toBe('0.01');
    const coarse = ex.postOrder(orderBody({ tokenId: m.tokenIds[1], side: 'BUY', price: '0.015', shares: '10', orderType: 'GTC' }) as any);
    expect(coarse).toMatchObject({ success: false });
    expect(coarse.errorMsg).toContain('minimum tick size');
  });
});

describe('neg-risk event over HTTP', () => {
  const tmp = tempDataDir('pbsim-negrisk');
  let app: FastifyInstance;
  let base: string;
  let ex: Exchange;
  beforeAll(async () => {
    const config = loadConfig(SimConfig, {
      env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_SIM_PORT: '0', POLYBOT_LOG_LEVEL: 'silent', POLYBOT_SIM_REQUIRE_AUTH: 'false' },
      envFile: false,
    });
    const log = createLogger('sim-test', { level: 'silent' });
    ex = make();
    app = await buildServer({ exchange: ex, hub: new MarketHub(ex, log), log, config, auth: createApiKeyStore(), dataDir: tmp.dir });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(async () => {
    await app?.close();
    tmp.cleanup();
  });

  it('serves one Gamma event with every candidate, shaped like the recorded neg-risk event', async () => {
    const r = await getJson<any>(`${base}/events/slug/${NEG_RISK_EVENT_SLUG}`);
    expect(r.status).toBe(200);
    const ev = r.body;
    expectSchema(GammaEvent, ev, 'event');
    expect(expectSampleTypes(ev, [NEGRISK_EVENT], 'event')).toBeGreaterThan(30);
    expect(ev).toMatchObject({ negRisk: true, enableNegRisk: true, title: 'Who will win the league?' });
    expect(ev.markets).toHaveLength(6);
    for (const m of ev.markets) {
      expect(expectSampleTypes(m, [NEGRISK_EVENT.markets[0]], 'market')).toBeGreaterThan(30);
      expect(m).toMatchObject({ negRisk: true, negRiskMarketID: ev.negRiskMarketID, outcomes: '["Yes", "No"]' });
      const token = JSON.parse(m.clobTokenIds)[0];
      expect((await getJson<any>(`${base}/neg-risk?token_id=${token}`)).body).toEqual({ neg_risk: true });
      expect((await getJson<any>(`${base}/book?token_id=${token}`)).body.neg_risk).toBe(true);
    }
    const sum = ev.markets.reduce((a: number, m: any) => a + Number(JSON.parse(m.outcomePrices)[0]), 0);
    expect(Math.abs(sum - 1)).toBeLessThan(0.05);
    // Generated markets keep one event each; the neg-risk event is one more.
    const all = (await getJson<any[]>(`${base}/events`)).body;
    expect(all).toHaveLength(3 + 1);
    const clob = (await getJson<any>(`${base}/markets/${ev.markets[0].conditionId}`)).body;
    expect(clob).toMatchObject({ neg_risk: true, neg_risk_market_id: ev.negRiskMarketID });
  });
});
