/**
 * Worst acceptable price of a market (FOK/FAK) order, found by walking the book the way the official
 * clients do (clob-client-v2 `calculateBuyMarketPrice` / `calculateSellMarketPrice`, PROTOCOL.md §5.3,
 * vectors/market_price_walk.json). `levels` is one side of `GET /book` exactly as returned (asks for a
 * BUY, bids for a SELL), the BEST level LAST, so the walk runs from the end. A BUY accumulates
 * size × price (pUSD) until the sum reaches `amount` (pUSD to spend); a SELL accumulates size (shares)
 * until it reaches `amount` (shares to sell). The price of the level where the sum first reaches the
 * amount is the answer. Not enough liquidity: FOK → `no match`; FAK → the price of `levels[0]` (the
 * worst level). An empty side → `no match` for both. Exact decimals (bigint), never float arithmetic.
 */

export type MarketOrderKind = 'FOK' | 'FAK';
export type MarketPriceErrorCode = 'no_match' | 'invalid_level' | 'invalid_amount';

export class MarketPriceError extends Error {
  constructor(
    readonly code: MarketPriceErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MarketPriceError';
  }
}

export interface BookLevel {
  readonly price: string;
  readonly size: string;
}

/** value = v / 10^s */
interface Dec {
  v: bigint;
  s: number;
}

const DEC_RE = /^(\d*)(?:\.(\d*))?$/;

function parse(x: string | number, what: string, code: MarketPriceErrorCode): Dec {
  // A JS number is taken by its shortest round-trip repr (0.3 → "0.3").
  const t = typeof x === 'number' ? String(x) : x.trim();
  const m = DEC_RE.exec(t);
  if (!m || (m[1] === '' && !m[2])) throw new MarketPriceError(code, `${what} ${JSON.stringify(x)} is not a plain non-negative decimal`);
  const frac = m[2] ?? '';
  return { v: BigInt((m[1] || '0') + frac), s: frac.length };
}

function scaled(d: Dec, s: number): bigint {
  return d.v * 10n ** BigInt(s - d.s);
}

function add(a: Dec, b: Dec): Dec {
  const s = Math.max(a.s, b.s);
  return { v: scaled(a, s) + scaled(b, s), s };
}

function gte(a: Dec, b: Dec): boolean {
  const s = Math.max(a.s, b.s);
  return scaled(a, s) >= scaled(b, s);
}

/**
 * The limit price (the level's own price string, unchanged) to put on a market order of `amount`
 * (BUY: pUSD to spend; SELL: shares to sell). Throws `MarketPriceError('no_match')` when the side is
 * empty, or for FOK when the whole side cannot absorb `amount`.
 */
export function marketOrderPrice(side: 'BUY' | 'SELL', levels: readonly BookLevel[], amount: string | number, orderType: MarketOrderKind): string {
  const want = parse(amount, 'amount', 'invalid_amount');
  if (want.v <= 0n) throw new MarketPriceError('invalid_amount', 'amount must be greater than zero');
  if (levels.length === 0) throw new MarketPriceError('no_match', 'no match');
  let sum: Dec = { v: 0n, s: 0 };
  for (let i = levels.length - 1; i >= 0; i--) {
    const lvl = levels[i] as BookLevel;
    const price = parse(lvl.price, `level ${i} price`, 'invalid_level');
    const size = parse(lvl.size, `level ${i} size`, 'invalid_level');
    sum = add(sum, side === 'BUY' ? { v: size.v * price.v, s: size.s + price.s } : size);
    if (gte(sum, want)) return lvl.price;
  }
  if (orderType === 'FOK') throw new MarketPriceError('no_match', 'no match');
  const worst = levels[0] as BookLevel;
  parse(worst.price, 'level 0 price', 'invalid_level');
  return worst.price;
}
