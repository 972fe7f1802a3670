import { randomBytes } from 'node:crypto';
import { TypedDataEncoder, type BaseWallet, type TypedDataDomain, type TypedDataField } from 'ethers';
import type { SignedOrderV2 } from './schemas.js';

/**
 * CLOB V2 orders: amounts by the venue's rounding rules (PROTOCOL.md §5.3) and EIP-712 signing
 * (§5.1–5.2). All amount math is exact decimal arithmetic on bigint; nothing here touches floats,
 * so a price of 0.56 means exactly 56/100 and the base units match the official clients' output.
 */

export type OrderSide = 'BUY' | 'SELL';
export type VenueOrderType = 'GTC' | 'GTD' | 'FOK' | 'FAK';

export const POLYGON_CHAIN_ID = 137;
export const EXCHANGE_V2 = '0xE111180000d2663C0091e4f400237545B87B996B';
export const NEG_RISK_EXCHANGE_V2 = '0xe2222d279d744050d28e00520010520000310F59';
export const ZERO_BYTES32 = `0x${'0'.repeat(64)}`;
/** Outcome tokens and pUSD both have 6 decimals. */
export const TOKEN_DECIMALS = 6;

export const ORDER_V2_TYPES: Record<string, TypedDataField[]> = {
  Order: [
    { name: 'salt', type: 'uint256' },
    { name: 'maker', type: 'address' },
    { name: 'signer', type: 'address' },
    { name: 'tokenId', type: 'uint256' },
    { name: 'makerAmount', type: 'uint256' },
    { name: 'takerAmount', type: 'uint256' },
    { name: 'side', type: 'uint8' },
    { name: 'signatureType', type: 'uint8' },
    { name: 'timestamp', type: 'uint256' },
    { name: 'metadata', type: 'bytes32' },
    { name: 'builder', type: 'bytes32' },
  ],
};

export type OrderBuildErrorCode = 'invalid_token' | 'invalid_price' | 'invalid_size' | 'invalid_tick_size' | 'invalid_expiration' | 'zero_amount';

export class OrderBuildError extends Error {
  constructor(
    readonly code: OrderBuildErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OrderBuildError';
  }
}

// ---------------------------------------------------------------- exact decimals

/** value = v / 10^s, kept normalised (no trailing zeros in the fraction). */
interface Dec {
  v: bigint;
  s: number;
}

const pow10 = (n: number) => 10n ** BigInt(n);

function norm(d: Dec): Dec {
  let { v, s } = d;
  while (s > 0 && v % 10n === 0n) {
    v /= 10n;
    s--;
  }
  return { v, s };
}

const DEC_RE = /^(\d*)(?:\.(\d*))?$/;

function parseDec(x: string | number, what: string, code: OrderBuildErrorCode): Dec {
  // A JS number is taken by its shortest round-trip repr, which is what a user typed (0.56 → "0.56").
  const s = typeof x === 'number' ? String(x) : x.trim();
  const m = DEC_RE.exec(s);
  if (!m || (m[1] === '' && !m[2])) throw new OrderBuildError(code, `${what} ${JSON.stringify(x)} is not a plain non-negative decimal`);
  const frac = m[2] ?? '';
  return norm({ v: BigInt((m[1] || '0') + frac), s: frac.length });
}

function fmtDec(d: Dec): string {
  const neg = d.v < 0n;
  const abs = (neg ? -d.v : d.v).toString().padStart(d.s + 1, '0');
  const int = abs.slice(0, abs.length - d.s);
  const frac = abs.slice(abs.length - d.s);
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

function cmp(a: Dec, b: Dec): number {
  const s = Math.max(a.s, b.s);
  const x = a.v * pow10(s - a.s);
  const y = b.v * pow10(s - b.s);
  return x < y ? -1 : x > y ? 1 : 0;
}

type Mode = 'down' | 'up' | 'normal';

/** Rounds to `k` decimals; like the official clients, a value already that short is untouched. */
function roundDec(d: Dec, k: number, mode: Mode): Dec {
  if (d.s <= k) return d;
  const f = pow10(d.s - k);
  let q = d.v / f;
  const r = d.v % f;
  if (r !== 0n && (mode === 'up' || (mode === 'normal' && r * 2n >= f))) q += 1n;
  return norm({ v: q, s: k });
}

function mulDec(a: Dec, b: Dec): Dec {
  return norm({ v: a.v * b.v, s: a.s + b.s });
}

/** ceil(a / b) at `k` decimals. */
function divUp(a: Dec, b: Dec, k: number): Dec {
  const num = a.v * pow10(b.s + k);
  const den = b.v * pow10(a.s);
  let q = num / den;
  if (num % den !== 0n) q += 1n;
  return norm({ v: q, s: k });
}

/**
 * The clients' amount normalisation: more than `A` decimals → round up at A+4 (in the clients this
 * absorbs float noise), and if still longer → round down at A.
 */
function normaliseAmount(x: Dec, a: number): Dec {
  if (x.s <= a) return x;
  const up = roundDec(x, a + 4, 'up');
  return up.s > a ? roundDec(up, a, 'down') : up;
}

function toBaseUnits(d: Dec): bigint {
  if (d.s > TOKEN_DECIMALS) throw new OrderBuildError('invalid_size', `${fmtDec(d)} has more than ${TOKEN_DECIMALS} decimals`);
  return d.v * pow10(TOKEN_DECIMALS - d.s);
}

// ---------------------------------------------------------------- amounts

export interface RoundingConfig {
  price: number;
  size: number;
  amount: number;
}

/** Decimals of price / size / amount per tick size (clob-client-v2 `roundingConfig.ts`). */
export const ROUNDING_CONFIG: Readonly<Record<string, RoundingConfig>> = Object.freeze({
  '0.1': { price: 1, size: 2, amount: 3 },
  '0.01': { price: 2, size: 2, amount: 4 },
  '0.001': { price: 3, size: 2, amount: 5 },
  '0.0001': { price: 4, size: 2, amount: 6 },
  '0.005': { price: 3, size: 2, amount: 5 },
  '0.0025': { price: 4, size: 2, amount: 6 },
});

export type DecimalInput = string | number;

/** Canonical tick string ("0.010" and 0.01 both → "0.01"); throws for a tick the venue does not use. */
export function normaliseTickSize(tickSize: DecimalInput): string {
  const t = fmtDec(parseDec(tickSize, 'tick size', 'invalid_tick_size'));
  if (!ROUNDING_CONFIG[t]) throw new OrderBuildError('invalid_tick_size', `unsupported tick size ${JSON.stringify(tickSize)} (known: ${Object.keys(ROUNDING_CONFIG).join(', ')})`);
  return t;
}

function roundingFor(tickSize: DecimalInput): RoundingConfig {
  return ROUNDING_CONFIG[normaliseTickSize(tickSize)] as RoundingConfig;
}

/** Venue rule: tick ≤ price ≤ 1 − tick and price an exact multiple of the tick. */
export function priceValid(price: DecimalInput, tickSize: DecimalInput): boolean {
  let p: Dec;
  let t: Dec;
  try {
    p = parseDec(price, 'price', 'invalid_price');
    t = parseDec(normaliseTickSize(tickSize), 'tick size', 'invalid_tick_size');
  } catch {
    return false;
  }
  const one: Dec = { v: 1n, s: 0 };
  const maxP: Dec = norm({ v: pow10(t.s) - t.v, s: t.s });
  if (cmp(p, t) < 0 || cmp(p, maxP) > 0 || cmp(p, one) >= 0) return false;
  const s = Math.max(p.s, t.s);
  return (p.v * pow10(s - p.s)) % (t.v * pow10(s - t.s)) === 0n;
}

export interface RawAmounts {
  /** Base units (6 decimals) as integer strings, as they are signed and sent. */
  makerAmount: string;
  takerAmount: string;
}

function positive(d: Dec, what: string, code: OrderBuildErrorCode): Dec {
  if (d.v <= 0n) throw new OrderBuildError(code, `${what} must be greater than zero`);
  return d;
}

function finish(maker: Dec, taker: Dec): RawAmounts {
  const m = toBaseUnits(maker);
  const t = toBaseUnits(taker);
  if (m <= 0n || t <= 0n) throw new OrderBuildError('zero_amount', 'order rounds to a zero amount');
  return { makerAmount: m.toString(), takerAmount: t.toString() };
}

/**
 * Limit order (GTC/GTD): BUY pays size × price pUSD for size shares, SELL the reverse.
 * Price is rounded half-up to the tick's decimals, size down to 2 decimals.
 */
export function limitOrderAmounts(side: OrderSide, price: DecimalInput, size: DecimalInput, tickSize: DecimalInput): RawAmounts {
  const rc = roundingFor(tickSize);
  const p = positive(roundDec(parseDec(price, 'price', 'invalid_price'), rc.price, 'normal'), 'price', 'invalid_price');
  const shares = positive(roundDec(parseDec(size, 'size', 'invalid_size'), rc.size, 'down'), 'size', 'invalid_size');
  const usdc = normaliseAmount(mulDec(shares, p), rc.amount);
  return side === 'BUY' ? finish(usdc, shares) : finish(shares, usdc);
}

/**
 * Market order (FOK/FAK): `amount` is pUSD to spend for a BUY and shares to sell for a SELL;
 * `price` is the worst acceptable price, rounded down to the tick's decimals.
 */
export function marketOrderAmounts(side: OrderSide, price: DecimalInput, amount: DecimalInput, tickSize: DecimalInput): RawAmounts {
  const rc = roundingFor(tickSize);
  const p = positive(roundDec(parseDec(price, 'price', 'invalid_price'), rc.price, 'down'), 'price', 'invalid_price');
  const maker = positive(roundDec(parseDec(amount, 'amount', 'invalid_size'), rc.size, 'down'), 'amount', 'invalid_size');
  // Division is inexact: ceil at A+4 decimals reproduces the clients' first rounding step exactly.
  const taker = side === 'BUY' ? normaliseAmount(divUp(maker, p, rc.amount + 4), rc.amount) : normaliseAmount(mulDec(maker, p), rc.amount);
  return finish(maker, taker);
}

/**
 * Amounts for a signal-style order where `size` is always shares: limit orders as above; for a
 * FOK/FAK BUY the pUSD to spend is size × price (rounded down by the market rules).
 */
export function orderAmounts(orderType: VenueOrderType, side: OrderSide, price: DecimalInput, size: DecimalInput, tickSize: DecimalInput): RawAmounts {
  if (orderType === 'GTC' || orderType === 'GTD') return limitOrderAmounts(side, price, size, tickSize);
  if (side === 'SELL') return marketOrderAmounts(side, price, size, tickSize);
  const notional = mulDec(parseDec(size, 'size', 'invalid_size'), parseDec(price, 'price', 'invalid_price'));
  return marketOrderAmounts(side, price, fmtDec(notional), tickSize);
}

// ---------------------------------------------------------------- EIP-712

export interface OrderDomainOptions {
  chainId?: number;
  /** Overrides the exchange picked by `negRisk` (e.g. a test deployment). */
  verifyingContract?: string;
}

export function orderDomain(negRisk: boolean, opts: OrderDomainOptions = {}): TypedDataDomain {
  return {
    name: 'Polymarket CTF Exchange',
    version: '2',
    chainId: opts.chainId ?? POLYGON_CHAIN_ID,
    verifyingContract: opts.verifyingContract ?? (negRisk ? NEG_RISK_EXCHANGE_V2 : EXCHANGE_V2),
  };
}

/** The fields that are signed (everything in the POST body's order except expiration and signature). */
export type UnsignedOrderV2 = Omit<SignedOrderV2, 'signature'>;

/** The EIP-712 message of an order: `side` becomes 0 (BUY) / 1 (SELL). */
export function orderMessage(order: UnsignedOrderV2): Record<string, string | number> {
  return {
    salt: BigInt(order.salt).toString(),
    maker: order.maker,
    signer: order.signer,
    tokenId: order.tokenId,
    makerAmount: order.makerAmount,
    takerAmount: order.takerAmount,
    side: order.side === 'BUY' ? 0 : 1,
    signatureType: order.signatureType,
    timestamp: order.timestamp,
    metadata: order.metadata,
    builder: order.builder,
  };
}

/** Everything `ethers.verifyTypedData` / `signTypedData` need for an order. */
export function orderTypedData(order: UnsignedOrderV2, negRisk: boolean, opts: OrderDomainOptions = {}) {
  return { domain: orderDomain(negRisk, opts), types: ORDER_V2_TYPES, message: orderMessage(order) };
}

/** EIP-712 digest of the order = the venue's `orderID`. */
export function orderHash(order: UnsignedOrderV2, negRisk: boolean, opts: OrderDomainOptions = {}): string {
  return TypedDataEncoder.hash(orderDomain(negRisk, opts), ORDER_V2_TYPES, orderMessage(order));
}

/** Signs an order with an EOA key (65-byte signature, v = 27/28), synchronously. */
export function signOrder(wallet: BaseWallet, order: UnsignedOrderV2, negRisk: boolean, opts: OrderDomainOptions = {}): SignedOrderV2 {
  const digest = orderHash(order, negRisk, opts);
  return { ...order, signature: wallet.signingKey.sign(digest).serialized };
}

/** Random salt below 2^53, so it survives JSON as a number (the venue expects a JSON number). */
export function randomSalt(): number {
  return Number(randomBytes(8).readBigUInt64BE() & ((1n << 53n) - 1n));
}

export interface BuildOrderArgs {
  wallet: BaseWallet;
  tokenId: string;
  side: OrderSide;
  /** Limit price; for FOK/FAK the worst acceptable price. */
  price: DecimalInput;
  /** Shares (see `orderAmounts` for FOK/FAK BUY). */
  size: DecimalInput;
  orderType: VenueOrderType;
  tickSize: DecimalInput;
  negRisk: boolean;
  salt?: number;
  timestampMs?: number;
  /** Unix seconds; required for GTD, must be absent or 0 otherwise. */
  expiration?: number;
  chainId?: number;
}

/** Builds and signs a V2 EOA order (maker = signer = the wallet, signatureType 0). */
export function buildSignedOrder(args: BuildOrderArgs): SignedOrderV2 {
  if (!/^[0-9]+$/.test(args.tokenId)) throw new OrderBuildError('invalid_token', `token id ${JSON.stringify(args.tokenId)} is not a decimal integer`);
  if (!priceValid(args.price, args.tickSize)) {
    throw new OrderBuildError('invalid_price', `price ${args.price} is not on the ${args.tickSize} tick grid within [tick, 1 − tick]`);
  }
  const exp = args.expiration ?? 0;
  if (!Number.isSafeInteger(exp) || exp < 0) throw new OrderBuildError('invalid_expiration', `expiration ${exp} is not a unix time in seconds`);
  if (args.orderType === 'GTD' && exp === 0) throw new OrderBuildError('invalid_expiration', 'a GTD order needs an expiration');
  if (args.orderType !== 'GTD' && exp !== 0) throw new OrderBuildError('invalid_expiration', 'only GTD orders may have a non-zero expiration');
  const salt = args.salt ?? randomSalt();
  if (!Number.isSafeInteger(salt) || salt < 0) throw new OrderBuildError('invalid_size', 'salt must be a non-negative integer below 2^53');
  const amounts = orderAmounts(args.orderType, args.side, args.price, args.size, args.tickSize);
  const unsigned: UnsignedOrderV2 = {
    salt,
    maker: args.wallet.address,
    signer: args.wallet.address,
    tokenId: args.tokenId,
    makerAmount: amounts.makerAmount,
    takerAmount: amounts.takerAmount,
    side: args.side,
    signatureType: 0,
    timestamp: String(args.timestampMs ?? Date.now()),
    expiration: String(exp),
    metadata: ZERO_BYTES32,
    builder: ZERO_BYTES32,
  };
  return signOrder(args.wallet, unsigned, args.negRisk, args.chainId === undefined ? {} : { chainId: args.chainId });
}
