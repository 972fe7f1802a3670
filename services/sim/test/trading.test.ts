import { CancelResponse, OpenOrder, OrderResponse, Paged, WsUserOrder, WsUserTrade, type BookSummary } from '@polybot/polymarket';
import Type from 'typebox';
import Value from 'typebox/value';
import type { TSchema } from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXCHANGE_ADDRESS, MAX_ALLOWANCE, type UserEvent } from '../src/exchange.js';
import { fmt, getJson, micros, orderBody, startSim, type RunningSim } from './helpers.js';

// Event rate 0: the makers stand still; auth is off, so POLY_ADDRESS names the caller.
let sim: RunningSim;
const events: UserEvent[] = [];
let off: () => void;
beforeAll(async () => {
  sim = await startSim({ POLYBOT_SIM_MARKETS: '4', POLYBOT_SIM_EVENT_RATE: '0', POLYBOT_SIM_START_BALANCE: '1000' });
  off = sim.service.exchange.onUser((ev) => events.push(ev));
});
afterAll(async () => {
  off?.();
  await sim?.stop();
});

const wallet = (name: string) => `0x${Buffer.from(name).toString('hex').padEnd(40, '0')}`;
const TradeRecord = Type.Intersect([
  Type.Omit(WsUserTrade, ['event_type', 'type']),
  Type.Object({ match_time_nano: Type.String(), err_msg: Type.String() }),
]);
const check = (schema: TSchema, v: unknown) =>
  expect(Value.Check(schema, v), JSON.stringify([...Value.Errors(schema, v)].slice(0, 2))).toBe(true);

async function call(method: string, path: string, who: string | undefined, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (who) headers.poly_address = who;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${sim.base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: await res.json() };
}

async function place(who: string, opts: Omit<Parameters<typeof orderBody>[0], 'owner'>): Promise<OrderResponse> {
  const b = orderBody({ ...opts, owner: `key-${who.slice(2, 8)}` });
  const o = b.order as Record<string, unknown>;
  o.maker = o.signer = who;
  const r = await call('POST', '/order', who, b);
  expect(r.status).toBe(200);
  check(OrderResponse, r.body);
  return r.body as OrderResponse;
}

const balance = async (who: string, tokenId?: string) => {
  const q = tokenId ? `asset_type=CONDITIONAL&token_id=${tokenId}` : 'asset_type=COLLATERAL';
  const r = await call('GET', `/balance-allowance?${q}`, who);
  expect(r.status).toBe(200);
  expect(r.body.allowances).toEqual({ [EXCHANGE_ADDRESS]: MAX_ALLOWANCE });
  return BigInt(r.body.balance as string);
};
const book = async (tokenId: string) => (await getJson<BookSummary>(`${sim.base}/book?token_id=${tokenId}`)).body;
const tops = async (tokenId: string) => {
  const b = await book(tokenId);
  return { bid: micros(b.bids.at(-1)!.price), ask: micros(b.asks.at(-1)!.price) };
};
const START = 1_000_000_000n;

describe('private routes', () => {
  it('answer 401 without a caller', async () => {
    for (const [m, p, b] of [
      ['DELETE', '/order', { orderID: '0x1' }],
      ['DELETE', '/orders', ['0x1']],
      ['DELETE', '/cancel-all', undefined],
      ['DELETE', '/cancel-market-orders', { market: '0x1' }],
      ['GET', '/data/order/0x1', undefined],
      ['GET', '/data/orders', undefined],
      ['GET', '/data/trades', undefined],
      ['GET', '/balance-allowance?asset_type=COLLATERAL', undefined],
      ['GET', '/balance-allowance/update?asset_type=COLLATERAL', undefined],
    ] as const) {
      const r = await call(m, p, undefined, b);
      expect(r, `${m} ${p}`).toEqual({ status: 401, body: { error: 'Unauthorized/Invalid api key' } });
    }
  });

  it('report the available balance, reserve on rest and release on DELETE /order', async () => {
    const who = wallet('carol');
    expect(await balance(who)).toBe(START); // a new caller starts with the configured balance
    const tok = sim.service.exchange.markets[0]!.tokenIds[0];
    const r = await place(who, { tokenId: tok, side: 'BUY', price: '0.05', shares: '20' });
    expect(r).toMatchObject({ success: true, status: 'live' });
    expect(await balance(who)).toBe(START - 1_000_000n);
    expect((await call('GET', '/balance-allowance/update?asset_type=COLLATERAL', who)).body.balance).toBe(String(START - 1_000_000n));
    const one = await call('GET', `/data/order/${r.orderID}`, who);
    expect(one.status).toBe(200);
    check(OpenOrder, one.body);
    expect(one.body).toMatchObject({ id: r.orderID, status: 'LIVE', maker_address: who, owner: 'key-636172', price: '0.05', original_size: '20', size_matched: '0', side: 'BUY', order_type: 'GTC', expiration: '0', outcome: 'Yes' });
    expect((await call('GET', `/data/order/${r.orderID}`, wallet('mallory'))).status).toBe(404);
    expect((await call('DELETE', '/order', wallet('mallory'), { orderID: r.orderID })).body).toEqual({ canceled: [], not_canceled: { [r.orderID!]: 'order not found' } });
    const c = await call('DELETE', '/order', who, { orderID: r.orderID });
    check(CancelResponse, c.body);
    expect(c.body).toEqual({ canceled: [r.orderID], not_canceled: {} });
    expect(await balance(who)).toBe(START);
    expect((await call('DELETE', '/order', who, { orderID: r.orderID })).body).toEqual({ canceled: [], not_canceled: { [r.orderID!]: 'already canceled or matched' } });
    expect((await call('GET', `/data/order/${r.orderID}`, who)).body.status).toBe('CANCELED');
    expect((await call('DELETE', '/order', who, { nope: 1 })).status).toBe(400);
    expect((await call('GET', '/balance-allowance?asset_type=CONDITIONAL', who)).status).toBe(400);
    const evs = events.filter((e) => e.address === who).map((e) => e.event as WsUserOrder);
    for (const e of evs) check(WsUserOrder, e);
    expect(evs.map((e) => `${e.type}:${e.status}`)).toEqual(['PLACEMENT:LIVE', 'CANCELLATION:CANCELED']);
  });

  it('page /data/orders with offset cursors and cancel in bulk', async () => {
    const who = wallet('dave');
    const [yes, no] = sim.service.exchange.markets[1]!.tokenIds;
    const ids: string[] = [];
    for (const [tok, px] of [[yes, '0.02'], [yes, '0.03'], [no, '0.02']] as const) {
      ids.push((await place(who, { tokenId: tok, side: 'BUY', price: px, shares: '10' })).orderID!);
    }
    expect(await balance(who)).toBe(START - 700_000n);
    const p1 = await call('GET', '/data/orders?limit=2', who);
    check(Paged(OpenOrder), p1.body);
    expect(p1.body).toMatchObject({ limit: 2, count: 2, next_cursor: Buffer.from('2').toString('base64') });
    expect(p1.body.data.map((o: OpenOrder) => o.id)).toEqual(ids.slice(0, 2));
    const p2 = await call('GET', `/data/orders?limit=2&next_cursor=${p1.body.next_cursor}`, who);
    expect(p2.body).toMatchObject({ count: 1, next_cursor: 'LTE=' });
    expect(p2.body.data[0].id).toBe(ids[2]);
    expect((await call('GET', '/data/orders?next_cursor=LTE=', who)).body).toMatchObject({ data: [], next_cursor: 'LTE=' });
    expect((await call('GET', `/data/orders?asset_id=${no}`, who)).body.data.map((o: OpenOrder) => o.id)).toEqual([ids[2]]);
    expect((await call('GET', `/data/orders?id=${ids[1]}&next_cursor=MA==`, who)).body.data).toHaveLength(1);
    expect((await call('GET', '/data/orders', wallet('nobody'))).body).toEqual({ limit: 100, count: 0, next_cursor: 'LTE=', data: [] });
    expect((await call('GET', '/data/orders?next_cursor=!!', who)).status).toBe(400);

    const m = sim.service.exchange.markets[1]!;
    const cm = await call('DELETE', '/cancel-market-orders', who, { market: m.conditionId, asset_id: yes });
    expect(cm.body).toEqual({ canceled: ids.slice(0, 2), not_canceled: {} });
    expect(await balance(who)).toBe(START - 200_000n);
    const batch = await call('DELETE', '/orders', who, [ids[0], ids[2], '0xdead']);
    expect(batch.body).toEqual({ canceled: [ids[2]], not_canceled: { [ids[0]!]: 'already canceled or matched', '0xdead': 'order not found' } });
    expect(await balance(who)).toBe(START);
    await place(who, { tokenId: yes, side: 'BUY', price: '0.02', shares: '10' });
    const all = await call('DELETE', '/cancel-all', who);
    expect(all.body.canceled).toHaveLength(1);
    expect((await call('GET', '/data/orders', who)).body.data).toEqual([]);
    expect(await balance(who)).toBe(START);
  });

  it('list trades through their lifecycle, and a FAILED one gives everything back', async () => {
    const ex = sim.service.exchange;
    const buyer = wallet('erin');
    const seller = wallet('frank');
    const m = ex.markets[0]!;
    const tok = m.tokenIds[1]; // quoted 0.09 / 0.11 for seed 42: room for a user order inside the spread
    const { ask } = await tops(tok);
    const cost = (ask * 10_000_000n) / 1_000_000n;
    const r = await place(seller, { tokenId: tok, side: 'BUY', price: fmt(ask), shares: '10', orderType: 'FOK' });
    expect(r.tradeIDs).toHaveLength(1);
    expect(await balance(seller)).toBe(START - cost);
    expect(await balance(seller, tok)).toBe(10_000_000n);
    // Frank rests his 10 shares at the top of the book; Erin buys them.
    const { bid } = await tops(tok);
    expect(ask - bid).toBe(20_000n);
    const restPx = bid + 10_000n;
    const rest = await place(seller, { tokenId: tok, side: 'SELL', price: fmt(restPx), shares: '10' });
    expect(await balance(seller, tok)).toBe(0n);
    const { ask: top } = await tops(tok);
    expect(top).toBe(restPx);
    ex.configure({ failRate: 1 });
    const hit = await place(buyer, { tokenId: tok, side: 'BUY', price: fmt(restPx), shares: '10', orderType: 'FOK' });
    ex.configure({ failRate: 0 });
    const proceeds = (restPx * 10_000_000n) / 1_000_000n;
    expect(await balance(buyer)).toBe(START - proceeds);
    expect(await balance(seller)).toBe(START - cost + proceeds);
    const tid = hit.tradeIDs![0]!;
    const list = async (who: string, q = '') => (await call('GET', `/data/trades?${q}`, who)).body;
    const page = await list(seller);
    check(Paged(TradeRecord), page);
    expect(page.data.map((t: any) => `${t.trader_side}:${t.status}`)).toEqual(['TAKER:MATCHED', 'MAKER:MATCHED']);
    expect(page.data[1]).toMatchObject({
      id: tid,
      taker_order_id: hit.orderID,
      side: 'BUY',
      size: '10',
      price: fmt(restPx),
      fee_rate_bps: '0',
      err_msg: '',
      maker_orders: [{ order_id: rest.orderID, maker_address: seller, matched_amount: '10', side: 'SELL' }],
    });
    expect((await list(buyer, `id=${tid}`)).data).toHaveLength(1);
    expect((await list(buyer, `market=${m.conditionId}&asset_id=${tok}`)).data).toHaveLength(1);
    const matchS = Number(page.data[1].match_time);
    expect((await list(buyer, `before=${matchS}`)).data).toHaveLength(0);
    expect((await list(buyer, `after=${matchS}&before=${matchS + 1}`)).data).toHaveLength(1);
    expect((await list(wallet('nobody'))).data).toEqual([]);

    // Far enough ahead for both trades to finish: the first confirms, the second fails and reverts.
    ex.tick(Date.now() + 60_000);
    const done = await list(seller);
    expect(done.data.map((t: any) => t.status)).toEqual(['CONFIRMED', 'FAILED']);
    expect(done.data[1].err_msg).toBe('transaction reverted');
    expect(done.data[1].transaction_hash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await balance(buyer)).toBe(START);
    expect(await balance(buyer, tok)).toBe(0n);
    expect(await balance(seller)).toBe(START - cost);
    expect(await balance(seller, tok)).toBe(10_000_000n);
    // The user channel saw every step, to both accounts, in the venue's shapes.
    const trades = events.filter((e) => e.event.event_type === 'trade' && e.event.id === tid);
    for (const e of trades) check(WsUserTrade, e.event);
    expect(trades.map((e) => `${e.address === buyer ? 'erin' : 'frank'}:${(e.event as WsUserTrade).trader_side}:${e.event.status}`)).toEqual([
      'erin:TAKER:MATCHED',
      'frank:MAKER:MATCHED',
      'erin:TAKER:MINED',
      'frank:MAKER:MINED',
      'erin:TAKER:FAILED',
      'frank:MAKER:FAILED',
    ]);
    const orders = events.filter((e) => e.event.event_type === 'order' && e.event.id === rest.orderID).map((e) => e.event as WsUserOrder);
    expect(orders.map((e) => `${e.type}:${e.status}:${e.size_matched}`)).toEqual(['PLACEMENT:LIVE:0', 'UPDATE:MATCHED:10']);
  });
});
