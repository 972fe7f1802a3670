import { Wallet } from '@ethersproject/wallet';
import { ClobClient, OrderType, Side } from '@polymarket/clob-client-v2';
import { OrderResponse, type BookSummary } from '@polybot/polymarket';
import Value from 'typebox/value';
import Type from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, orderBody, startSim, type RunningSim } from './helpers.js';

const wallet = (name: string) => `0x${Buffer.from(name).toString('hex').padEnd(40, '0')}`;
const ALICE = wallet('alice');

function body(who: string, opts: Omit<Parameters<typeof orderBody>[0], 'owner'>) {
  const b = orderBody({ ...opts, owner: `key-${who.slice(2, 8)}` });
  const o = b.order as Record<string, unknown>;
  o.maker = o.signer = who;
  return b;
}

async function post(base: string, payload: unknown, who = ALICE): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', poly_address: who },
    body: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
  return { status: res.status, body: await res.json() };
}

describe('POST /orders (auth off)', () => {
  let sim: RunningSim;
  let tok: string;
  let book: BookSummary;
  beforeAll(async () => {
    sim = await startSim({ POLYBOT_SIM_MARKETS: '4', POLYBOT_SIM_EVENT_RATE: '0', POLYBOT_SIM_START_BALANCE: '1000' });
    tok = sim.service.exchange.markets[0]!.tokenIds[0];
    book = (await getJson<BookSummary>(`${sim.base}/book?token_id=${tok}`)).body;
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('answers every element on its own, in order', async () => {
    const bid = Number(book.bids.at(-1)!.price);
    const ask = book.asks.at(-1)!.price;
    const resting = body(ALICE, { tokenId: tok, side: 'BUY', price: (bid - 0.02).toFixed(2), shares: '10' });
    const batch = [
      resting,
      { order: { tokenId: tok }, owner: 'x', orderType: 'GTC' }, // schema failure
      body(ALICE, { tokenId: tok, side: 'BUY', price: '0.5', shares: '1' }), // below min size
      body(ALICE, { tokenId: '123', side: 'BUY', price: '0.5', shares: '10' }), // unknown token
      body(ALICE, { tokenId: tok, side: 'BUY', price: ask, shares: '5', orderType: 'FAK' }), // fills
      resting, // duplicate of the first
      body(ALICE, { tokenId: tok, side: 'SELL', price: '0.9', shares: '1000' }), // no shares
    ];
    const r = await post(sim.base, batch);
    expect(r.status).toBe(200);
    expect(Value.Check(Type.Array(OrderResponse), r.body)).toBe(true);
    const res = r.body as OrderResponse[];
    expect(res).toHaveLength(batch.length);
    expect(res[0]).toMatchObject({ success: true, status: 'live' });
    expect(res[1]).toMatchObject({ success: false, orderID: null });
    expect(res[1]!.errorMsg).toMatch(/^Invalid order payload/);
    expect(res[2]!.success).toBe(false);
    expect(res[2]!.errorMsg).toMatch(/lower than the minimum/);
    expect(res[3]!.errorMsg).toMatch(/No orderbook exists/);
    expect(res[4]).toMatchObject({ success: true, status: 'matched' });
    expect(res[4]!.tradeIDs!.length).toBeGreaterThan(0);
    expect(res[5]!.errorMsg).toMatch(/Duplicated/);
    expect(res[6]!.errorMsg).toBe('not enough balance / allowance');
    const open = (await (await fetch(`${sim.base}/data/orders`, { headers: { poly_address: ALICE } })).json()) as { data: Array<{ id: string }> };
    expect(open.data.map((o) => o.id)).toEqual([res[0]!.orderID]);
  });

  it('allows 15 orders and answers 400 beyond', async () => {
    const mk = (n: number) => Array.from({ length: n }, () => body(ALICE, { tokenId: tok, side: 'BUY', price: '0.01', shares: '5' }));
    const ok = await post(sim.base, mk(15));
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(15);
    expect((ok.body as OrderResponse[]).every((x) => x.success)).toBe(true);
    const tooMany = await post(sim.base, mk(16));
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatch(/at most 15/);
    expect(sim.service.exchange.openOrders(ALICE).length).toBe(16); // 1 + 15, nothing of the rejected batch
  });

  it('rejects a body that is not a non-empty array', async () => {
    expect((await post(sim.base, body(ALICE, { tokenId: tok, side: 'BUY', price: '0.01', shares: '5' }))).status).toBe(400);
    expect((await post(sim.base, [])).status).toBe(400);
    expect((await post(sim.base, 'not json')).status).toBe(400);
  });
});

describe('POST /orders (auth on, official client)', () => {
  const TEST_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
  let sim: RunningSim;
  let client: ClobClient;
  beforeAll(async () => {
    sim = await startSim({ POLYBOT_SIM_REQUIRE_AUTH: 'true', POLYBOT_SIM_MARKETS: '4', POLYBOT_SIM_EVENT_RATE: '0' });
    const signer = new Wallet(TEST_KEY);
    const creds = await new ClobClient({ host: sim.base, chain: 137, signer }).createOrDeriveApiKey();
    client = new ClobClient({ host: sim.base, chain: 137, signer, creds, signatureType: 0 });
  }, 60_000);
  afterAll(async () => {
    await sim?.stop();
  });

  it('verifies each signed order independently', async () => {
    const tok = sim.service.exchange.markets[1]!.tokenIds[0];
    const good = await client.createOrder({ tokenID: tok, price: 0.02, size: 10, side: Side.BUY });
    const tampered = await client.createOrder({ tokenID: tok, price: 0.03, size: 10, side: Side.BUY });
    (tampered as { makerAmount: string }).makerAmount = String(Number(tampered.makerAmount) + 10_000); // signature no longer matches
    const res = await client.postOrders([
      { order: good, orderType: OrderType.GTC },
      { order: tampered, orderType: OrderType.GTC },
    ]);
    expect(res).toHaveLength(2);
    expect(res[0]).toMatchObject({ success: true, status: 'live' });
    expect(res[0]!.orderID).toMatch(/^0x[0-9a-f]{64}$/);
    expect(res[1]!.success).toBe(false);
    expect(res[1]!.errorMsg).toMatch(/signature/i);
    const open = await client.getOpenOrders();
    expect(open.map((o) => o.id)).toEqual([res[0]!.orderID]);
  });
});
