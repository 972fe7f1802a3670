/**
 * Exact decimal arithmetic for money. Values are bigint counts of 10^-6 units, the precision of
 * Polymarket's collateral and outcome tokens, so amounts, balances, fees and PnL never touch floats.
 */
export const SCALE = 6;
const ONE = 10n ** BigInt(SCALE);
export const MICROS_PER_UNIT = ONE;

export type Rounding = 'down' | 'up' | 'half-up';

const DECIMAL_RE = /^(-)?(\d*)(?:\.(\d*))?$/;

/** Parses a decimal string or a finite number (via its shortest repr) into micro units. */
export function toMicros(value: string | number | bigint, rounding: Rounding = 'half-up'): bigint {
  if (typeof value === 'bigint') return value * ONE;
  let s: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
    s = numberToPlainString(value);
  } else {
    s = value.trim();
  }
  const m = DECIMAL_RE.exec(s);
  if (!m || (m[2] === '' && (m[3] === undefined || m[3] === ''))) throw new RangeError(`not a decimal: ${JSON.stringify(value)}`);
  const neg = m[1] === '-';
  const int = BigInt(m[2] || '0');
  const fracDigits = m[3] ?? '';
  const kept = fracDigits.slice(0, SCALE).padEnd(SCALE, '0');
  let micros = int * ONE + BigInt(kept);
  const rest = fracDigits.slice(SCALE);
  if (rest.length > 0 && /[1-9]/.test(rest)) {
    if (rounding === 'up' && !neg) micros += 1n;
    else if (rounding === 'half-up' && rest.charCodeAt(0) >= 53) micros += 1n;
  }
  return neg ? -micros : micros;
}

function numberToPlainString(n: number): string {
  const s = String(n);
  if (!/e/i.test(s)) return s;
  // Exponent form (tiny or huge numbers): fall back to fixed with enough digits.
  return n.toFixed(SCALE + 6);
}

/** Formats micro units as a plain decimal string without trailing zeros ("1.5", "-0.25", "3"). */
export function fromMicros(micros: bigint): string {
  const neg = micros < 0n;
  const abs = neg ? -micros : micros;
  const int = abs / ONE;
  const frac = (abs % ONE).toString().padStart(SCALE, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

/** Formats with a fixed number of decimals (≤ 6), rounding half-up. */
export function formatMicros(micros: bigint, decimals: number): string {
  const step = 10n ** BigInt(SCALE - decimals);
  const rounded = roundTo(micros, step, 'half-up');
  const s = fromMicros(rounded);
  if (decimals === 0) return s;
  const [i, f = ''] = s.split('.');
  return `${i}.${f.padEnd(decimals, '0')}`;
}

function divRound(n: bigint, d: bigint, rounding: Rounding): bigint {
  const neg = n < 0n !== d < 0n;
  const an = n < 0n ? -n : n;
  const ad = d < 0n ? -d : d;
  let q = an / ad;
  const r = an % ad;
  if (r !== 0n) {
    if (rounding === 'up') q += 1n;
    else if (rounding === 'half-up' && r * 2n >= ad) q += 1n;
  }
  return neg ? -q : q;
}

/** (a × b) in micro units, e.g. price × size = notional. */
export function mulMicros(a: bigint, b: bigint, rounding: Rounding = 'half-up'): bigint {
  return divRound(a * b, ONE, rounding);
}

/** (a ÷ b) in micro units, e.g. notional ÷ size = average price. */
export function divMicros(a: bigint, b: bigint, rounding: Rounding = 'half-up'): bigint {
  if (b === 0n) throw new RangeError('division by zero');
  return divRound(a * ONE, b, rounding);
}

/** Rounds to a multiple of `step` micro units (e.g. a tick of 0.01 = 10_000n). */
export function roundTo(micros: bigint, step: bigint, rounding: Rounding): bigint {
  return divRound(micros, step, rounding) * step;
}

/** Micro units to a JS number, for display and wire fields that are documented as numbers. */
export function microsToNumber(micros: bigint): number {
  return Number(fromMicros(micros));
}
