import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BookSummary, GammaMarket, parseJsonArray } from '@polybot/polymarket';
import Value from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, micros, startSim, type RunningSim } from './helpers.js';

// Copy of shared/polymarket/samples/gamma/market_btc_updown_5m_2026.json (a recorded venue answer).
const SAMPLE = JSON.parse(
  readFileSync(new URL('./fixtures/gamma_market_btc_updown_5m_2026.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

let sim: RunningSim;
beforeAll(async () => {
  sim = await startSim({ POLYBOT_SIM_MARKETS: '8', POLYBOT_SIM_EVENT_RATE: '50' });
});
afterAll(async () => {
  await sim?.stop();
});

describe('Gamma', () => {
  it('lists markets that validate and look like the recorded sample', async () => {
    const { status, body } = await getJson<Record<string, unknown>[]>(`${sim.base}/markets`);
    expect(status).toBe(200);
    expect(body).toHaveLength(8);
    for (const m of body) {
      expect(Value.Check(GammaMarket, m), JSON.stringify([...Value.Errors(GammaMarket, m)].slice(0, 2))).toBe(true);
      for (const [k, v] of Object.entries(m)) {
        if (k in SAMPLE) expect(typeof v, `field ${k}`).toBe(typeof SAMPLE[k]);
      }
      const g = m as GammaMarket;
      expect(g.conditionId).toMatch(/^0x[0-9a-f]{64}$/);
      expect(g.id).toMatch(/^\d+$/);
      expect(parseJsonArray(g.outcomes)).toEqual(['Yes', 'No']);
      const tokens = parseJsonArray(g.clobTokenIds);
      expect(tokens).toHaveLength(2);
      for (const t of tokens) expect(t).toMatch(/^\d{76,78}$/);
      // Same JSON-in-a-string encoding as the venue: `["a", "b"]`.
      expect(g.clobTokenIds).toMatch(/^\["\d+", "\d+"\]$/);
      expect(g.outcomePrices).toMatch(/^\["[0-9.]+", "[0-9.]+"\]$/);
      expect(g.orderPriceMinTickSize).toBe(0.01);
      expect(g.orderMinSize).toBe(5);
      expect(g.closed).toBe(false);
      expect(Number.isNaN(Date.parse(g.endDate ?? ''))).toBe(false);
    }
    const anchors = body.map((m) => (m as GammaMarket).lastTradePrice ?? 0);
    expect(Math.min(...anchors)).toBeLessThan(0.35);
    expect(Math.max(...anchors)).toBeGreaterThan(0.65);
  });

  it('filters and pages like Gamma', async () => {
    const all = (await getJson<GammaMarket[]>(`${sim.base}/markets`)).body;
    const [a, b] = all as [GammaMarket, GammaMarket];
    expect((await getJson(`${sim.base}/markets?closed=true`)).body).toEqual([]);
    expect((await getJson<GammaMarket[]>(`${sim.base}/markets?active=true&closed=false`)).body).toHaveLength(8);
    expect((await getJson<GammaMarket[]>(`${sim.base}/markets?limit=3&offset=2`)).body.map((m) => m.id)).toEqual(
      all.slice(2, 5).map((m) => m.id),
    );
    expect((await getJson<GammaMarket[]>(`${sim.base}/markets?id=${a.id}&id=${b.id}`)).body.map((m) => m.id)).toEqual([a.id, b.id]);
    expect((await getJson<GammaMarket[]>(`${sim.base}/markets?slug=${b.slug}`)).body.map((m) => m.id)).toEqual([b.id]);
    const tok = parseJsonArray(b.clobTokenIds)[1];
    expect((await getJson<GammaMarket[]>(`${sim.base}/markets?clob_token_ids=${tok}`)).body.map((m) => m.id)).toEqual([b.id]);
    expect((await getJson<GammaMarket[]>(`${sim.base}/markets?condition_ids=${a.conditionId}`)).body.map((m) => m.id)).toEqual([a.id]);
    const one = await getJson<GammaMarket>(`${sim.base}/markets/${a.id}`);
    expect(one.status).toBe(200);
    expect(one.body.conditionId).toBe(a.conditionId);
    const missing = await getJson<{ error: string }>(`${sim.base}/markets/1`);
    expect(missing.status).toBe(404);
    expect(typeof missing.body.error).toBe('string');
    expect((await getJson<{ error: string }>(`${sim.base}/markets?limit=abc`)).status).toBe(400);
  });
});

describe('CLOB public', () => {
  it('answers /ok, /time and /version', async () => {
    const ok = await fetch(`${sim.base}/ok`);
    expect(await ok.text()).toBe('OK');
    const t = await getJson<number>(`${sim.base}/time`);
    expect(typeof t.body).toBe('number');
    expect(Math.abs(t.body - Date.now() / 1000)).toBeLessThan(60);
    expect((await getJson(`${sim.base}/version`)).body).toEqual({ version: 2 });
  });

  it('serves books with the best level last and a sha1 hash', async () => {
    const markets = (await getJson<GammaMarket[]>(`${sim.base}/markets`)).body;
    for (const m of markets) {
      for (const tokenId of parseJsonArray(m.clobTokenIds)) {
        const { status, body } = await getJson<BookSummary>(`${sim.base}/book?token_id=${tokenId}`);
        expect(status).toBe(200);
        expect(Value.Check(BookSummary, body)).toBe(true);
        expect(body.asset_id).toBe(tokenId);
        expect(body.market).toBe(m.conditionId);
        expect(body.tick_size).toBe('0.01');
        expect(body.min_order_size).toBe('5');
        expect(body.neg_risk).toBe(false);
        expect(body.timestamp).toMatch(/^\d{13}$/);
        expect(body.bids.length).toBeGreaterThan(0);
        expect(body.asks.length).toBeGreaterThan(0);
        const bids = body.bids.map((l) => micros(l.price));
        const asks = body.asks.map((l) => micros(l.price));
        for (let i = 1; i < bids.length; i++) expect(bids[i]! > bids[i - 1]!).toBe(true);
        for (let i = 1; i < asks.length; i++) expect(asks[i]! < asks[i - 1]!).toBe(true);
        expect(bids[bids.length - 1]! < asks[asks.length - 1]!).toBe(true);
        for (const l of [...body.bids, ...body.asks]) expect(micros(l.size) > 0n).toBe(true);
        const hash = createHash('sha1').update(JSON.stringify({ ...body, hash: '' })).digest('hex');
        expect(body.hash).toBe(hash);
      }
    }
  });

  it('answers 404 for an unknown token and 400 without one', async () => {
    const unknown = await getJson<{ error: string }>(`${sim.base}/book?token_id=123`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: 'No orderbook exists for the requested token id' });
    const missing = await getJson<{ error: string }>(`${sim.base}/book`);
    expect(missing.status).toBe(400);
    expect(typeof missing.body.error).toBe('string');
  });
});
