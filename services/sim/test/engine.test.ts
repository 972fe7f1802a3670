import { OpenOrder, WsUserOrder, WsUserTrade, type PostOrderBody } from '@polybot/polymarket';
import { fromMicros as fmt, toMicros as micros } from '@polybot/protocol';
import Value from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { Exchange, type UserEvent } from '../src/exchange.js';
import { engineOrder, resetSalt } from './engine-orders.js';

const START = 1_000_000_000n; // 1000 pUSD
const T0 = 1_900_000_000_000;
const wallet = (name: string) => `0x${Buffer.from(name).toString('hex').padEnd(40, '0')}`;
const ALICE = wallet('alice');
const BOB = wallet('bob');

function order(o: { who: string; tokenId: string; side: 'BUY' | 'SELL'; price: bigint; shares: bigint; type?: 'GTC' | 'GTD' | 'FOK' | 'FAK'; expiration?: string }): PostOrderBody {
  return engineOrder({ ...o, timestampMs: T0, owner: `key-${o.who.slice(2, 8)}` });
}

/** An exchange on a hand-driven clock, without timers, recording every user event (validated). */
function setup(opts: { failRate?: number; seed?: number } = {}) {
  const clock = { now: T0 };
  const ex = new Exchange({
    seed: opts.seed ?? 42,
    markets: 12,
    startBalance: START,
    now: () => clock.now,
    timers: false,
    mineMs: 1000,
    confirmMs: 3000,
    ...(opts.failRate !== undefined ? { failRate: opts.failRate } : {}),
  });
  const events: UserEvent[] = [];
  ex.onUser((ev) => {
    const schema = ev.event.event_type === 'order' ? WsUserOrder : WsUserTrade;
    expect(Value.Check(schema, ev.event), JSON.stringify([...Value.Errors(schema, ev.event)].slice(0, 2))).toBe(true);
    events.push(ev);
  });
  return { ex, clock, events };
}

const tops = (ex: Exchange, tokenId: string) => {
  const b = ex.bookSummary(tokenId)!;
  return { bid: micros(b.bids[b.bids.length - 1]!.price), ask: micros(b.asks[b.asks.length - 1]!.price) };
};

/** A fee-free token whose spread is two ticks, so a user bid can sit alone inside it. */
function wideToken(ex: Exchange): string {
  for (const m of ex.markets) {
    if (m.feeSchedule) continue;
    for (const t of m.tokenIds) {
      const { bid, ask } = tops(ex, t);
      if (ask - bid === 20_000n) return t;
    }
  }
  throw new Error('no two-tick spread');
}

const of = (events: UserEvent[], address: string) => events.filter((e) => e.address === address).map((e) => e.event);

describe('accounts', () => {
  it('opens accounts by lower-case address, idempotently, and funds them exactly', () => {
    const { ex } = setup();
    const upper = '0xABCDEF0000000000000000000000000000000001';
    expect(ex.account(upper)).toBeUndefined();
    expect(ex.ensureAccount(upper)).toMatchObject({ address: upper.toLowerCase(), collateral: '1000', lockedCollateral: '0' });
    expect(ex.ensureAccount(upper.toLowerCase()).collateral).toBe('1000');
    expect(ex.fund(upper, 2_500_001n).collateral).toBe('1002.500001');
    expect(ex.availableBalance(upper)).toBe(1_002_500_001n);
    expect(() => ex.fund(upper, -2_000_000_000n)).toThrow(RangeError);
    expect(ex.fund(upper, -2_500_001n).collateral).toBe('1000');
    expect(ex.fund(wallet('fresh'), 1n).collateral).toBe('1000.000001');
  });
});

describe('orders', () => {
  it('uses the caller-given order id and rejects its duplicate', () => {
    const { ex } = setup();
    const tok = ex.markets[0]!.tokenIds[0];
    const id = `0x${'12'.repeat(32)}`;
    const { bid } = tops(ex, tok);
    const r = ex.postOrder(order({ who: ALICE, tokenId: tok, side: 'BUY', price: bid - 10_000n, shares: 5_000_000n }), { orderId: id });
    expect(r).toMatchObject({ success: true, orderID: id, status: 'live' });
    const again = ex.postOrder(order({ who: ALICE, tokenId: tok, side: 'BUY', price: bid - 10_000n, shares: 6_000_000n }), { orderId: id });
    expect(again).toEqual({ success: false, errorMsg: `order ${id} is invalid. Duplicated.`, orderID: null });
    expect(ex.openOrders(ALICE)).toHaveLength(1);
  });

  it('rests, fills as maker, cancels, with exact balances and the venue events for both sides', () => {
    const { ex, events } = setup();
    const tok = wideToken(ex);
    const { bid, ask } = tops(ex, tok);
    const mid = bid + 10_000n;
    // Bob buys 10 shares from the makers so he has something to sell.
    const buy = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'BUY', price: ask + 20_000n, shares: 10_000_000n, type: 'FAK' }));
    expect(buy).toMatchObject({ success: true, status: 'matched', takingAmount: '10' });
    const bobCost = micros(buy.makingAmount!);
    expect(ex.account(BOB)).toMatchObject({ collateral: fmt(START - bobCost), positions: { [tok]: '10' } });

    // Alice rests a bid inside the spread: 10 × mid reserved.
    const r = ex.postOrder(order({ who: ALICE, tokenId: tok, side: 'BUY', price: mid, shares: 10_000_000n }));
    expect(r).toMatchObject({ success: true, status: 'live', makingAmount: '0', takingAmount: '0', tradeIDs: [] });
    const id = r.orderID!;
    expect(ex.account(ALICE)).toMatchObject({ collateral: '1000', lockedCollateral: fmt(mid * 10n) });
    const placed = of(events, ALICE);
    expect(placed).toEqual([
      expect.objectContaining({ event_type: 'order', type: 'PLACEMENT', status: 'LIVE', id, size_matched: '0', original_size: '10', price: fmt(mid), maker_address: ALICE, order_type: 'GTC', created_at: String(T0 / 1000) }),
    ]);

    // Bob sells 4 into it: Alice is the maker.
    events.length = 0;
    const sell = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'SELL', price: mid, shares: 4_000_000n, type: 'FAK' }));
    expect(sell).toMatchObject({ success: true, status: 'matched', makingAmount: '4', takingAmount: fmt(mid * 4n) });
    const tradeId = sell.tradeIDs![0]!;
    expect(ex.account(ALICE)).toMatchObject({ collateral: fmt(START - mid * 4n), lockedCollateral: fmt(mid * 6n), positions: { [tok]: '4' } });
    expect(ex.account(BOB)).toMatchObject({ collateral: fmt(START - bobCost + mid * 4n), positions: { [tok]: '6' } });
    const a = of(events, ALICE);
    expect(a.map((e) => `${e.event_type}:${'trader_side' in e ? e.trader_side : e.type}:${e.status}`)).toEqual([
      'trade:MAKER:MATCHED',
      'order:UPDATE:LIVE',
    ]);
    expect(a[0]).toMatchObject({
      id: tradeId,
      taker_order_id: sell.orderID,
      side: 'SELL',
      size: '4',
      price: fmt(mid),
      maker_orders: [{ order_id: id, maker_address: ALICE, matched_amount: '4', price: fmt(mid), side: 'BUY', owner: 'key-616c69' }],
    });
    expect(a[1]).toMatchObject({ size_matched: '4', associate_trades: [tradeId] });
    const b = of(events, BOB);
    expect(b.map((e) => `${e.event_type}:${'trader_side' in e ? e.trader_side : e.type}:${e.status}`)).toEqual([
      'order:PLACEMENT:LIVE',
      'trade:TAKER:MATCHED',
      'order:UPDATE:MATCHED',
    ]);
    const view = ex.getOrder(ALICE, id)!;
    expect(Value.Check(OpenOrder, view)).toBe(true);
    expect(view).toMatchObject({ status: 'LIVE', size_matched: '4', original_size: '10', associate_trades: [tradeId] });
    expect(ex.getOrder(BOB, id)).toBeUndefined();

    // Cancel: the remaining reservation is released exactly.
    expect(ex.cancelOrder(BOB, id)).toEqual({ canceled: [], not_canceled: { [id]: 'order not found' } });
    events.length = 0;
    expect(ex.cancelOrder(ALICE, id)).toEqual({ canceled: [id], not_canceled: {} });
    expect(ex.account(ALICE)).toMatchObject({ collateral: fmt(START - mid * 4n), lockedCollateral: '0' });
    expect(of(events, ALICE)).toEqual([expect.objectContaining({ type: 'CANCELLATION', status: 'CANCELED', size_matched: '4' })]);
    expect(ex.cancelOrders(ALICE, [id, '0xnope'])).toEqual({
      canceled: [],
      not_canceled: { [id]: 'already canceled or matched', '0xnope': 'order not found' },
    });
    expect(ex.openOrders(ALICE)).toEqual([]);
    expect(ex.getOrder(ALICE, id)!.status).toBe('CANCELED');
    expect(tops(ex, tok).bid).toBe(bid);
  });

  it('releases SELL reservations on cancel-all and cancel-market-orders', () => {
    const { ex } = setup();
    const tok = wideToken(ex);
    const { ask } = tops(ex, tok);
    ex.postOrder(order({ who: BOB, tokenId: tok, side: 'BUY', price: ask + 20_000n, shares: 12_000_000n, type: 'FAK' }));
    const s1 = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'SELL', price: 980_000n, shares: 5_000_000n })).orderID!;
    const s2 = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'SELL', price: 970_000n, shares: 6_000_000n })).orderID!;
    expect(ex.account(BOB)!.lockedPositions).toEqual({ [tok]: '11' });
    expect(ex.availableBalance(BOB, tok)).toBe(1_000_000n);
    const other = ex.markets.find((m) => !m.tokenIds.includes(tok))!;
    expect(ex.cancelMarketOrders(BOB, { market: other.conditionId })).toEqual({ canceled: [], not_canceled: {} });
    expect(ex.cancelMarketOrders(BOB, { assetId: tok }).canceled).toEqual([s1, s2]);
    expect(ex.account(BOB)!.lockedPositions).toEqual({});
    const s3 = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'SELL', price: 990_000n, shares: 12_000_000n })).orderID!;
    expect(ex.cancelAll(BOB)).toEqual({ canceled: [s3], not_canceled: {} });
    expect(ex.availableBalance(BOB, tok)).toBe(12_000_000n);
  });

  it('expires GTD orders on tick and releases their collateral', () => {
    const { ex, clock, events } = setup();
    const tok = ex.markets[0]!.tokenIds[1];
    const exp = T0 / 1000 + 300;
    const r = ex.postOrder(order({ who: ALICE, tokenId: tok, side: 'BUY', price: 10_000n, shares: 100_000_000n, type: 'GTD', expiration: String(exp) }));
    expect(ex.account(ALICE)!.lockedCollateral).toBe('1');
    ex.tick(clock.now + 299_000);
    expect(ex.getOrder(ALICE, r.orderID!)!.status).toBe('LIVE');
    clock.now += 300_000;
    ex.tick();
    expect(ex.getOrder(ALICE, r.orderID!)).toMatchObject({ status: 'CANCELED', expiration: String(exp), order_type: 'GTD' });
    expect(ex.account(ALICE)!.lockedCollateral).toBe('0');
    expect(events.at(-1)!.event).toMatchObject({ type: 'CANCELLATION', status: 'CANCELED' });
  });
});

describe('trade lifecycle', () => {
  it('goes MATCHED → MINED → CONFIRMED on the injected clock, to taker and maker', () => {
    const { ex, clock, events } = setup();
    const tok = wideToken(ex);
    const { bid, ask } = tops(ex, tok);
    const mid = bid + 10_000n;
    ex.postOrder(order({ who: BOB, tokenId: tok, side: 'BUY', price: ask, shares: 5_000_000n, type: 'FOK' }));
    ex.postOrder(order({ who: ALICE, tokenId: tok, side: 'BUY', price: mid, shares: 5_000_000n }));
    clock.now += 10;
    const sell = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'SELL', price: mid, shares: 5_000_000n, type: 'FOK' }));
    const id = sell.tradeIDs![0]!;
    const statusOf = (address: string) =>
      events.filter((e) => e.address === address && e.event.event_type === 'trade' && e.event.id === id).map((e) => (e.event as WsUserTrade).status);
    expect(ex.tradesOf(ALICE, { id })[0]).toMatchObject({ status: 'MATCHED', trader_side: 'MAKER', err_msg: '' });
    expect(ex.tradesOf(ALICE, { id })[0]!.transaction_hash).toBeUndefined();
    ex.tick(clock.now + 999);
    expect(statusOf(ALICE)).toEqual(['MATCHED']);
    clock.now += 1000;
    ex.tick();
    expect(statusOf(ALICE)).toEqual(['MATCHED', 'MINED']);
    expect(statusOf(BOB)).toEqual(['MATCHED', 'MINED']);
    const mined = ex.tradesOf(BOB, { id })[0]!;
    expect(mined).toMatchObject({ status: 'MINED', trader_side: 'TAKER', match_time: String(Math.floor((T0 + 10) / 1000)) });
    expect(mined.transaction_hash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(mined.match_time_nano).toBe(String(BigInt(T0 + 10) * 1_000_000n));
    ex.tick(clock.now + 3000);
    expect(statusOf(ALICE)).toEqual(['MATCHED', 'MINED', 'CONFIRMED']);
    expect(statusOf(BOB)).toEqual(['MATCHED', 'MINED', 'CONFIRMED']);
    expect(ex.pendingTrades).toBe(0);
    ex.tick(clock.now + 100_000); // nothing more happens
    expect(statusOf(BOB)).toHaveLength(3);
  });

  it('ends FAILED with the fill reverted exactly (a ghost fill)', () => {
    const { ex, clock, events } = setup({ failRate: 1 });
    const tok = wideToken(ex);
    const { bid, ask } = tops(ex, tok);
    const mid = bid + 10_000n;
    ex.postOrder(order({ who: ALICE, tokenId: tok, side: 'BUY', price: mid, shares: 8_000_000n }));
    const before = ex.account(ALICE);
    const buy = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'BUY', price: ask, shares: 6_000_000n, type: 'FAK' }));
    expect(ex.account(BOB)!.positions[tok]).toBe('6');
    ex.tick(clock.now + 4000); // first trade fails: Bob's shares vanish, his money comes back
    expect(ex.account(BOB)).toMatchObject({ collateral: '1000', positions: { [tok]: '0' } });
    expect(ex.tradesOf(BOB, { id: buy.tradeIDs![0]! })[0]).toMatchObject({ status: 'FAILED', err_msg: 'transaction reverted' });
    expect(ex.account(ALICE)).toEqual(before);
    const last = events.filter((e) => e.event.event_type === 'trade').at(-1)!.event as WsUserTrade;
    expect(last).toMatchObject({ status: 'FAILED', trader_side: 'TAKER' });
    expect(last.transaction_hash).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it('reverts a maker fill too, leaving the order state as matched', () => {
    const { ex, clock } = setup({ failRate: 1 });
    const tok = wideToken(ex);
    const { bid, ask } = tops(ex, tok);
    const mid = bid + 10_000n;
    ex.fund(BOB, 0n);
    ex.postOrder(order({ who: BOB, tokenId: tok, side: 'BUY', price: ask, shares: 5_000_000n, type: 'FOK' }));
    ex.tick(clock.now + 4000); // Bob's purchase fails: he holds nothing again
    expect(ex.availableBalance(BOB, tok)).toBe(0n);
    clock.now += 5000;
    ex.configure({ failRate: 0 });
    ex.postOrder(order({ who: BOB, tokenId: tok, side: 'BUY', price: ask, shares: 5_000_000n, type: 'FOK' }));
    ex.tick(clock.now + 4000);
    expect(ex.availableBalance(BOB, tok)).toBe(5_000_000n);
    ex.configure({ failRate: 1 });
    const rest = ex.postOrder(order({ who: ALICE, tokenId: tok, side: 'BUY', price: mid, shares: 5_000_000n }));
    ex.postOrder(order({ who: BOB, tokenId: tok, side: 'SELL', price: mid, shares: 5_000_000n, type: 'FOK' }));
    expect(ex.account(ALICE)).toMatchObject({ collateral: fmt(START - mid * 5n), lockedCollateral: '0', positions: { [tok]: '5' } });
    ex.tick(clock.now + 4000);
    expect(ex.account(ALICE)).toMatchObject({ collateral: '1000', lockedCollateral: '0', positions: { [tok]: '0' } });
    expect(ex.getOrder(ALICE, rest.orderID!)).toMatchObject({ status: 'MATCHED', size_matched: '5' });
  });

  it('is deterministic: same seed and order flow give the same events', () => {
    const run = () => {
      const { ex, clock, events } = setup({ failRate: 0.5, seed: 9 });
      const tok = wideToken(ex);
      const { bid, ask } = tops(ex, tok);
      for (let i = 0; i < 6; i++) {
        ex.postOrder(order({ who: BOB, tokenId: tok, side: 'BUY', price: ask, shares: 5_000_000n, type: 'FAK' }));
        ex.postOrder(order({ who: ALICE, tokenId: tok, side: 'BUY', price: bid + 10_000n, shares: 5_000_000n }));
        ex.postOrder(order({ who: BOB, tokenId: tok, side: 'SELL', price: bid + 10_000n, shares: 5_000_000n, type: 'FAK' }));
        clock.now += 700;
        ex.tick();
        ex.step();
      }
      ex.tick(clock.now + 10_000);
      return events;
    };
    resetSalt(1000);
    const a = run();
    resetSalt(1000);
    const b = run();
    expect(a.length).toBeGreaterThan(30);
    expect(b).toEqual(a);
    const statuses = new Set(a.map((e) => e.event.status));
    expect(statuses.has('FAILED') && statuses.has('CONFIRMED')).toBe(true);
  });
});

describe('taker fees', () => {
  it('computes shares × rate × (p·(1−p))^exponent, half up to 6 decimals', () => {
    const { ex } = setup();
    const fee = ex.markets.find((m) => m.feeSchedule)!;
    expect(fee.feeSchedule).toEqual({ rate: '0.25', exponent: 2, takerOnly: true });
    expect(ex.markets.filter((m) => m.feeSchedule).map((m) => m.index)).toEqual([3, 7, 11]);
    expect(ex.feeFor(fee, 100_000_000n, 500_000n)).toBe(1_562_500n); // the docs' $1.56 example
    // 3 × 0.25 × (0.33·0.67)² = 0.0366639075 → 0.036664 (half up); 7 × … = 0.08554912… → 0.085549
    expect(ex.feeFor(fee, 3_000_000n, 330_000n)).toBe(36_664n);
    expect(ex.feeFor(fee, 7_000_000n, 330_000n)).toBe(85_549n);
    expect(ex.feeFor(ex.markets[0]!, 100_000_000n, 500_000n)).toBe(0n);
  });

  it('charges the taker in collateral and reports fee_rate_bps; makers pay nothing', () => {
    const { ex, events } = setup();
    const m = ex.markets.find((x) => x.feeSchedule)!;
    const tok = m.tokenIds[0];
    const { ask } = tops(ex, tok);
    const size = micros(ex.bookSummary(tok)!.asks.at(-1)!.size) < 5_000_000n ? 1_000_000n : 5_000_000n;
    const r = ex.postOrder(order({ who: BOB, tokenId: tok, side: 'BUY', price: ask, shares: size, type: 'FOK' }));
    expect(r.success).toBe(true);
    const p = ask;
    const num = size * 250_000n * (p * (1_000_000n - p)) ** 2n;
    const den = 1_000_000n ** 5n;
    const fee = (num * 2n + den) / (2n * den);
    expect(ex.account(BOB)!.collateral).toBe(fmt(START - (p * size) / 1_000_000n - fee));
    const t = events.find((e) => e.event.event_type === 'trade')!.event as WsUserTrade;
    expect(t).toMatchObject({ fee_rate_bps: '2500', trader_side: 'TAKER' });
    expect(t.maker_orders[0]!.fee_rate_bps).toBe('0');
  });

  it('reserves the worst-case fee of a crossing BUY', () => {
    const { ex } = setup();
    const m = ex.markets.find((x) => x.feeSchedule)!;
    const tok = m.tokenIds[0];
    const { ask } = tops(ex, tok);
    const poor = wallet('poor');
    const shares = 5_000_000n;
    const notional = (ask * shares) / 1_000_000n;
    ex.fund(poor, notional - START); // exactly the notional, nothing for the fee
    const r = ex.postOrder(order({ who: poor, tokenId: tok, side: 'BUY', price: ask, shares, type: 'FOK' }));
    expect(r).toMatchObject({ success: false, errorMsg: 'not enough balance / allowance' });
  });
});
