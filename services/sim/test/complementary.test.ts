import type { PostOrderBody } from '@polybot/polymarket';
import { toMicros as micros } from '@polybot/protocol';
import { describe, expect, it } from 'vitest';
import { ERR_FOK, Exchange, type UserEvent } from '../src/exchange.js';
import { engineOrder } from './engine-orders.js';

const T0 = 1_900_000_000_000;
const START = 1_000_000_000n; // 1000 pUSD
const alice = `0x${'a1'.repeat(20)}`;
const bob = `0x${'b0'.repeat(20)}`;

function order(who: string, tokenId: string, side: 'BUY' | 'SELL', price: bigint, shares: bigint, type: 'GTC' | 'FAK' | 'FOK'): PostOrderBody {
  return engineOrder({ who, tokenId, side, price, shares, type, timestampMs: T0 });
}

/** Market 0 (no fees) at fair 0.50: both tokens quoted 0.49 / 0.51 by the makers. */
function world() {
  const ex = new Exchange({ seed: 11, markets: 4, startBalance: START, timers: false, now: () => T0, negRisk: false });
  const m = ex.markets[0];
  if (!m || m.feeSchedule) throw new Error('market 0 should be fee-free');
  ex.setFair(m.gammaId, 0.5);
  const [yes, no] = m.tokenIds;
  const events: UserEvent[] = [];
  ex.onUser((e) => events.push(e));
  const bal = (who: string) => {
    const a = ex.account(who);
    return {
      collateral: micros(a?.collateral ?? '0'),
      locked: micros(a?.lockedCollateral ?? '0'),
      yes: micros(a?.positions[yes] ?? '0'),
      no: micros(a?.positions[no] ?? '0'),
    };
  };
  const best = (t: string, side: 'bids' | 'asks') => {
    const lv = ex.bookSummary(t)?.[side] ?? [];
    const top = lv[lv.length - 1];
    return top ? { price: micros(top.price), size: micros(top.size) } : undefined;
  };
  ex.ensureAccount(alice);
  ex.ensureAccount(bob);
  return { ex, m, yes, no, events, bal, best };
}

describe('complementary matching (mint / merge)', () => {
  it('mint: a YES BUY meets a resting NO BUY with p + q ≥ 1; both pay their price, exactly', () => {
    const { ex, yes, no, events, bal, best } = world();
    expect(best(yes, 'asks')?.price).toBe(510_000n);
    expect(best(no, 'asks')?.price).toBe(510_000n);
    // Bob bids 0.50 for NO (inside the maker spread: it rests).
    const rb = ex.postOrder(order(bob, no, 'BUY', 500_000n, 10_000_000n, 'GTC'));
    expect(rb).toMatchObject({ success: true, status: 'live' });
    expect(bal(bob).locked).toBe(5_000_000n);
    // Alice buys 10 YES at up to 0.52: the NO bid at 0.50 is an ask at 0.50, better than the 0.51 ask.
    const ra = ex.postOrder(order(alice, yes, 'BUY', 520_000n, 10_000_000n, 'FAK'));
    expect(ra).toMatchObject({ success: true, status: 'matched', makingAmount: '5', takingAmount: '10' });
    expect(bal(alice)).toEqual({ collateral: START - 5_000_000n, locked: 0n, yes: 10_000_000n, no: 0n });
    expect(bal(bob)).toEqual({ collateral: START - 5_000_000n, locked: 0n, yes: 0n, no: 10_000_000n });
    // 10 new sets backed by exactly 10 pUSD from the two buyers.
    const trade = events.find((e) => e.address === alice && e.event.event_type === 'trade')?.event;
    expect(trade).toMatchObject({ asset_id: yes, side: 'BUY', price: '0.5', size: '10', outcome: 'Yes', trader_side: 'TAKER' });
    const mo = trade && 'maker_orders' in trade ? trade.maker_orders : [];
    expect(mo).toEqual([expect.objectContaining({ asset_id: no, outcome: 'No', price: '0.5', matched_amount: '10', side: 'BUY', maker_address: bob })]);
    expect(events.some((e) => e.address === bob && e.event.event_type === 'trade' && e.event.trader_side === 'MAKER')).toBe(true);
    expect(events.some((e) => e.address === bob && e.event.event_type === 'order' && e.event.status === 'MATCHED')).toBe(true);
    expect(ex.bookSummary(no)?.bids.find((l) => l.price === '0.5')).toBeUndefined();
  });

  it('mint at an uneven pair: the taker pays 1 − q (≤ its limit), the maker q', () => {
    const { ex, yes, no, bal } = world();
    ex.postOrder(order(bob, no, 'BUY', 500_000n, 7_000_000n, 'GTC'));
    // YES limit 0.55 ≥ 1 − 0.50; pays 0.50 per share, not its limit.
    ex.postOrder(order(alice, yes, 'BUY', 550_000n, 7_000_000n, 'FOK'));
    expect(bal(alice).collateral).toBe(START - 3_500_000n);
    expect(bal(bob).collateral).toBe(START - 3_500_000n);
    expect(bal(alice).yes + bal(bob).no).toBe(14_000_000n);
  });

  it('merge: a YES SELL meets a resting NO SELL with p + q ≤ 1; each receives its price, exactly', () => {
    const { ex, yes, no, bal, events } = world();
    expect(ex.postOrder(order(alice, yes, 'BUY', 510_000n, 10_000_000n, 'FOK')).success).toBe(true);
    expect(ex.postOrder(order(bob, no, 'BUY', 510_000n, 10_000_000n, 'FOK')).success).toBe(true);
    const a0 = bal(alice);
    const b0 = bal(bob);
    // Bob offers NO at 0.50 (inside the spread); Alice sells YES down to 0.48: 1 − 0.50 = 0.50 beats the 0.49 bid.
    expect(ex.postOrder(order(bob, no, 'SELL', 500_000n, 10_000_000n, 'GTC'))).toMatchObject({ success: true, status: 'live' });
    const r = ex.postOrder(order(alice, yes, 'SELL', 480_000n, 10_000_000n, 'FAK'));
    expect(r).toMatchObject({ success: true, status: 'matched', makingAmount: '10', takingAmount: '5' });
    expect(bal(alice)).toEqual({ ...a0, collateral: a0.collateral + 5_000_000n, yes: 0n });
    expect(bal(bob)).toEqual({ ...b0, collateral: b0.collateral + 5_000_000n, no: 0n });
    expect(ex.account(bob)?.lockedPositions?.[no] ?? '0').toBe('0');
    const trade = events.filter((e) => e.address === alice && e.event.event_type === 'trade').at(-1)?.event;
    expect(trade).toMatchObject({ side: 'SELL', price: '0.5', asset_id: yes });
    const mo = trade && 'maker_orders' in trade ? trade.maker_orders : [];
    expect(mo[0]).toMatchObject({ asset_id: no, outcome: 'No', side: 'SELL', price: '0.5' });
  });

  it('price-time priority: a direct ask at 0.51 goes before a NO bid at 0.49 (same effective price), a better complement first', () => {
    const { ex, yes, no, bal, best, events } = world();
    const direct = best(yes, 'asks') as { price: bigint; size: bigint };
    expect(direct.price).toBe(510_000n);
    ex.postOrder(order(bob, no, 'BUY', 490_000n, 5_000_000n, 'GTC'));
    const want = direct.size + 5_000_000n;
    const r = ex.postOrder(order(alice, yes, 'BUY', 510_000n, want, 'FOK'));
    expect(r.success).toBe(true);
    // One trade at 0.51: the direct level first, Bob's complement order last.
    const trade = events.filter((e) => e.address === alice && e.event.event_type === 'trade').at(-1)?.event;
    const mo = trade && 'maker_orders' in trade ? trade.maker_orders : [];
    expect(trade).toMatchObject({ price: '0.51' });
    expect(mo.at(-1)).toMatchObject({ asset_id: no, price: '0.49', matched_amount: '5', maker_address: bob });
    expect(mo.slice(0, -1).every((o) => o.asset_id === yes)).toBe(true);
    expect(bal(bob).no).toBe(5_000_000n);
    expect(bal(bob).collateral).toBe(START - 2_450_000n);
    expect(bal(alice).collateral).toBe(START - (direct.size * 510_000n) / 1_000_000n - 2_550_000n);
    // A better complement (NO bid 0.50 → 0.50) is taken before the 0.51 asks.
    ex.postOrder(order(bob, no, 'BUY', 500_000n, 5_000_000n, 'GTC'));
    const before = bal(alice);
    ex.postOrder(order(alice, yes, 'BUY', 520_000n, 5_000_000n, 'FAK'));
    expect(bal(alice).collateral).toBe(before.collateral - 2_500_000n);
  });

  it('FOK and FAK count both books; the makers’ mirror quotes are not counted twice', () => {
    const { ex, yes, no, bal, best } = world();
    const direct = best(yes, 'asks') as { price: bigint; size: bigint };
    // Only the direct level at 0.51: the makers' own NO bids at 0.49 do not add to it.
    const over = ex.postOrder(order(alice, yes, 'BUY', 510_000n, direct.size + 1_000_000n, 'FOK'));
    expect(over).toMatchObject({ success: false, errorMsg: ERR_FOK });
    expect(bal(alice).collateral).toBe(START);
    // A user NO bid fills the gap.
    expect(ex.postOrder(order(bob, no, 'BUY', 490_000n, 5_000_000n, 'GTC')).success).toBe(true);
    expect(ex.postOrder(order(alice, yes, 'BUY', 510_000n, direct.size + 5_000_000n, 'FOK'))).toMatchObject({ success: true, errorMsg: '' });
    // FAK with only complement liquidity at its limit: partial fill, rest cancelled.
    ex.postOrder(order(bob, no, 'BUY', 500_000n, 5_000_000n, 'GTC'));
    const fak = ex.postOrder(order(alice, yes, 'BUY', 500_000n, 8_000_000n, 'FAK'));
    expect(fak).toMatchObject({ success: true, takingAmount: '5', makingAmount: '2.5' });
    // FOK that the complement cannot complete: killed, nothing moves.
    ex.postOrder(order(bob, no, 'BUY', 500_000n, 5_000_000n, 'GTC'));
    const snap = [bal(alice), bal(bob)];
    expect(ex.postOrder(order(alice, yes, 'BUY', 500_000n, 6_000_000n, 'FOK'))).toMatchObject({ success: false, errorMsg: ERR_FOK });
    expect([bal(alice), bal(bob)]).toEqual(snap);
  });

  it('the simulated makers never trade with each other, on the complement either; a persisted mint restores', () => {
    const { ex, no, yes } = world();
    for (let i = 0; i < 3000; i++) ex.step();
    expect(ex.stats.trades).toBe(0);
    // A user order on the complement is matched by a maker requote like any resting order.
    ex.postOrder(order(bob, no, 'BUY', 500_000n, 5_000_000n, 'GTC'));
    ex.postOrder(order(alice, yes, 'BUY', 510_000n, 5_000_000n, 'FAK'));
    const snap = JSON.parse(JSON.stringify(ex.toSnapshot()));
    const back = Exchange.fromSnapshot({ seed: 11, markets: 4, startBalance: START, timers: false, now: () => T0, negRisk: false }, snap);
    expect(back.toSnapshot()).toEqual(snap);
  });
});
