import { normaliseTickSize, priceValid } from '@polybot/polymarket';
import { fromMicros, mulMicros, toMicros, type SignalMessage } from '@polybot/protocol';
import type { MarketInfo } from './db.js';

/** Limits in micro units (shares or pUSD). */
export interface RiskLimits {
  maxOrderSize: bigint;
  maxPosition: bigint;
  maxNotional: bigint;
}

/** What a strategy already holds or has working on one token, in micro shares. */
export interface Exposure {
  held: bigint;
  openBuy: bigint;
  openSell: bigint;
}

export type RiskCode =
  | 'unknown_market'
  | 'market_closed'
  | 'market_mismatch'
  | 'invalid_expiration'
  | 'post_only_order_type'
  | 'unsupported_tick_size'
  | 'price_off_tick'
  | 'size_precision'
  | 'size_below_min'
  | 'max_order_size'
  | 'max_notional'
  | 'min_notional'
  | 'max_position'
  | 'insufficient_position';

export type RiskDecision =
  | { ok: true; market: MarketInfo; tickSize: string; price: bigint; size: bigint; notional: bigint }
  | { ok: false; code: RiskCode; reason: string };

/** Venue size precision (shares): the order amount rules keep 2 decimals. */
const SIZE_STEP = 10_000n;
/** A marketable BUY must be worth at least $1 (venue rule). */
const MIN_MARKETABLE_BUY = 1_000_000n;

/**
 * Exact micros of a wire number, or null when it has more than 6 decimals (then it cannot be on
 * any tick grid or lot size). Signals carry numbers; their shortest repr is what the strategy meant.
 */
export function exactMicros(n: number): bigint | null {
  const s = String(n);
  if (!/^\d+(\.\d{1,6})?$/.test(s)) return null;
  return toMicros(s);
}

const deny = (code: RiskCode, reason: string): RiskDecision => ({ ok: false, code, reason });

/** Pre-trade checks; every denial carries a stable code and a sentence saying what to change. */
/** The venue cancels a GTD order 60 s before its expiration (security buffer): anything sooner is dead on arrival. */
const GTD_BUFFER_S = 60;

export function checkRisk(sig: SignalMessage, market: MarketInfo | undefined, exposure: Exposure, limits: RiskLimits, now = Date.now()): RiskDecision {
  if (!market) return deny('unknown_market', `token ${sig.token_id} is not in the scanner's market registry`);
  if (market.closed || !market.active) return deny('market_closed', `market ${market.conditionId} is not open for trading`);
  if (sig.market !== market.conditionId) {
    return deny('market_mismatch', `token ${sig.token_id} belongs to market ${market.conditionId}, not ${sig.market}`);
  }
  if (sig.order_type === 'GTD') {
    const earliest = Math.floor(now / 1000) + GTD_BUFFER_S + 1;
    if (sig.expiration === undefined) return deny('invalid_expiration', `a GTD signal needs an expiration (unix seconds) of at least ${earliest}: the venue keeps a 60 s buffer`);
    if (sig.expiration < earliest) {
      return deny('invalid_expiration', `expiration ${sig.expiration} is less than 61 s ahead (the venue cancels GTD orders 60 s early); use at least ${earliest}`);
    }
  } else if (sig.expiration !== undefined) {
    return deny('invalid_expiration', `only GTD orders take an expiration (this one is ${sig.order_type})`);
  }
  if (sig.post_only && sig.order_type !== 'GTC' && sig.order_type !== 'GTD') {
    return deny('post_only_order_type', `post-only is for resting orders (GTC or GTD), not ${sig.order_type}`);
  }
  let tickSize: string;
  try {
    tickSize = normaliseTickSize(market.tickSize);
  } catch {
    return deny('unsupported_tick_size', `market tick size ${market.tickSize} is not one the venue uses`);
  }
  const price = exactMicros(sig.price);
  if (price === null || !priceValid(fromMicros(price), tickSize)) {
    return deny('price_off_tick', `price ${sig.price} is not a multiple of the tick ${tickSize} within [tick, 1 − tick]`);
  }
  const size = exactMicros(sig.size);
  if (size === null || size % SIZE_STEP !== 0n) return deny('size_precision', `size ${sig.size} has more than 2 decimals`);
  const minSize = toMicros(market.minOrderSize);
  if (size < minSize) return deny('size_below_min', `size ${sig.size} is below the market minimum of ${market.minOrderSize} shares`);
  if (size > limits.maxOrderSize) {
    return deny('max_order_size', `size ${sig.size} exceeds POLYBOT_RISK_MAX_ORDER_SIZE ${fromMicros(limits.maxOrderSize)}`);
  }
  const notional = mulMicros(price, size);
  if (notional > limits.maxNotional) {
    return deny('max_notional', `notional ${fromMicros(notional)} pUSD exceeds POLYBOT_RISK_MAX_NOTIONAL ${fromMicros(limits.maxNotional)}`);
  }
  if (sig.side === 'BUY') {
    if ((sig.order_type === 'FOK' || sig.order_type === 'FAK') && notional < MIN_MARKETABLE_BUY) {
      return deny('min_notional', `a ${sig.order_type} BUY must be worth at least 1 pUSD (got ${fromMicros(notional)})`);
    }
    const after = exposure.held + exposure.openBuy + size;
    if (after > limits.maxPosition) {
      return deny(
        'max_position',
        `position would reach ${fromMicros(after)} shares (held ${fromMicros(exposure.held)}, open buys ${fromMicros(exposure.openBuy)}), above POLYBOT_RISK_MAX_POSITION ${fromMicros(limits.maxPosition)}`,
      );
    }
  } else {
    const free = exposure.held - exposure.openSell;
    if (size > free) {
      return deny('insufficient_position', `selling ${sig.size} shares but only ${fromMicros(free > 0n ? free : 0n)} are held and not already offered`);
    }
  }
  return { ok: true, market, tickSize, price, size, notional };
}
