import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { divMicros, formatMicros, fromMicros, mulMicros, roundTo, toMicros } from '../src/decimal.js';

describe('decimal', () => {
  it('parses venue decimals exactly', () => {
    expect(toMicros('.48')).toBe(480_000n);
    expect(toMicros('0.5')).toBe(500_000n);
    expect(toMicros('100.0000')).toBe(100_000_000n);
    expect(toMicros('-2.25')).toBe(-2_250_000n);
    expect(toMicros(0.1 + 0.2)).toBe(300_000n); // float noise beyond 6 dp rounds away
    expect(toMicros('1.0000005')).toBe(1_000_001n);
    expect(toMicros('1.0000005', 'down')).toBe(1_000_000n);
    expect(() => toMicros('abc')).toThrow(/not a decimal/);
    expect(() => toMicros('.')).toThrow();
    expect(() => toMicros(Number.NaN)).toThrow();
  });

  it('formats without float artefacts', () => {
    expect(fromMicros(480_000n)).toBe('0.48');
    expect(fromMicros(-1n)).toBe('-0.000001');
    expect(fromMicros(3_000_000n)).toBe('3');
    expect(formatMicros(1_234_567n, 2)).toBe('1.23');
    expect(formatMicros(5_000n, 2)).toBe('0.01');
  });

  it('multiplies and divides money exactly', () => {
    expect(mulMicros(toMicros('0.35'), toMicros('10'))).toBe(toMicros('3.5'));
    expect(divMicros(toMicros('3.5'), toMicros('10'))).toBe(toMicros('0.35'));
    expect(roundTo(toMicros('0.357'), 10_000n, 'down')).toBe(toMicros('0.35'));
    expect(roundTo(toMicros('0.351'), 10_000n, 'up')).toBe(toMicros('0.36'));
  });

  it('round-trips any micro amount through its string (property)', () => {
    fc.assert(fc.property(fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }), (m) => {
      expect(toMicros(fromMicros(m))).toBe(m);
    }));
  });

  it('price × size then ÷ size returns the price on a 0.01 grid (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 1_000_000 }), (cents, hundredths) => {
      const p = BigInt(cents) * 10_000n;
      const s = BigInt(hundredths) * 10_000n;
      expect(divMicros(mulMicros(p, s), s)).toBe(p);
    }));
  });
});
