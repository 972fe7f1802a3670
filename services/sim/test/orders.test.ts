import { BookSummary, OrderResponse } from '@polybot/polymarket';
import Value from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERR_BALANCE, ERR_FAK, ERR_FOK } from '../src/exchange.js';
import { fmt, getJson, micros, orderBody, postRaw, startSim, type RunningSim } from './helpers.js';

// Event rate 0: the makers stand still, so every book change below comes from these orders alone.
let sim: RunningSim;
let yes: string;
let no: string;
beforeAll(async () => {
  sim = await startSim({ POLYBOT_SIM_MARKETS: '4', POLYBOT_SIM_EVENT_RATE: '0', POLYBOT_SIM_START_BALANCE: '1000' });
  const m = sim.service.exchange.markets[0]!;
  [yes, no] = m.tokenIds;
});
afterAll(async () => {
  await sim?.stop();
});

const book = async (tokenId: string) => (await getJson<BookSummary>(`${sim.base}/book?token_id=${tokenId}`)).body;
const post = async (body: unknown) => {
  const r = await postRaw(`${sim.base}/order`, JSON.stringify(body));
  if (r.status === 200) expect(Value.Check(OrderResponse, r.body)).toBe(true);
  return r;
};
/** Accounts are wallet addresses (the order's maker): one per test user, derived from its name. */
const wallet = (name: string) => `0x${Buffer.from(name).toString('hex').padEnd(40, '0')}`;
const account = (name: string) => sim.service.exchange.account(wallet(name));
const body = (opts: Parameters<typeof orderBody>[0]) => {
  const b = orderBody(opts);
  const o = b.order as Record<string, unknown>;
  o.maker = o.signer = wallet(opts.owner ?? 'test-owner');
  return b;
};
const levels = (b: BookSummary) => ({ bids: b.bids, asks: b.asks });

describe('POST /order', () => {
  it('fills a BUY FAK crossing the ask at the resting price, exactly', async () => {
    const before = await book(yes);
    const best = before.asks[before.asks.length - 1]!;
    const limit = fmt(micros(best.price) + 20_000n); // two ticks worse than the best ask
    const r = await post(body({ tokenId: yes, side: 'BUY', price: limit, shares: '5', orderType: 'FAK', owner: 'alice' }));
    expect(r.status).toBe(200);
    const cost = (micros(best.price) * 5_000_000n) / 1_000_000n;
    expect(r.body).toMatchObject({
      success: true,
      errorMsg: '',
      status: 'matched',
      makingAmount: fmt(cost),
      takingAmount: '5',
      transactionsHashes: [],
    });
    expect(r.body.orderID).toMatch(/^0x[0-9a-f]{64}$/);
    expect(r.body.tradeIDs).toHaveLength(1);
    const acct = account('alice')!;
    expect(acct.collateral).toBe(fmt(1_000_000_000n - cost));
    expect(acct.lockedCollateral).toBe('0');
    expect(acct.positions[yes]).toBe('5');
    const after = await book(yes);
    const top = after.asks[after.asks.length - 1]!;
    if (micros(best.size) > 5_000_000n) expect(top).toEqual({ price: best.price, size: fmt(micros(best.size) - 5_000_000n) });
    else expect(top.price).not.toBe(best.price);
    expect(after.bids).toEqual(before.bids);
  });

  it('sweeps several levels, each at its own price', async () => {
    const before = await book(no);
    const asks = [...before.asks].reverse(); // best first
    const [l1, l2] = [asks[0]!, asks[1]!];
    const shares = micros(l1.size) + 1_000_000n;
    const r = await post(
      body({ tokenId: no, side: 'BUY', price: l2.price, shares: fmt(shares), orderType: 'FAK', owner: 'bob' }),
    );
    const cost = (micros(l1.price) * micros(l1.size) + micros(l2.price) * 1_000_000n) / 1_000_000n;
    expect(r.body).toMatchObject({ success: true, status: 'matched', makingAmount: fmt(cost), takingAmount: fmt(shares) });
    const acct = account('bob')!;
    expect(acct.collateral).toBe(fmt(1_000_000_000n - cost));
    expect(acct.positions[no]).toBe(fmt(shares));
    const after = await book(no);
    expect(after.asks.find((l) => l.price === l1.price)).toBeUndefined();
    expect(after.asks.find((l) => l.price === l2.price)?.size).toBe(fmt(micros(l2.size) - 1_000_000n));
  });

  it('sells what it bought back into the bid', async () => {
    const before = await book(yes);
    const bid = before.bids[before.bids.length - 1]!;
    const r = await post(body({ tokenId: yes, side: 'SELL', price: bid.price, shares: '5', orderType: 'FOK', owner: 'alice' }));
    const proceeds = (micros(bid.price) * 5_000_000n) / 1_000_000n;
    expect(r.body).toMatchObject({ success: true, status: 'matched', makingAmount: '5', takingAmount: fmt(proceeds) });
    expect(account('alice')!.positions[yes]).toBe('0');
  });

  it('rests a GTC that does not cross and reserves its collateral', async () => {
    const before = await book(yes);
    const bestBid = micros(before.bids[before.bids.length - 1]!.price);
    const bestAsk = micros(before.asks[before.asks.length - 1]!.price);
    const px = bestAsk - bestBid > 10_000n ? bestBid + 10_000n : bestBid; // inside the spread if there is room
    const r = await post(body({ tokenId: yes, side: 'BUY', price: fmt(px), shares: '10', owner: 'carol' }));
    expect(r.body).toMatchObject({ success: true, status: 'live', makingAmount: '0', takingAmount: '0', tradeIDs: [] });
    const after = await book(yes);
    const lvl = after.bids.find((l) => l.price === fmt(px))!;
    const prev = before.bids.find((l) => l.price === fmt(px));
    expect(micros(lvl.size)).toBe((prev ? micros(prev.size) : 0n) + 10_000_000n);
    const acct = account('carol')!;
    expect(acct.collateral).toBe('1000');
    expect(acct.lockedCollateral).toBe(fmt((px * 10_000_000n) / 1_000_000n));
  });

  it('kills a FOK that cannot fill completely and changes nothing', async () => {
    const before = await book(yes);
    const acctBefore = account('alice');
    const best = before.asks[before.asks.length - 1]!;
    const shares = fmt(micros(best.size) + 1_000_000n); // more than the best level holds
    const r = await post(body({ tokenId: yes, side: 'BUY', price: best.price, shares, orderType: 'FOK', owner: 'alice' }));
    expect(r.status).toBe(200);
    expect(r.body.success).toBe(false);
    expect(r.body.errorMsg).toBe(ERR_FOK);
    expect(levels(await book(yes))).toEqual(levels(before));
    expect(account('alice')).toEqual(acctBefore);
  });

  it('rejects a FAK with nothing to match, a SELL without shares and a BUY without funds', async () => {
    const before = await book(yes);
    const bid = micros(before.bids[before.bids.length - 1]!.price);
    const low = fmt(bid > 20_000n ? bid - 10_000n : 10_000n);
    const fak = await post(body({ tokenId: yes, side: 'BUY', price: low, shares: '100', orderType: 'FAK', owner: 'dave' }));
    expect(fak.body).toMatchObject({ success: false, errorMsg: ERR_FAK });
    const sell = await post(body({ tokenId: yes, side: 'SELL', price: '0.5', shares: '10', owner: 'dave' }));
    expect(sell.body).toMatchObject({ success: false, errorMsg: ERR_BALANCE });
    const rich = await post(body({ tokenId: yes, side: 'BUY', price: '0.5', shares: '2001', owner: 'dave' }));
    expect(rich.body).toMatchObject({ success: false, errorMsg: ERR_BALANCE });
    expect(levels(await book(yes))).toEqual(levels(before));
  });

  it('enforces the tick grid and the minimum size', async () => {
    const off = body({ tokenId: yes, side: 'BUY', price: '0.5', shares: '10' });
    (off.order as Record<string, string>).makerAmount = '5050000'; // implied price 0.505
    const r1 = await post(off);
    expect(r1.body.success).toBe(false);
    expect(r1.body.errorMsg).toMatch(/^order 0x[0-9a-f]{64} is invalid\. Price \(0\.505\) breaks minimum tick size rule: 0\.01$/);
    const r2 = await post(body({ tokenId: yes, side: 'BUY', price: '0.995', shares: '10' }));
    expect(r2.body.errorMsg).toMatch(/breaks minimum tick size rule/);
    const r3 = await post(body({ tokenId: yes, side: 'BUY', price: '0.2', shares: '4' }));
    expect(r3.body.errorMsg).toMatch(/Size \(4\) lower than the minimum: 5/);
  });

  it('answers 400 to malformed JSON or a bad schema and changes nothing', async () => {
    const before = await book(yes);
    const stats = { ...sim.service.exchange.stats };
    const bad = await postRaw(`${sim.base}/order`, '{"order": ');
    expect(bad.status).toBe(400);
    expect(typeof bad.body.error).toBe('string');
    const bad1 = body({ tokenId: yes, side: 'BUY', price: '0.99', shares: '10', orderType: 'FAK', owner: 'erin' });
    (bad1.order as Record<string, unknown>).makerAmount = 9.9;
    const schema = await postRaw(`${sim.base}/order`, JSON.stringify(bad1));
    expect(schema.status).toBe(400);
    expect(typeof schema.body.error).toBe('string');
    const noType = await postRaw(`${sim.base}/order`, JSON.stringify({ ...bad1, orderType: 'IOC' }));
    expect(noType.status).toBe(400);
    expect(levels(await book(yes))).toEqual(levels(before));
    expect(sim.service.exchange.stats.ordersAccepted).toBe(stats.ordersAccepted);
    expect(account('erin')).toBeUndefined();
  });

  it('counts orders and trades in its metrics', async () => {
    const m = sim.service.metrics!();
    expect(m.orders_accepted).toBeGreaterThanOrEqual(4);
    expect(m.orders_rejected).toBeGreaterThanOrEqual(8);
    expect(m.trades).toBeGreaterThanOrEqual(4);
  });
});
