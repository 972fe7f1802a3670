import type { PostOrderBody } from '@polybot/polymarket';
import { mulMicros, toMicros as micros } from '@polybot/protocol';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataApi, type DataPosition, type DataTrade } from '../src/data-api.js';
import { Exchange } from '../src/exchange.js';
import { registerDataApi } from '../src/routes/data-api.js';
import { Traders } from '../src/traders.js';
import { engineOrder } from './engine-orders.js';

const T0 = 1_900_000_000_000;
const ALICE = `0x${'a1'.repeat(20)}`;
const BOB = `0x${'b0'.repeat(20)}`;

/** Field names and JSON types of the public Data API `/trades` and `/positions` rows. */
const TRADE_FIELDS: Record<string, string> = {
  proxyWallet: 'string', side: 'string', asset: 'string', conditionId: 'string', size: 'number', price: 'number',
  timestamp: 'number', title: 'string', slug: 'string', icon: 'string', eventSlug: 'string', outcome: 'string',
  outcomeIndex: 'number', name: 'string', pseudonym: 'string', bio: 'string', profileImage: 'string',
  profileImageOptimized: 'string', transactionHash: 'string',
};
const POSITION_FIELDS: Record<string, string> = {
  proxyWallet: 'string', asset: 'string', conditionId: 'string', size: 'number', avgPrice: 'number', initialValue: 'number',
  currentValue: 'number', cashPnl: 'number', percentPnl: 'number', totalBought: 'number', realizedPnl: 'number',
  percentRealizedPnl: 'number', curPrice: 'number', redeemable: 'boolean', mergeable: 'boolean', title: 'string', slug: 'string',
  icon: 'string', eventSlug: 'string', outcome: 'string', outcomeIndex: 'number', oppositeOutcome: 'string', oppositeAsset: 'string',
  endDate: 'string', negativeRisk: 'boolean',
};
const shapeOf = (o: object) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v]));

function order(who: string, tokenId: string, side: 'BUY' | 'SELL', price: bigint, shares: bigint, type: 'GTC' | 'FAK'): PostOrderBody {
  return engineOrder({ who, tokenId, side, price, shares, type, timestampMs: T0 });
}

describe('Data API over simulated traders', () => {
  const clock = { now: T0 };
  const exchange = new Exchange({ seed: 11, markets: 12, startBalance: 10_000_000_000n, timers: false, now: () => clock.now, negRisk: true });
  const traders = new Traders(exchange, { seed: 11, now: () => clock.now });
  let app: FastifyInstance;
  let busiest = '';

  beforeAll(async () => {
    for (let i = 0; i < 1200; i++) {
      for (let k = 0; k < 5; k++) exchange.step();
      traders.step();
      clock.now += 250;
      if (i % 20 === 0) exchange.tick(clock.now);
    }
    clock.now += 60_000;
    exchange.tick(clock.now); // every trade mined and confirmed
    busiest = [...traders.profiles].sort((a, b) => traders.fills(b.address).length - traders.fills(a.address).length)[0]?.address ?? '';
    app = Fastify();
    registerDataApi(app, { exchange, traders });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    traders.close();
  });

  const get = async (url: string) => {
    const res = await app.inject({ method: 'GET', url });
    return { status: res.statusCode, body: res.json() as unknown };
  };

  it('/trades: newest first, Data API shape, consistent with the fills and the account', async () => {
    const { status, body } = await get(`/trades?user=${busiest.toUpperCase().replace('0X', '0x')}&limit=10000`);
    expect(status).toBe(200);
    const trades = body as DataTrade[];
    const fills = traders.fills(busiest);
    expect(fills.length).toBeGreaterThan(20);
    expect(trades).toHaveLength(fills.length);
    for (const t of trades) {
      expect(shapeOf(t)).toEqual(TRADE_FIELDS);
      expect(t.proxyWallet).toBe(busiest);
      expect(t.name).toBe(traders.profile(busiest)?.name);
      expect(t.transactionHash).toMatch(/^0x[0-9a-f]{64}$/);
      expect(t.title.length).toBeGreaterThan(0);
      const m = exchange.marketOfCondition(t.conditionId);
      expect(m?.tokenIds[t.outcomeIndex]).toBe(t.asset);
      expect(m?.outcomes[t.outcomeIndex]).toBe(t.outcome);
    }
    for (let i = 1; i < trades.length; i++) expect((trades[i] as DataTrade).timestamp).toBeLessThanOrEqual((trades[i - 1] as DataTrade).timestamp);
    // Same fills, reversed.
    expect(trades.map((t) => [t.asset, t.side, micros(t.size), micros(t.price)])).toEqual(
      [...fills].reverse().map((f) => [f.tokenId, f.side, micros(f.size), micros(f.price)]),
    );
    // Net shares per token from /trades = the exchange account's positions.
    const net = new Map<string, bigint>();
    for (const t of trades) net.set(t.asset, (net.get(t.asset) ?? 0n) + (t.side === 'BUY' ? 1n : -1n) * micros(t.size));
    const acct = exchange.account(busiest);
    for (const [asset, size] of Object.entries(acct?.positions ?? {})) expect(net.get(asset) ?? 0n).toBe(micros(size));
    for (const [asset, size] of net) expect(micros(acct?.positions[asset] ?? '0')).toBe(size);
    // Paging and the market filter.
    const page = (await get(`/trades?user=${busiest}&limit=5&offset=3`)).body as DataTrade[];
    expect(page).toEqual(trades.slice(3, 8));
    const cid = (trades[0] as DataTrade).conditionId;
    const inMarket = (await get(`/trades?user=${busiest}&market=${cid}&limit=10000`)).body as DataTrade[];
    expect(inMarket).toEqual(trades.filter((t) => t.conditionId === cid));
    const buys = (await get(`/trades?user=${busiest}&side=buy&limit=10000`)).body as DataTrade[];
    expect(buys).toEqual(trades.filter((t) => t.side === 'BUY'));
  });

  it('/positions: sizes from the account, cost basis from the fills, values at mid', async () => {
    const { status, body } = await get(`/positions?user=${busiest}&sizeThreshold=0`);
    expect(status).toBe(200);
    const positions = body as DataPosition[];
    const acct = exchange.account(busiest);
    const held = Object.entries(acct?.positions ?? {}).filter(([, s]) => micros(s) > 0n);
    expect(positions).toHaveLength(held.length);
    expect(positions.length).toBeGreaterThan(0);
    const fills = traders.fills(busiest);
    for (const p of positions) {
      expect(shapeOf(p)).toEqual(POSITION_FIELDS);
      expect(micros(p.size)).toBe(micros(acct?.positions[p.asset] ?? '0'));
      const m = exchange.marketOfToken(p.asset);
      expect(m?.tokenIds[p.outcomeIndex]).toBe(p.asset);
      expect(p.oppositeAsset).toBe(m?.tokenIds[1 - p.outcomeIndex]);
      expect(p.redeemable).toBe(false);
      // Average cost replayed independently.
      let qty = 0n;
      let cost = 0n;
      let bought = 0n;
      for (const f of fills.filter((x) => x.tokenId === p.asset)) {
        const s = micros(f.size);
        if (f.side === 'BUY') {
          qty += s;
          cost += mulMicros(micros(f.price), s);
          bought += s;
        } else {
          const removed = s === qty ? cost : (cost * s + qty / 2n) / qty;
          cost -= removed;
          qty -= s;
        }
      }
      expect(qty).toBe(micros(p.size));
      expect(micros(p.initialValue)).toBe(cost);
      expect(micros(p.totalBought)).toBe(bought);
      const b = exchange.bookSummary(p.asset);
      const mid = (micros(b?.bids.at(-1)?.price ?? '0') + micros(b?.asks.at(-1)?.price ?? '0')) / 2n;
      expect(micros(p.curPrice)).toBe(mid);
      expect(micros(p.currentValue)).toBe(mulMicros(micros(p.size), mid));
      expect(micros(p.cashPnl)).toBe(micros(p.currentValue) - micros(p.initialValue));
    }
    for (let i = 1; i < positions.length; i++) expect((positions[i] as DataPosition).size).toBeLessThanOrEqual((positions[i - 1] as DataPosition).size);
    // The default sizeThreshold (1 share) and the market filter.
    const def = (await get(`/positions?user=${busiest}`)).body as DataPosition[];
    expect(def).toEqual(positions.filter((p) => p.size >= 1));
    const cid = (positions[0] as DataPosition).conditionId;
    expect((await get(`/positions?user=${busiest}&market=${cid}&sizeThreshold=0`)).body).toEqual(positions.filter((p) => p.conditionId === cid));
  });

  it('/traders lists the simulated wallets with skill, fills and PnL', async () => {
    const { status, body } = await get('/traders');
    expect(status).toBe(200);
    const list = body as Array<Record<string, unknown>>;
    expect(list).toHaveLength(20);
    for (const t of list) {
      expect(Object.keys(t)).toEqual(['proxyWallet', 'name', 'skill', 'style', 'trades', 'pnl']);
      expect(typeof t.skill).toBe('number');
      expect(typeof t.pnl).toBe('number');
      expect(t.trades).toBe(traders.fills(t.proxyWallet as string).length);
    }
  });

  it('unknown wallets get [], bad parameters 400 {"error"}', async () => {
    const nobody = `0x${'77'.repeat(20)}`;
    expect(await get(`/trades?user=${nobody}`)).toEqual({ status: 200, body: [] });
    expect(await get(`/positions?user=${nobody}`)).toEqual({ status: 200, body: [] });
    for (const url of [
      '/trades',
      '/trades?user=0x123',
      `/trades?user=${busiest}&limit=-1`,
      `/trades?user=${busiest}&offset=x`,
      `/trades?user=${busiest}&market=0xabc`,
      `/trades?user=${busiest}&side=HOLD`,
      `/trades?user=${busiest}&takerOnly=maybe`,
      '/positions?user=nobody',
      `/positions?user=${busiest}&sizeThreshold=-1`,
      `/positions?user=${busiest}&redeemable=perhaps`,
      `/positions?user=${busiest}&market=0x1,0x2`,
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(Object.keys(res.json() as object), url).toEqual(['error']);
    }
  });
});

describe('Data API for real users of the sim', () => {
  it('shows maker fills with takerOnly=false, hides fills until mined, never shows FAILED ones', () => {
    const clock = { now: T0 };
    const exchange = new Exchange({ seed: 2, markets: 2, startBalance: 1_000_000_000n, timers: false, now: () => clock.now, mineMs: 1000, confirmMs: 1000 });
    const api = new DataApi(exchange);
    const yes = exchange.markets[0]?.tokenIds[0] as string;
    const book = exchange.bookSummary(yes);
    const ask = micros(book?.asks.at(-1)?.price ?? '1');
    // Alice buys 20 YES as taker, then rests 10 below the makers' ask; Bob takes them.
    expect(exchange.postOrder(order(ALICE, yes, 'BUY', ask, 20_000_000n, 'FAK')).status).toBe('matched');
    expect(api.trades({ user: ALICE })).toEqual([]); // not mined yet
    expect(api.trades({ user: ALICE }).length).toBe(0);
    expect(new DataApi(exchange, { includeUnmined: true }).trades({ user: ALICE })).toHaveLength(1);
    clock.now += 1000;
    exchange.tick(clock.now);
    expect(api.trades({ user: ALICE })).toHaveLength(1);
    const mine = ask - 10_000n;
    expect(exchange.postOrder(order(ALICE, yes, 'SELL', mine, 10_000_000n, 'GTC')).status).toBe('live');
    clock.now += 1000;
    expect(exchange.postOrder(order(BOB, yes, 'BUY', mine, 10_000_000n, 'FAK')).status).toBe('matched');
    clock.now += 1000;
    exchange.tick(clock.now);
    const taker = api.trades({ user: ALICE });
    const all = api.trades({ user: ALICE, takerOnly: false });
    expect(taker.map((t) => t.side)).toEqual(['BUY']);
    expect(all.map((t) => [t.side, t.size, t.price])).toEqual([
      ['SELL', 10, Number(mine) / 1e6],
      ['BUY', 20, Number(ask) / 1e6],
    ]);
    expect(api.trades({ user: BOB }).map((t) => [t.side, t.size])).toEqual([['BUY', 10]]);
    // A FAILED trade (reverted on chain) never shows.
    exchange.configure({ failRate: 1 });
    expect(exchange.postOrder(order(BOB, yes, 'BUY', micros(exchange.bookSummary(yes)?.asks.at(-1)?.price ?? '1'), 5_000_000n * 4n, 'FAK'))).toMatchObject({ status: 'matched' });
    clock.now += 5000;
    exchange.tick(clock.now);
    expect(exchange.tradesOf(BOB).map((t) => t.status)).toEqual(['CONFIRMED', 'FAILED']);
    expect(api.trades({ user: BOB })).toHaveLength(1);
    expect(api.positions({ user: BOB }).map((p) => p.size)).toEqual([10]);
    const [pos] = api.positions({ user: ALICE });
    expect(pos?.size).toBe(10);
    expect(pos?.avgPrice).toBe(Number(ask) / 1e6);
    // Realized: 10 sold at ask − 0.01 after buying at ask.
    expect(pos?.realizedPnl).toBe(-0.1);
    expect(pos?.totalBought).toBe(20);
    exchange.close();
  });
});
