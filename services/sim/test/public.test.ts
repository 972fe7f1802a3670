import { BookSummary, parseJsonArray, type GammaMarket } from '@polybot/polymarket';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fmt, getJson, micros, orderBody, postRaw, startSim, type RunningSim } from './helpers.js';
import {
  ErrorBody,
  expectSampleTypes,
  expectSchema,
  FeeRate,
  fixture,
  LastTradePrice,
  LastTradesPrices,
  Midpoint,
  NegRisk,
  Price,
  Prices,
  PricesHistory,
  Spread,
  TickSize,
  TokenDecimals,
} from './public-schemas.js';

const NO_BOOK = { error: 'No orderbook exists for the requested token id' };
const UNKNOWN = '12345';

// Frozen books (no maker loop) so REST answers can be compared exactly; tests drive changes
// through the exchange itself.
let sim: RunningSim;
let tokens: string[];
let markets: GammaMarket[];
beforeAll(async () => {
  sim = await startSim({ POLYBOT_SIM_MARKETS: '6', POLYBOT_SIM_EVENT_RATE: '0' });
  markets = (await getJson<GammaMarket[]>(`${sim.base}/markets`)).body;
  tokens = markets.flatMap((m) => parseJsonArray(m.clobTokenIds));
});
afterAll(async () => {
  await sim?.stop();
});

const q = (path: string, tokenId: string) => `${sim.base}${path}?token_id=${tokenId}`;
const best = (b: BookSummary) => ({ bid: micros(b.bids.at(-1)!.price), ask: micros(b.asks.at(-1)!.price) });

describe('single-token price routes', () => {
  it('agree with the book: BUY = best bid, SELL = best ask, mid, spread, last trade', async () => {
    for (const t of tokens) {
      const book = (await getJson<BookSummary>(q('/book', t))).body;
      const { bid, ask } = best(book);
      const buy = await getJson<{ price: string }>(`${q('/price', t)}&side=BUY`);
      const sell = await getJson<{ price: string }>(`${q('/price', t)}&side=SELL`);
      expectSchema(Price, buy.body, '/price');
      expect(buy.body.price).toBe(fmt(bid));
      expect(sell.body.price).toBe(fmt(ask));
      const mid = (await getJson<{ mid: string }>(q('/midpoint', t))).body;
      expectSchema(Midpoint, mid, '/midpoint');
      expect(mid.mid).toBe(fmt((bid + ask) / 2n));
      const spread = (await getJson<{ spread: string }>(q('/spread', t))).body;
      expectSchema(Spread, spread, '/spread');
      expect(spread.spread).toBe(fmt(ask - bid));
      const last = (await getJson<{ price: string; side: string }>(q('/last-trade-price', t))).body;
      expectSchema(LastTradePrice, last, '/last-trade-price');
      expect(last).toEqual({ price: book.last_trade_price, side: '' });
    }
    // Lower-case side is accepted as the venue's clients send upper case only by convention.
    expect((await getJson(`${q('/price', tokens[0]!)}&side=buy`)).status).toBe(200);
  });

  it('answers tick size (a number, like the docs sample), neg risk and fee rate', async () => {
    const sample = fixture('tick_size_response.json');
    for (const t of tokens) {
      const tick = (await getJson<Record<string, unknown>>(q('/tick-size', t))).body;
      expectSchema(TickSize, tick, '/tick-size');
      expect(tick).toEqual({ minimum_tick_size: 0.01 });
      expect(expectSampleTypes(tick, [sample])).toBe(1);
      const nr = (await getJson(q('/neg-risk', t))).body;
      expectSchema(NegRisk, nr, '/neg-risk');
      expect(nr).toEqual({ neg_risk: false });
      const fee = (await getJson(q('/fee-rate', t))).body;
      expectSchema(FeeRate, fee, '/fee-rate');
      expect(fee).toEqual({ base_fee: 0 });
    }
  });

  it('reports the side of the last trade', async () => {
    const t = tokens[0]!;
    const before = (await getJson<BookSummary>(q('/book', t))).body;
    const ask = before.asks.at(-1)!.price;
    const res = sim.service.exchange.postOrder(
      orderBody({ tokenId: t, side: 'BUY', price: ask, shares: '20', orderType: 'FAK' }) as any,
      { address: '0x00000000000000000000000000000000000000aa' },
    );
    expect(res.success, res.errorMsg ?? '').toBe(true);
    const last = (await getJson<{ price: string; side: string }>(q('/last-trade-price', t))).body;
    expect(last).toEqual({ price: ask, side: 'BUY' });
  });
});

describe('batch price routes', () => {
  it('POST /books answers one book per requested token, in order', async () => {
    const body = JSON.stringify(tokens.map((token_id) => ({ token_id })).reverse());
    const res = await postRaw(`${sim.base}/books`, body);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(tokens.length);
    const order = [...tokens].reverse();
    for (const [i, b] of (res.body as BookSummary[]).entries()) {
      expectSchema(BookSummary, b, '/books item');
      expect(b.asset_id).toBe(order[i]);
      const single = (await getJson<BookSummary>(q('/book', b.asset_id))).body;
      expect({ ...b, timestamp: '', hash: '' }).toEqual({ ...single, timestamp: '', hash: '' });
    }
    // clob-client-v2 also sends `side`: accepted.
    expect((await postRaw(`${sim.base}/books`, JSON.stringify([{ token_id: tokens[0], side: 'BUY' }]))).status).toBe(200);
  });

  it('POST and GET /prices, /midpoints, /spreads, /last-trades-prices', async () => {
    const [a, b] = tokens as [string, string];
    const single = async (path: string, t: string, extra = '') => (await getJson<any>(`${q(path, t)}${extra}`)).body;

    const prices = await postRaw(`${sim.base}/prices`, JSON.stringify([{ token_id: a, side: 'BUY' }, { token_id: b, side: 'SELL' }, { token_id: a, side: 'SELL' }]));
    expect(prices.status).toBe(200);
    expectSchema(Prices, prices.body, '/prices');
    expect(prices.body).toEqual({
      [a]: { BUY: (await single('/price', a, '&side=BUY')).price, SELL: (await single('/price', a, '&side=SELL')).price },
      [b]: { SELL: (await single('/price', b, '&side=SELL')).price },
    });
    const pricesGet = await getJson<any>(`${sim.base}/prices?token_ids=${a},${b}&sides=BUY,SELL`);
    expect(pricesGet.body).toEqual({ [a]: { BUY: prices.body[a].BUY }, [b]: { SELL: prices.body[b].SELL } });
    // Without sides both are answered.
    expect(Object.keys((await getJson<any>(`${sim.base}/prices?token_ids=${a}`)).body[a]).sort()).toEqual(['BUY', 'SELL']);

    const mids = await postRaw(`${sim.base}/midpoints`, JSON.stringify([{ token_id: a }, { token_id: b }]));
    expectSchema(TokenDecimals, mids.body, '/midpoints');
    expect(mids.body).toEqual({ [a]: (await single('/midpoint', a)).mid, [b]: (await single('/midpoint', b)).mid });
    expect((await getJson(`${sim.base}/midpoints?token_ids=${a}&token_ids=${b}`)).body).toEqual(mids.body);

    const spreads = await postRaw(`${sim.base}/spreads`, JSON.stringify([{ token_id: a }, { token_id: b }]));
    expectSchema(TokenDecimals, spreads.body, '/spreads');
    expect(spreads.body).toEqual({ [a]: (await single('/spread', a)).spread, [b]: (await single('/spread', b)).spread });

    const lasts = await postRaw(`${sim.base}/last-trades-prices`, JSON.stringify([{ token_id: a }, { token_id: b }]));
    expectSchema(LastTradesPrices, lasts.body, '/last-trades-prices');
    expect(lasts.body).toEqual([
      { token_id: a, ...(await single('/last-trade-price', a)) },
      { token_id: b, ...(await single('/last-trade-price', b)) },
    ]);
  });
});

describe('prices history', () => {
  it('is seeded with the current mid and follows book changes', async () => {
    const t = tokens[2]!;
    const mid = Number((await getJson<{ mid: string }>(q('/midpoint', t))).body.mid);
    const h = await getJson<{ history: Array<{ t: number; p: number }> }>(`${sim.base}/prices-history?market=${t}&interval=1h`);
    expect(h.status).toBe(200);
    expectSchema(PricesHistory, h.body, '/prices-history');
    expect(h.body.history.length).toBeGreaterThan(0);
    expect(h.body.history.at(-1)!.p).toBe(mid);
    const nowS = Date.now() / 1000;
    for (const p of h.body.history) expect(Math.abs(p.t - nowS)).toBeLessThan(3700);
    for (const interval of ['6h', '1d', '1w', 'max']) {
      const r = await getJson<any>(`${sim.base}/prices-history?market=${t}&interval=${interval}&fidelity=1`);
      expectSchema(PricesHistory, r.body, interval);
      expect(r.body.history.length).toBeGreaterThan(0);
    }
    const range = await getJson<any>(`${sim.base}/prices-history?market=${t}&startTs=0&endTs=${Math.ceil(nowS) + 60}`);
    expect(range.body.history.at(-1).p).toBe(mid);
    // A range wholly before the recording has no points.
    expect((await getJson<any>(`${sim.base}/prices-history?market=${t}&startTs=1000&endTs=2000`)).body).toEqual({ history: [] });

    // Move the market until this token's mid changes; the newest point follows.
    const ex = sim.service.exchange;
    let now = mid;
    for (let i = 0; i < 5000 && now === mid; i++) {
      ex.step();
      now = Number((await getJson<{ mid: string }>(q('/midpoint', t))).body.mid);
    }
    expect(now).not.toBe(mid);
    const after = await getJson<any>(`${sim.base}/prices-history?market=${t}&interval=1h&fidelity=1`);
    expect(after.body.history.at(-1).p).toBe(now);
  });

  it('rejects bad parameters', async () => {
    const t = tokens[0]!;
    const bad = [
      `market=${t}`,
      `interval=1h`,
      `market=${t}&interval=2h`,
      `market=${t}&interval=1h&startTs=1`,
      `market=${t}&startTs=abc&endTs=1`,
      `market=${t}&startTs=20&endTs=10`,
      `market=${t}&interval=1h&fidelity=0`,
      `market=${t}&interval=1h&fidelity=x`,
    ];
    for (const qs of bad) {
      const r = await getJson(`${sim.base}/prices-history?${qs}`);
      expect(r.status, qs).toBe(400);
      expectSchema(ErrorBody, r.body, qs);
    }
    const unknown = await getJson(`${sim.base}/prices-history?market=${UNKNOWN}&interval=1h`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual(NO_BOOK);
  });
});

describe('bad input', () => {
  const singles = ['/book', '/price', '/midpoint', '/spread', '/last-trade-price', '/tick-size', '/neg-risk', '/fee-rate'];

  it('unknown token → 404 with the venue message, missing token → 400', async () => {
    for (const path of singles) {
      const side = path === '/price' ? '&side=BUY' : '';
      const unknown = await getJson(`${q(path, UNKNOWN)}${side}`);
      expect(unknown.status, path).toBe(404);
      expect(unknown.body, path).toEqual(NO_BOOK);
      const missing = await getJson(`${sim.base}${path}${side ? '?side=BUY' : ''}`);
      expect(missing.status, path).toBe(400);
      expectSchema(ErrorBody, missing.body, path);
    }
    for (const s of ['', 'HOLD']) {
      const r = await getJson(`${q('/price', tokens[0]!)}&side=${s}`);
      expect(r.status).toBe(400);
      expectSchema(ErrorBody, r.body);
    }
    expect((await getJson(q('/price', tokens[0]!))).status).toBe(400);
  });

  it('batch routes: 400 for malformed bodies and over 500 items, 404 for an unknown token', async () => {
    const t = tokens[0]!;
    for (const path of ['/books', '/prices', '/midpoints', '/spreads', '/last-trades-prices']) {
      for (const body of ['{"token_id":"1"}', '[]', '[{"side":"BUY"}]', `[{"token_id":"${t}","side":"HOLD"}]`, 'not json', '[1]']) {
        const r = await postRaw(`${sim.base}${path}`, body);
        expect(r.status, `${path} ${body}`).toBe(400);
        expectSchema(ErrorBody, r.body, `${path} ${body}`);
      }
      const tooMany = await postRaw(`${sim.base}${path}`, JSON.stringify(Array.from({ length: 501 }, () => ({ token_id: t }))));
      expect(tooMany.status, path).toBe(400);
      const ok500 = await postRaw(`${sim.base}${path}`, JSON.stringify(Array.from({ length: 500 }, () => ({ token_id: t }))));
      expect(ok500.status, path).toBe(200);
      const unknown = await postRaw(`${sim.base}${path}`, JSON.stringify([{ token_id: t }, { token_id: UNKNOWN }]));
      expect(unknown.status, path).toBe(404);
      expect(unknown.body, path).toEqual(NO_BOOK);
    }
    for (const path of ['/prices', '/midpoints', '/spreads', '/last-trades-prices']) {
      expect((await getJson(`${sim.base}${path}`)).status, path).toBe(400);
      expect((await getJson(`${sim.base}${path}?token_ids=${UNKNOWN}`)).status, path).toBe(404);
    }
    expect((await getJson(`${sim.base}/prices?token_ids=${t},${t}&sides=BUY,SELL,BUY`)).status).toBe(400);
  });
});
