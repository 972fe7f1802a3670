import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toMicros } from '@polybot/protocol';
import { L2Book, MAX_LEVEL_MICROS, microsToString, midMicros, parseMicros } from '../src/book.js';

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
    expect(b.top()).toEqual({ bid: 490_000, ask: 510_000, bidSize: 20_000_000, askSize: 1_500_000 });
    expect(b.isCrossed()).toBe(false);
    b.applyChange('BUY', '0.51', '1', 4);
    expect(b.isCrossed()).toBe(true);
    expect(midMicros(490_000, 510_000)).toBe(500_000);
    expect(midMicros(490_000, 510_001)).toBe(500_001);
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
        // Best prices and their sizes from the kept order, as a scan of the model finds them.
        const micros = (x: number) => Math.round(x * 1e6);
        expect(b.top()).toEqual({
          bid: bids[0] ? micros(bids[0][0]!) : null,
          ask: asks[0] ? micros(asks[0][0]!) : null,
          bidSize: bids[0] ? micros(bids[0][1]!) : 0,
          askSize: asks[0] ? micros(asks[0][1]!) : 0,
        });
        expect(b.isCrossed()).toBe(bids.length > 0 && asks.length > 0 && bids[0]![0]! >= asks[0]![0]!);
      }),
    );
  });

  it('parses venue decimals to exact integer micros like toMicros, and refuses the rest', () => {
    const dec = fc
      .tuple(fc.integer({ min: 0, max: 999_999_999 }), fc.option(fc.stringMatching(/^[0-9]{0,9}$/), { nil: undefined }))
      .map(([i, f]) => (f === undefined ? String(i) : `${i}.${f}`));
    fc.assert(
      fc.property(dec, (s) => {
        const want = toMicros(s);
        if (want > BigInt(MAX_LEVEL_MICROS)) expect(parseMicros(s)).toBeNaN();
        else expect(parseMicros(s)).toBe(Number(want));
      }),
      { numRuns: 2000 },
    );
    expect(parseMicros('.48')).toBe(480_000);
    expect(parseMicros('0.5000004')).toBe(500_000);
    expect(parseMicros('0.5000005')).toBe(500_001);
    for (const bad of ['', '.', '-1', '1e5', '0x10', '1.2.3', ' 1', '1000000000.5']) expect(parseMicros(bad)).toBeNaN();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_LEVEL_MICROS }), (m) => {
        expect(parseMicros(microsToString(m))).toBe(m);
      }),
    );
  });

  it('depth read between any updates equals a fresh sort of the levels', () => {
    const price = fc.integer({ min: 1, max: 99 }).map((c) => (c / 100).toFixed(2));
    const op = fc.record({ side: fc.constantFrom('BUY' as const, 'SELL' as const), price, size: fc.constantFrom('0', '1', '7.5', '300') });
    fc.assert(
      fc.property(fc.array(fc.tuple(op, fc.boolean()), { maxLength: 120 }), fc.integer({ min: 1, max: 30 }), (ops, depth) => {
        const b = new L2Book('t', '0.01');
        b.applySnapshot([{ price: '0.3', size: '1' }], [{ price: '0.7', size: '1' }], 1);
        const expected = (m: ReadonlyMap<number, number>, desc: boolean) =>
          [...m]
            .sort((x, y) => (desc ? y[0] - x[0] : x[0] - y[0]))
            .slice(0, depth)
            .map(([p, s]) => [p / 1e6, s / 1e6]);
        for (const [o, read] of ops) {
          b.applyChange(o.side, o.price, o.size, 2);
          if (read) expect(b.levels(depth)).toEqual({ bids: expected(b.bids, true), asks: expected(b.asks, false) });
        }
        expect(b.levels(depth)).toEqual({ bids: expected(b.bids, true), asks: expected(b.asks, false) });
      }),
      { numRuns: 300 },
    );
  });
});
