import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { L2Book, midMicros } from '../src/book.js';

describe('L2Book', () => {
  it('normalizes venue order (best LAST) to best first and treats "0.50" and ".5" as one level', () => {
    const b = new L2Book('t', '0.01');
    b.applySnapshot(
      [
        { price: '0.48', size: '10' },
        { price: '0.49', size: '20' },
        { price: '.5', size: '30' },
      ],
      [
        { price: '0.53', size: '5' },
        { price: '0.52', size: '6' },
      ],
      1,
    );
    expect(b.levels(20)).toEqual({ bids: [[0.5, 30], [0.49, 20], [0.48, 10]], asks: [[0.52, 6], [0.53, 5]] });
    b.applyChange('BUY', '0.50', '0', 2);
    b.applyChange('SELL', '0.510', '1.5', 3);
    expect(b.top()).toEqual({ bid: 490_000n, ask: 510_000n, bidSize: 20_000_000n, askSize: 1_500_000n });
    expect(b.isCrossed()).toBe(false);
    b.applyChange('BUY', '0.51', '1', 4);
    expect(b.isCrossed()).toBe(true);
    expect(midMicros(490_000n, 510_000n)).toBe(500_000n);
  });

  it('matches a simple model under random level updates', () => {
    const price = fc.integer({ min: 1, max: 99 }).map((c) => (c / 100).toFixed(2));
    const op = fc.record({ side: fc.constantFrom('BUY' as const, 'SELL' as const), price, size: fc.constantFrom('0', '1', '2.5', '100.000001') });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const b = new L2Book('t', '0.01');
        b.applySnapshot([], [], 0);
        const model = { BUY: new Map<string, number>(), SELL: new Map<string, number>() };
        for (const o of ops) {
          b.applyChange(o.side, o.price, o.size, 1);
          const key = Number(o.price).toFixed(2);
          if (Number(o.size) === 0) model[o.side].delete(key);
          else model[o.side].set(key, Number(o.size));
        }
        const bids = [...model.BUY.entries()].map(([p, s]) => [Number(p), s]).sort((x, y) => y[0]! - x[0]!);
        const asks = [...model.SELL.entries()].map(([p, s]) => [Number(p), s]).sort((x, y) => x[0]! - y[0]!);
        expect(b.levels(1000)).toEqual({ bids, asks });
        expect(b.levels(3).bids).toEqual(bids.slice(0, 3));
      }),
    );
  });
});
