/**
 * Tick-size comparison (clob-client `isTickSizeSmaller`, vectors/price_tick_validity.json): true when
 * tick `a` is strictly smaller than tick `b`. Exact decimal comparison (the official client compares
 * floats, which agrees for every tick the venue uses). Price validity itself is `priceValid` in order.ts.
 */

const DEC_RE = /^(\d*)(?:\.(\d*))?$/;

function parseTick(x: string | number): { v: bigint; s: number } {
  const t = typeof x === 'number' ? String(x) : x.trim();
  const m = DEC_RE.exec(t);
  if (!m || (m[1] === '' && !m[2])) throw new RangeError(`tick size ${JSON.stringify(x)} is not a plain non-negative decimal`);
  const frac = m[2] ?? '';
  return { v: BigInt((m[1] || '0') + frac), s: frac.length };
}

export function isTickSizeSmaller(a: string | number, b: string | number): boolean {
  const x = parseTick(a);
  const y = parseTick(b);
  const s = Math.max(x.s, y.s);
  return x.v * 10n ** BigInt(s - x.s) < y.v * 10n ** BigInt(s - y.s);
}
