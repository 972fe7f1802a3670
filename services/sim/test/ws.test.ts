import { BookSummary, WsBook, WsLastTradePrice, WsPriceChange } from '@polybot/polymarket';
import { waitFor } from '@polybot/testkit';
import Value from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, micros, orderBody, postRaw, startSim, WsClient, type RunningSim } from './helpers.js';

let sim: RunningSim;
const clients: WsClient[] = [];
beforeAll(async () => {
  // Two markets at a high event rate: each of them changes many times a second.
  sim = await startSim({ POLYBOT_SIM_MARKETS: '2', POLYBOT_SIM_EVENT_RATE: '100' });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await sim?.stop();
});

async function connect(): Promise<WsClient> {
  const c = await WsClient.open(sim.wsUrl);
  clients.push(c);
  return c;
}

describe('market WebSocket', () => {
  it('sends books on subscribe, then price changes for subscribed assets only', async () => {
    const [m0, m1] = sim.service.exchange.markets as [any, any];
    const c = await connect();
    c.send({ assets_ids: [...m0.tokenIds, 'not-a-token'], type: 'market' });
    await waitFor(() => c.events.length >= 2, { what: 'initial books' });
    const [b0, b1] = c.events as [WsBook, WsBook];
    for (const b of [b0, b1]) {
      expect(b.event_type).toBe('book');
      expect(Value.Check(WsBook, b)).toBe(true);
      expect(b.market).toBe(m0.conditionId);
    }
    expect([b0.asset_id, b1.asset_id].sort()).toEqual([...m0.tokenIds].sort());
    await waitFor(() => c.events.filter((e) => e.event_type === 'price_change').length >= 3, { what: 'price changes' });
    for (const e of c.events.slice(2)) {
      if (e.event_type !== 'price_change') continue;
      expect(Value.Check(WsPriceChange, e), JSON.stringify(e)).toBe(true);
      expect(e.market).toBe(m0.conditionId);
      for (const p of (e as WsPriceChange).price_changes) {
        expect(m0.tokenIds).toContain(p.asset_id);
        expect(p.best_bid && p.best_ask && micros(p.best_bid) < micros(p.best_ask)).toBe(true);
      }
    }
    expect(c.events.some((e) => e.market === m1.conditionId)).toBe(false);

    // Unsubscribing one token stops its events; later subscribing the other market sends its books.
    c.send({ operation: 'unsubscribe', assets_ids: [m0.tokenIds[1]] });
    c.send({ operation: 'subscribe', assets_ids: [m1.tokenIds[0]] });
    await waitFor(() => c.events.some((e) => e.event_type === 'book' && e.asset_id === m1.tokenIds[0]), { what: 'book of m1' });
    const mark = c.events.length;
    await waitFor(() => c.events.slice(mark).filter((e) => e.event_type === 'price_change').length >= 3, { what: 'more changes' });
    for (const e of c.events.slice(mark)) {
      const ids = e.event_type === 'price_change' ? e.price_changes.map((p: { asset_id: string }) => p.asset_id) : [e.asset_id];
      expect(ids).not.toContain(m0.tokenIds[1]);
    }
  });

  it('answers PING with PONG and survives garbage', async () => {
    const c = await connect();
    // PING is only answered once a subscription exists (before that the venue closes 1008, see ws-features).
    c.send({ assets_ids: [], type: 'market' });
    c.send('PING');
    await waitFor(() => c.texts.includes('PONG'), { what: 'PONG' });
    c.send('{not json');
    c.send({ assets_ids: 'nope' });
    c.send('PING');
    await waitFor(() => c.texts.length >= 2, { what: 'second PONG' });
    expect(c.events).toHaveLength(0); // nothing subscribed, nothing sent
    expect(Number(sim.service.metrics!().ws_invalid_frames)).toBeGreaterThanOrEqual(2);
    expect(Number(sim.service.metrics!().ws_clients)).toBeGreaterThanOrEqual(1);
  });

  it('publishes last_trade_price and a fresh book after a fill', async () => {
    const m = sim.service.exchange.markets[1]!;
    const token = m.tokenIds[0];
    const c = await connect();
    c.send({ assets_ids: [token], type: 'market' });
    await waitFor(() => c.events.length >= 1, { what: 'book' });
    const book = (await getJson<BookSummary>(`${sim.base}/book?token_id=${token}`)).body;
    const ask = book.asks[book.asks.length - 1]!;
    // Limit well above the ask so the makers moving meanwhile cannot make it miss.
    const limit = micros(ask.price) + 100_000n;
    const px = limit > 990_000n ? '0.99' : (Number(limit) / 1e6).toFixed(2);
    const r = await postRaw(`${sim.base}/order`, JSON.stringify(orderBody({ tokenId: token, side: 'BUY', price: px, shares: '5', orderType: 'FAK' })));
    expect(r.body.success).toBe(true);
    const trade = await waitFor(() => c.events.find((e) => e.event_type === 'last_trade_price'), { what: 'last_trade_price' });
    expect(Value.Check(WsLastTradePrice, trade)).toBe(true);
    expect(trade).toMatchObject({ asset_id: token, market: m.conditionId, side: 'BUY' });
    const i = c.events.indexOf(trade);
    await waitFor(() => c.events.slice(i).some((e) => e.event_type === 'book'), { what: 'book after trade' });
  });
});
