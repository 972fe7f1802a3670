import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { toMicros } from '@polybot/protocol';
import { applyFill, avgPrice } from '../src/positions.js';
import { checkRisk } from '../src/risk.js';

const m = (s: string) => toMicros(s);
const FLAT = { size: 0n, cost: 0n, realized: 0n };

describe('position math', () => {
  it('averages buys and realizes sells against the average cost', () => {
    let p = applyFill(FLAT, 'BUY', m('10'), m('5.6'));
    p = applyFill(p, 'BUY', m('5'), m('2.95'));
    expect(p).toEqual({ size: m('15'), cost: m('8.55'), realized: 0n });
    expect(avgPrice(p)).toBe(m('0.57'));
    p = applyFill(p, 'SELL', m('5'), m('3'));
    expect(p).toEqual({ size: m('10'), cost: m('5.7'), realized: m('0.15') });
    p = applyFill(p, 'SELL', m('10'), m('4'));
    expect(p).toEqual({ size: 0n, cost: 0n, realized: m('-1.55') });
    expect(avgPrice(p)).toBe(0n);
  });

  it('never oversells: a sell beyond the holding realizes only what was held', () => {
    const p = applyFill(applyFill(FLAT, 'BUY', m('3'), m('1.5')), 'SELL', m('5'), m('3'));
    expect(p).toEqual({ size: 0n, cost: 0n, realized: m('1.5') });
  });

  it('conserves money: buying and selling everything realizes proceeds − cost exactly', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 99 })), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 7 }), (buys, sellCents, parts) => {
        let p = FLAT;
        let spent = 0n;
        for (const [centiShares, cents] of buys) {
          const shares = BigInt(centiShares) * 10_000n;
          const usdc = (shares * BigInt(cents)) / 100n;
          spent += usdc;
          p = applyFill(p, 'BUY', shares, usdc);
        }
        // Sell in several slices, the last one taking the rest.
        let proceeds = 0n;
        const total = p.size;
        for (let i = 0; i < parts; i++) {
          const q = i === parts - 1 ? p.size : total / BigInt(parts);
          const usdc = (q * BigInt(sellCents)) / 100n;
          proceeds += usdc;
          p = applyFill(p, 'SELL', q, usdc);
        }
        expect(p.size).toBe(0n);
        expect(p.cost).toBe(0n);
        expect(p.realized).toBe(proceeds - spent);
      }),
      { numRuns: 300 },
    );
  });
});

describe('risk', () => {
  const market = { conditionId: '0xm', negRisk: false, tickSize: '0.01', minOrderSize: '5', active: true, closed: false };
  const limits = { maxOrderSize: m('100'), maxPosition: m('500'), maxNotional: m('100') };
  const sig = { type: 'signal', id: 'sig-12345678', strategy: 's', token_id: '1', market: '0xm', side: 'BUY' as const, price: 0.5, size: 10, order_type: 'GTC' as const, v: 1, src: 't', seq: 1, ts: 0 };
  const none = { held: 0n, openBuy: 0n, openSell: 0n };

  it('admits an order on the grid and computes the exact notional', () => {
    expect(checkRisk(sig, market, none, limits)).toMatchObject({ ok: true, price: m('0.5'), size: m('10'), notional: m('5') });
  });

  it('checks notional exactly at the boundary', () => {
    expect(checkRisk({ ...sig, price: 0.99, size: 101 }, market, none, { ...limits, maxOrderSize: m('1000'), maxNotional: m('99.99') })).toMatchObject({ ok: true });
    expect(checkRisk({ ...sig, price: 0.99, size: 101.01 }, market, none, { ...limits, maxOrderSize: m('1000'), maxNotional: m('99.99') })).toMatchObject({ ok: false, code: 'max_notional' });
  });

  it('counts open sells against what may still be sold', () => {
    expect(checkRisk({ ...sig, side: 'SELL', size: 10 }, market, { held: m('15'), openBuy: 0n, openSell: m('5') }, limits)).toMatchObject({ ok: true });
    expect(checkRisk({ ...sig, side: 'SELL', size: 10.01 }, market, { held: m('15'), openBuy: 0n, openSell: m('5') }, limits)).toMatchObject({ ok: false, code: 'insufficient_position' });
  });

  it('refuses prices that are not exact decimals on the grid', () => {
    expect(checkRisk({ ...sig, price: 0.1 + 0.2 }, market, none, limits)).toMatchObject({ ok: false, code: 'price_off_tick' });
    expect(checkRisk({ ...sig, price: 1e-7 }, market, none, limits)).toMatchObject({ ok: false, code: 'price_off_tick' });
  });
});
