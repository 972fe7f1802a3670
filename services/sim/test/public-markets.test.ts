import { parseJsonArray, type GammaMarket } from '@polybot/polymarket';
import { ClobClient } from '@polymarket/clob-client-v2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startSim, type RunningSim } from './helpers.js';
import {
  ClobMarket,
  ClobMarketInfo,
  CursorPage,
  ErrorBody,
  expectSampleTypes,
  expectSchema,
  fixture,
  MarketByToken,
  SimplifiedMarket,
} from './public-schemas.js';

// 250 markets: the CLOB listings (100 a page) span three pages.
const N = 250;
let sim: RunningSim;
let gamma: GammaMarket[];
beforeAll(async () => {
  sim = await startSim({ POLYBOT_SIM_MARKETS: String(N), POLYBOT_SIM_EVENT_RATE: '0' });
  gamma = [];
  for (let offset = 0; offset < N; offset += 100) {
    gamma.push(...(await getJson<GammaMarket[]>(`${sim.base}/markets?limit=100&offset=${offset}`)).body);
  }
});
afterAll(async () => {
  await sim?.stop();
});

type Paged = { limit: number; count: number; next_cursor: string; data: any[] };

/** Follows `next_cursor` from the start to "LTE=", checking every page. */
async function walk(path: string, item: Parameters<typeof CursorPage>[0], extra = ''): Promise<{ items: any[]; pages: number }> {
  const items: any[] = [];
  let cursor = 'MA==';
  let pages = 0;
  while (cursor !== 'LTE=') {
    const sep = path.includes('?') ? '&' : '?';
    const { status, body } = await getJson<Paged>(`${sim.base}${path}${sep}next_cursor=${encodeURIComponent(cursor)}${extra}`);
    expect(status, `${path} ${cursor}`).toBe(200);
    expectSchema(CursorPage(item), body, `${path} page ${pages}`);
    expect(body.count).toBe(body.data.length);
    expect(body.data.length).toBeLessThanOrEqual(body.limit);
    items.push(...body.data);
    cursor = body.next_cursor;
    if (++pages > 100) throw new Error('cursor does not end');
  }
  return { items, pages };
}

describe('CLOB market listings', () => {
  it('GET /markets?next_cursor= walks every market exactly once, like the recorded page', async () => {
    const { items, pages } = await walk('/markets', ClobMarket);
    expect(pages).toBe(3);
    expect(items.map((m) => m.condition_id)).toEqual(gamma.map((g) => g.conditionId));
    const samples = [
      fixture('clob_market_recorded_2024.json'),
      fixture('clob_market_closed_accepting_true_2026.json'),
      fixture('clob_market_closed_accepting_false_2026.json'),
    ];
    for (const [i, m] of items.entries()) {
      expect(expectSampleTypes(m, samples, 'clob market')).toBe(Object.keys(samples[0]).length);
      expectSampleTypes(m.tokens[0], samples.map((s) => s.tokens[0]), 'token');
      expectSampleTypes(m.rewards, samples.map((s) => s.rewards), 'rewards');
      const g = gamma[i]!;
      expect(m.market_slug).toBe(g.slug);
      expect(m.question).toBe(g.question);
      expect(m.tokens.map((t: any) => t.token_id)).toEqual(parseJsonArray(g.clobTokenIds));
      expect(m.tokens.map((t: any) => t.outcome)).toEqual(['Yes', 'No']);
      expect(m.tokens.map((t: any) => t.price)).toEqual(parseJsonArray(g.outcomePrices).map(Number));
      expect(m.minimum_tick_size).toBe(0.01);
      expect(m.minimum_order_size).toBe(5);
      expect(m).toMatchObject({ active: true, closed: false, accepting_orders: true, enable_order_book: true, neg_risk: false });
    }
    // Top level of samples/rest/clob_markets_page_recorded_2024.json: {data, next_cursor: "MTAw", limit: 100, count: 100}.
    const first = (await getJson<Paged>(`${sim.base}/markets?next_cursor=MA==`)).body;
    expect(first).toMatchObject({ limit: 100, count: 100, next_cursor: 'MTAw' });
    expect(expectSampleTypes(first, [{ data: [], next_cursor: 'MTAw', limit: 100, count: 100 }])).toBe(4);
  });

  it('pages with any limit, treats an empty cursor as the start, and keeps Gamma without next_cursor', async () => {
    const { items, pages } = await walk('/markets', ClobMarket, '&limit=7');
    expect(pages).toBe(Math.ceil(N / 7));
    expect(new Set(items.map((m) => m.condition_id)).size).toBe(N);
    const empty = (await getJson<Paged>(`${sim.base}/markets?next_cursor=`)).body;
    expect(empty.data[0].condition_id).toBe(gamma[0]!.conditionId);
    const end = (await getJson<Paged>(`${sim.base}/markets?next_cursor=LTE=`)).body;
    expect(end).toEqual({ limit: 100, count: 0, next_cursor: 'LTE=', data: [] });
    const past = (await getJson<Paged>(`${sim.base}/markets?next_cursor=${Buffer.from('100000').toString('base64')}`)).body;
    expect(past.next_cursor).toBe('LTE=');
    expect(Array.isArray((await getJson(`${sim.base}/markets?limit=5`)).body)).toBe(true);
    for (const c of ['abc', 'LTE', Buffer.from('-5').toString('base64'), Buffer.from('1.5').toString('base64')]) {
      const r = await getJson(`${sim.base}/markets?next_cursor=${encodeURIComponent(c)}`);
      expect(r.status, c).toBe(400);
      expectSchema(ErrorBody, r.body);
    }
    expect((await getJson(`${sim.base}/markets?next_cursor=MA==&limit=0`)).status).toBe(400);
  });

  it('simplified, sampling and sampling-simplified listings page over the same markets', async () => {
    const ids = gamma.map((g) => g.conditionId);
    const simple = await walk('/simplified-markets', SimplifiedMarket);
    expect(simple.items.map((m) => m.condition_id)).toEqual(ids);
    const sampling = await walk('/sampling-markets', ClobMarket);
    expect(sampling.items.map((m) => m.condition_id)).toEqual(ids);
    const samplingSimple = await walk('/sampling-simplified-markets', SimplifiedMarket);
    expect(samplingSimple.items.map((m) => m.condition_id)).toEqual(ids);
    const full = (await getJson<any>(`${sim.base}/markets/${ids[0]}`)).body;
    expect(simple.items[0]).toEqual({
      condition_id: full.condition_id,
      rewards: full.rewards,
      tokens: full.tokens,
      active: full.active,
      closed: full.closed,
      archived: full.archived,
      accepting_orders: full.accepting_orders,
    });
    expect((await getJson(`${sim.base}/simplified-markets?next_cursor=%%%`)).status).toBe(400);
  });
});

describe('CLOB single-market lookups', () => {
  it('GET /markets/{conditionId} is the CLOB object, /markets/{id} stays Gamma', async () => {
    const g = gamma[5]!;
    const clob = await getJson<any>(`${sim.base}/markets/${g.conditionId}`);
    expect(clob.status).toBe(200);
    expectSchema(ClobMarket, clob.body, 'clob market');
    expect(clob.body.condition_id).toBe(g.conditionId);
    expect((await getJson<any>(`${sim.base}/markets/${g.conditionId.toUpperCase().replace('0X', '0x')}`)).body.condition_id).toBe(g.conditionId);
    expect((await getJson<any>(`${sim.base}/markets/${g.id}`)).body.conditionId).toBe(g.conditionId);
    const missing = await getJson(`${sim.base}/markets/0x${'0'.repeat(64)}`);
    expect(missing.status).toBe(404);
    expectSchema(ErrorBody, missing.body);
  });

  it('GET /markets-by-token/{tokenId} and /clob-markets/{conditionId}', async () => {
    for (const g of gamma.slice(0, 8)) {
      const [yes, no] = parseJsonArray(g.clobTokenIds) as [string, string];
      for (const t of [yes, no]) {
        const r = await getJson(`${sim.base}/markets-by-token/${t}`);
        expectSchema(MarketByToken, r.body, 'markets-by-token');
        expect(r.body).toEqual({ condition_id: g.conditionId, primary_token_id: yes, secondary_token_id: no });
      }
      const info = await getJson<any>(`${sim.base}/clob-markets/${g.conditionId}`);
      expect(info.status).toBe(200);
      expectSchema(ClobMarketInfo, info.body, 'clob-markets');
      expect(info.body).toMatchObject({ c: g.conditionId, t: [{ t: yes, o: 'Yes' }, { t: no, o: 'No' }], mts: 0.01, nr: false, mos: 5, ao: true });
    }
    // Every fourth market carries the crypto taker-fee schedule.
    const feeMarket = gamma[3]!;
    expect((await getJson<any>(`${sim.base}/clob-markets/${feeMarket.conditionId}`)).body.fd).toEqual({ r: 0.25, e: 2, to: true });
    expect((await getJson<any>(`${sim.base}/clob-markets/${gamma[0]!.conditionId}`)).body.fd).toEqual({ r: 0, e: 0, to: true });
    for (const path of ['/markets-by-token/123', `/clob-markets/0x${'1'.repeat(64)}`]) {
      const r = await getJson(`${sim.base}${path}`);
      expect(r.status, path).toBe(404);
      expectSchema(ErrorBody, r.body);
    }
  });
});

describe('with the official client (clob-client-v2)', () => {
  it('reads markets, market info, tick size, neg risk, prices and history', async () => {
    const client = new ClobClient({ host: sim.base, chain: 137 } as any);
    const g = gamma[3]!;
    const [yes] = parseJsonArray(g.clobTokenIds) as [string];
    const page = await client.getMarkets();
    expect(page.data).toHaveLength(100);
    expect((await client.getMarkets(page.next_cursor)).data[0].condition_id).toBe(gamma[100]!.conditionId);
    expect((await client.getMarket(g.conditionId)).condition_id).toBe(g.conditionId);
    const info = await client.getClobMarketInfo(g.conditionId);
    expect(info.c).toBe(g.conditionId);
    expect(await client.getTickSize(yes)).toBe('0.01');
    expect(await client.getNegRisk(yes)).toBe(false);
    expect(await client.getFeeExponent(yes)).toBe(2);
    const fresh = new ClobClient({ host: sim.base, chain: 137 } as any);
    expect(await fresh.getTickSize(yes)).toBe('0.01');
    expect(await fresh.getFeeRateBps(yes)).toBe(0);
    expect(await fresh.getFeeExponent(yes)).toBe(2); // resolved through /markets-by-token
    const books = await client.getOrderBooks([{ token_id: yes, side: 'BUY' as any }]);
    expect(books[0]!.asset_id).toBe(yes);
    const mids = await client.getMidpoints([{ token_id: yes, side: 'BUY' as any }]);
    expect(Object.keys(mids)).toEqual([yes]);
    // Typed as MarketPrice[] by the client, but the venue (and the sim) answer {history: [...]}.
    const hist = (await client.getPricesHistory({ market: yes, interval: '1h' as any, fidelity: 1 })) as any;
    expect(hist.history.length).toBeGreaterThan(0);
    expect((await client.getSimplifiedMarkets()).count).toBe(100);
    expect((await client.getSamplingMarkets()).count).toBe(100);
    expect((await client.getSamplingSimplifiedMarkets()).count).toBe(100);
  });
});
