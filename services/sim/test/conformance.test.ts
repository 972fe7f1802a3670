/**
 * The official `@polymarket/clob-client-v2`, unmodified, trades on the simulator: if the venue's
 * own client cannot tell the difference, neither can ours.
 */
import { Wallet } from '@ethersproject/wallet';
import { AssetType, ClobClient, OrderType, Side, type ApiKeyCreds } from '@polymarket/clob-client-v2';
import { BookSummary, OpenOrder, WsUserOrder, WsUserTrade } from '@polybot/polymarket';
import { waitFor } from '@polybot/testkit';
import Compile from 'typebox/compile';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { getJson, startSim, type RunningSim } from './helpers.js';

// The publicly known Hardhat account #0 that Polymarket's own tests use; never funded anywhere.
const TEST_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const POLYGON = 137;

let sim: RunningSim;
let client: ClobClient;
let creds: ApiKeyCreds;
let tokenId: string;
const wallet = new Wallet(TEST_KEY);

beforeAll(async () => {
  sim = await startSim({ POLYBOT_SIM_REQUIRE_AUTH: 'true', POLYBOT_SIM_MINE_MS: '100', POLYBOT_SIM_CONFIRM_MS: '200' });
  // createOrDeriveApiKey relies on the venue's 400 for an existing key, so no throwOnError here.
  const l1 = new ClobClient({ host: sim.base, chain: POLYGON, signer: wallet });
  creds = await l1.createOrDeriveApiKey();
  client = new ClobClient({ host: sim.base, chain: POLYGON, signer: wallet, creds, signatureType: 0, throwOnError: true });
  const { body: markets } = await getJson<Array<{ clobTokenIds: string }>>(`${sim.base}/markets?limit=50`);
  tokenId = (JSON.parse(markets[0]!.clobTokenIds) as string[])[0]!;
}, 60_000);

afterAll(async () => {
  await sim?.stop();
});

describe('official clob-client-v2 against the simulator', () => {
  it('creates or derives the same API key twice', async () => {
    expect(creds.key).toMatch(/^[0-9a-f-]{36}$/);
    const l1 = new ClobClient({ host: sim.base, chain: POLYGON, signer: wallet });
    const again = await l1.createOrDeriveApiKey();
    expect(again).toEqual(creds);
  });

  it('reads public market data', async () => {
    expect(await client.getOk()).toBeTruthy();
    expect(await client.getVersion()).toBe(2);
    const book = await client.getOrderBook(tokenId);
    expect(Compile(BookSummary).Check(book)).toBe(true);
    expect(await client.getTickSize(tokenId)).toBe('0.01');
    expect(await client.getNegRisk(tokenId)).toBe(false);
    const mid = await client.getMidpoint(tokenId);
    expect(Number(mid.mid)).toBeGreaterThan(0);
    const page = await client.getMarkets();
    expect(page.data.length).toBeGreaterThan(0);
  });

  it('posts a GTC limit order, lists it, and cancels it', async () => {
    const book = await client.getOrderBook(tokenId);
    const bestBid = Number(book.bids.at(-1)!.price);
    const price = Math.max(0.01, Math.round((bestBid - 0.05) * 100) / 100);
    const res = await client.createAndPostOrder({ tokenID: tokenId, price, size: 10, side: Side.BUY }, undefined, OrderType.GTC);
    expect(res.success).toBe(true);
    expect(res.status).toBe('live');
    expect(res.orderID).toMatch(/^0x[0-9a-f]{64}$/);

    const open = await client.getOpenOrders();
    const mine = open.find((o) => o.id === res.orderID);
    expect(mine).toBeDefined();
    expect(Compile(OpenOrder).Check(mine)).toBe(true);
    const one = await client.getOrder(res.orderID);
    expect(one.status).toBe('LIVE');

    const cancel = await client.cancelOrder({ orderID: res.orderID });
    expect(cancel.canceled).toContain(res.orderID);
    const after = await client.getOpenOrders();
    expect(after.find((o) => o.id === res.orderID)).toBeUndefined();
  });

  it('fills a FOK market order, then shows the trade and the balance', async () => {
    const before = await client.getBalanceAllowance({ asset_type: AssetType.COLLATERAL });
    const res = await client.createAndPostMarketOrder({ tokenID: tokenId, amount: 5, side: Side.BUY }, undefined, OrderType.FOK);
    expect(res.success).toBe(true);
    expect(res.status).toBe('matched');
    expect(res.tradeIDs?.length).toBeGreaterThan(0);
    const trades = await client.getTrades({ asset_id: tokenId });
    expect(trades.some((t) => res.tradeIDs!.includes(t.id))).toBe(true);
    const after = await client.getBalanceAllowance({ asset_type: AssetType.COLLATERAL });
    expect(BigInt(after.balance)).toBeLessThan(BigInt(before.balance));
    const shares = await client.getBalanceAllowance({ asset_type: AssetType.CONDITIONAL, token_id: tokenId });
    expect(BigInt(shares.balance)).toBeGreaterThan(0n);
  });

  it('streams the account’s orders and trades on the user channel', async () => {
    const ws = new WebSocket(sim.base.replace('http', 'ws') + '/ws/user');
    const events: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => {
      const text = String(d);
      if (text === 'PONG') return;
      const v = JSON.parse(text) as unknown;
      for (const e of Array.isArray(v) ? v : [v]) events.push(e as Record<string, unknown>);
    });
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ auth: { apiKey: creds.key, secret: creds.secret, passphrase: creds.passphrase }, markets: [], type: 'user' }));
    await new Promise((r) => setTimeout(r, 200));
    const res = await client.createAndPostMarketOrder({ tokenID: tokenId, amount: 5, side: Side.BUY }, undefined, OrderType.FOK);
    expect(res.success).toBe(true);
    await waitFor(() => events.some((e) => e.event_type === 'trade' && e.status === 'CONFIRMED'), { what: 'a confirmed trade on /ws/user' });
    const checkOrder = Compile(WsUserOrder);
    const checkTrade = Compile(WsUserTrade);
    for (const e of events) {
      if (e.event_type === 'order') expect(checkOrder.Check(e), JSON.stringify(e)).toBe(true);
      else if (e.event_type === 'trade') expect(checkTrade.Check(e), JSON.stringify(e)).toBe(true);
    }
    expect(events.some((e) => e.event_type === 'trade' && e.status === 'MATCHED')).toBe(true);
    ws.close();
  });
});
