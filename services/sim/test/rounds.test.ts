import { loadConfig, createLogger } from '@polybot/core';
import { tempDataDir } from '@polybot/testkit';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKeyStore } from '../src/auth.js';
import { ERR_NOT_READY, Exchange, ORDER_STATUS, type ExchangeEvent, type WsMarketResolved, type WsNewMarket } from '../src/exchange.js';
import { SimConfig } from '../src/index.js';
import { MarketHub } from '../src/market-ws.js';
import { roundSlug, roundTitle, upFair } from '../src/rounds.js';
import { REF_ASSETS } from '../src/rtds.js';
import { buildServer } from '../src/server.js';
import { getJson, micros, orderBody } from './helpers.js';

// 2026-03-23T15:16:40Z: inside the 15:15 window of the third-party fixture btc-updown-15m-1774278900.
const START = 1774278900;
const T0 = (START + 100) * 1000;
const WALLET = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';

function make(now: { t: number }, roundSeconds = 900, seed = 1) {
  return new Exchange({ seed, markets: 2, startBalance: micros('1000'), now: () => now.t, timers: false, rounds: { roundSeconds } });
}
const gammaBySlug = (ex: Exchange, slug: string) => ex.gammaMarkets().find((g) => g.slug === slug) as Record<string, any>;

describe('crypto up/down rounds', () => {
  it('lists the current and the next two windows per asset, named by the slug rule', () => {
    const now = { t: T0 };
    const ex = make(now);
    for (const a of ['BTC', 'ETH', 'SOL', 'XRP']) expect(ex.roundStarts(a)).toEqual([START, START + 900, START + 1800]);
    const cur = gammaBySlug(ex, `btc-updown-15m-${START}`);
    expect(cur).toMatchObject({
      question: 'Bitcoin Up or Down - March 23, 11:15AM-11:30AM ET',
      outcomes: '["Up", "Down"]',
      eventStartTime: '2026-03-23T15:15:00Z',
      endDate: '2026-03-23T15:30:00Z',
      resolutionSource: 'https://data.chain.link/streams/btc-usd',
      active: true,
      closed: false,
      acceptingOrders: true,
      negRisk: false,
      feesEnabled: true,
      feeType: 'crypto_fees',
      feeSchedule: { rate: 0.25, exponent: 2, takerOnly: true, rebateRate: 0 },
      orderPriceMinTickSize: 0.01,
    });
    expect(cur.outcomePrices).toBe('["0.5", "0.5"]');
    const next = gammaBySlug(ex, `eth-updown-15m-${START + 900}`);
    expect(next).toMatchObject({ acceptingOrders: false, closed: false, eventStartTime: '2026-03-23T15:30:00Z' });
    expect(ex.bookSummary(JSON.parse(next.clobTokenIds)[0])!.bids).toEqual([]);
    // The current round is quoted around 0.5 by the makers.
    const book = ex.bookSummary(JSON.parse(cur.clobTokenIds)[0])!;
    expect(Number(book.bids.at(-1)!.price)).toBeLessThan(0.5);
    expect(Number(book.asks.at(-1)!.price)).toBeGreaterThan(0.5);
    // Not yet open: the venue's refusal.
    const res = ex.postOrder(orderBody({ tokenId: JSON.parse(next.clobTokenIds)[0], side: 'BUY', price: '0.5', shares: '10' }) as any);
    expect(res).toMatchObject({ success: false, errorMsg: ERR_NOT_READY });
    expect(roundSlug(REF_ASSETS[0]!, 300, 1773307200)).toBe('btc-updown-5m-1773307200');
    expect(roundTitle(REF_ASSETS[0]!, 1773307200, 300)).toBe('Bitcoin Up or Down - March 12, 5:20AM-5:25AM ET');
  });

  it('resolves at the end from the reference price, opens the next window and lists a new one', () => {
    const now = { t: T0 };
    const ex = make(now);
    const startPrices = new Map(REF_ASSETS.map((a) => [a.chainlink, ex.prices.current(a).chainlink]));
    const endPrices = new Map<string, number>();
    ex.onPrice((p) => {
      if (p.second === START + 900) endPrices.set(p.asset.chainlink, p.chainlink);
    });
    const events: ExchangeEvent[] = [];
    ex.on((e) => events.push(e));
    now.t = (START + 900) * 1000 + 400;
    ex.tick(now.t);
    const resolved = events.filter((e): e is WsMarketResolved => e.event_type === 'market_resolved');
    const listed = events.filter((e): e is WsNewMarket => e.event_type === 'new_market');
    expect(resolved.map((e) => e.slug).sort()).toEqual(['btc', 'eth', 'sol', 'xrp'].map((a) => `${a}-updown-15m-${START}`));
    expect(listed.map((e) => e.slug).sort()).toEqual(['btc', 'eth', 'sol', 'xrp'].map((a) => `${a}-updown-15m-${START + 2700}`));
    for (const a of REF_ASSETS) {
      const ev = resolved.find((e) => e.slug.startsWith(a.slug))!;
      const up = endPrices.get(a.chainlink)! >= startPrices.get(a.chainlink)!;
      expect(ev.winning_outcome).toBe(up ? 'Up' : 'Down');
      expect(ev.winning_asset_id).toBe(ev.assets_ids[up ? 0 : 1]);
      expect(ev).toMatchObject({ outcomes: ['Up', 'Down'], event_message: { slug: ev.slug, ticker: ev.slug }, timestamp: String(now.t) });
      const g = gammaBySlug(ex, ev.slug);
      expect(g).toMatchObject({ closed: true, active: true, acceptingOrders: false, umaResolutionStatus: 'resolved' });
      expect(g.outcomePrices).toBe(up ? '["1", "0"]' : '["0", "1"]');
      expect(ex.bookSummary(ev.assets_ids[0]!)!.bids).toEqual([]);
      expect(ex.bookSummary(ev.assets_ids[0]!)!.asks).toEqual([]);
    }
    const nm = listed[0]!;
    expect(nm).toMatchObject({ event_type: 'new_market', active: true, order_price_min_tick_size: '0.01', fees_enabled: true, outcomes: ['Up', 'Down'] });
    expect(nm.clob_token_ids).toEqual(nm.assets_ids);
    expect(gammaBySlug(ex, `btc-updown-15m-${START + 900}`)).toMatchObject({ acceptingOrders: true, closed: false });
    for (const a of ['BTC', 'ETH']) expect(ex.roundStarts(a)).toEqual([START, START + 900, START + 1800, START + 2700]);
    // Idempotent for the same time.
    const n = events.length;
    ex.tick(now.t);
    expect(events.filter((e) => e.event_type === 'market_resolved' || e.event_type === 'new_market').length).toBe(resolved.length + listed.length);
    expect(events.length).toBeGreaterThanOrEqual(n);
  });

  it('redeems the winning token at 1 and the losing at 0, exactly, and cancels resting orders', () => {
    const now = { t: T0 };
    const ex = make(now, 60);
    const start = Math.floor(T0 / 60_000) * 60;
    const g = gammaBySlug(ex, `btc-updown-1m-${start}`);
    const [up, down] = JSON.parse(g.clobTokenIds) as [string, string];
    const buy = (tokenId: string, price: string, shares: string, orderType: 'GTC' | 'FOK' = 'FOK') =>
      ex.postOrder(orderBody({ tokenId, side: 'BUY', price, shares, orderType }) as any);
    expect(buy(up, '0.99', '12.5').success).toBe(true);
    expect(buy(down, '0.99', '7.25').success).toBe(true);
    const resting = buy(down, '0.02', '10', 'GTC');
    expect(resting).toMatchObject({ success: true, status: 'live' });
    const sell = ex.postOrder(orderBody({ tokenId: up, side: 'SELL', price: '0.98', shares: '5' }) as any);
    expect(sell).toMatchObject({ success: true, status: 'live' });
    const before = ex.account(WALLET)!;
    expect(before.positions).toMatchObject({ [up]: '12.5', [down]: '7.25' });
    expect(before.lockedCollateral).toBe('0.2');
    const userEvents: any[] = [];
    ex.onUser((e) => userEvents.push(e.event));
    now.t = (start + 60) * 1000;
    ex.tick(now.t);
    const resolved = gammaBySlug(ex, `btc-updown-1m-${start}`);
    const upWon = resolved.outcomePrices === '["1", "0"]';
    const after = ex.account(WALLET)!;
    const expected = micros(before.collateral) + (upWon ? micros('12.5') : micros('7.25'));
    expect(micros(after.collateral)).toBe(expected);
    expect(after.lockedCollateral).toBe('0');
    expect(after.positions[up]).toBeUndefined();
    expect(after.positions[down]).toBeUndefined();
    expect(after.lockedPositions).toEqual({});
    for (const id of [resting.orderID!, sell.orderID!]) expect(ex.getOrder(WALLET, id)!.status).toBe(ORDER_STATUS.CANCELED_MARKET_RESOLVED);
    const cancels = userEvents.filter((e) => e.event_type === 'order' && e.type === 'CANCELLATION');
    expect(cancels.map((e) => e.status)).toEqual(['CANCELED_MARKET_RESOLVED', 'CANCELED_MARKET_RESOLVED']);
    expect(ex.redemptionsOf(WALLET).map((r) => [r.outcome, r.shares, r.payout])).toEqual([
      ['Up', '12.5', upWon ? '12.5' : '0'],
      ['Down', '7.25', upWon ? '0' : '7.25'],
    ]);
    // Closed markets refuse orders.
    expect(buy(up, '0.5', '10', 'GTC').success).toBe(false);
  });

  it('drifts the round books with the reference price and stays deterministic', () => {
    const run = () => {
      const now = { t: T0 };
      const ex = make(now, 60, 9);
      for (let i = 0; i < 600; i++) {
        now.t += 500;
        ex.tick(now.t);
        ex.step();
      }
      return ex;
    };
    const [a, b] = [run(), run()];
    expect(a.snapshot()).toEqual(b.snapshot());
    expect(a.markets).toEqual(b.markets);
    expect(a.gammaMarkets().map((g) => [g.slug, g.outcomePrices, g.closed])).toEqual(b.gammaMarkets().map((g) => [g.slug, g.outcomePrices, g.closed]));
    // From START+100 s to START+400 s five boundaries passed (START+120 … START+360).
    expect(a.gammaMarkets().filter((g) => g.closed).length).toBe(5 * 4);
    const open = a.gammaMarkets().filter((g) => g.acceptingOrders && (g as any).eventStartTime);
    expect(open).toHaveLength(4);
    expect(open.some((g) => g.outcomePrices !== '["0.5", "0.5"]')).toBe(true);
    expect(upFair(101, 100, 1e-4, 60)).toBeGreaterThan(900_000);
    expect(upFair(99, 100, 1e-4, 60)).toBeLessThan(100_000);
    expect(upFair(100, 100, 1e-4, 60)).toBe(500_000);
  });
});

describe('rounds over HTTP (Gamma)', () => {
  const tmp = tempDataDir('pbsim-rounds');
  const now = { t: T0 };
  let app: FastifyInstance;
  let base: string;
  let ex: Exchange;
  beforeAll(async () => {
    const config = loadConfig(SimConfig, {
      env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_SIM_PORT: '0', POLYBOT_LOG_LEVEL: 'silent', POLYBOT_SIM_REQUIRE_AUTH: 'false' },
      envFile: false,
    });
    const log = createLogger('sim-test', { level: 'silent' });
    ex = make(now);
    app = await buildServer({ exchange: ex, hub: new MarketHub(ex, log), log, config, auth: createApiKeyStore(), dataDir: tmp.dir });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(async () => {
    await app?.close();
    ex?.close();
    tmp.cleanup();
  });

  it('serves the series, the round events and resolved rounds with closed=true', async () => {
    const series = (await getJson<any[]>(`${base}/series?slug=btc-up-or-down-15m`)).body;
    expect(series).toHaveLength(1);
    expect(series[0]).toMatchObject({ slug: 'btc-up-or-down-15m', ticker: 'btc-up-or-down-15m', recurrence: '15m', seriesType: 'single' });
    expect(series[0].events.map((e: any) => e.slug)).toEqual([0, 900, 1800].map((d) => `btc-updown-15m-${START + d}`));
    const slug = `btc-updown-15m-${START}`;
    const ev = (await getJson<any>(`${base}/events/slug/${slug}`)).body;
    expect(ev).toMatchObject({ slug, ticker: slug, startTime: '2026-03-23T15:15:00Z', endDate: '2026-03-23T15:30:00Z', seriesSlug: 'btc-up-or-down-15m', negRisk: false });
    expect(ev.markets).toHaveLength(1);
    expect(ev.markets[0].slug).toBe(slug);
    const bySeries = (await getJson<any[]>(`${base}/events?series_id=${series[0].id}`)).body;
    expect(bySeries).toHaveLength(3);
    const m = (await getJson<any[]>(`${base}/markets?slug=${slug}`)).body;
    expect(m).toHaveLength(1);
    expect(m[0].events[0]).toMatchObject({ slug, series: [{ slug: 'btc-up-or-down-15m' }] });
    const cm = (await getJson<any>(`${base}/clob-markets/${m[0].conditionId}`)).body;
    expect(cm).toMatchObject({ fd: { r: 0.25, e: 2, to: true }, nr: false, ao: true });

    now.t = (START + 900) * 1000;
    ex.tick(now.t);
    expect((await getJson<any[]>(`${base}/markets?slug=${slug}`)).body).toEqual([]);
    const closed = (await getJson<any[]>(`${base}/markets?slug=${slug}&closed=true`)).body;
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ closed: true, umaResolutionStatus: 'resolved' });
    expect(['["1", "0"]', '["0", "1"]']).toContain(closed[0].outcomePrices);
    const closedEv = (await getJson<any[]>(`${base}/events?slug=${slug}&closed=true`)).body;
    expect(closedEv).toHaveLength(1);
    const clob = (await getJson<any>(`${base}/markets/${closed[0].conditionId}`)).body;
    expect(clob).toMatchObject({ closed: true, accepting_orders: false });
    expect(clob.tokens.filter((t: any) => t.winner)).toHaveLength(1);
  });
});
