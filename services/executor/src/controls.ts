import { fromMicros, mulMicros, toMicros, type Side } from '@polybot/protocol';

/**
 * Portfolio-level risk and the trading state. ACTIVE trades normally; REDUCING takes only orders
 * that shrink a position (sells of what is held); HALTED takes no new orders at all. Cancels are
 * never blocked. The daily loss limit moves ACTIVE to REDUCING by itself.
 */
export type TradingState = 'ACTIVE' | 'REDUCING' | 'HALTED';
export const TRADING_STATES: readonly TradingState[] = ['ACTIVE', 'REDUCING', 'HALTED'];

/** Limits in micro units (pUSD); `maxOpenOrders` a count; `priceBand` 0 = off. */
export interface PortfolioLimits {
  maxOpenOrders: number;
  maxMarketExposure: bigint;
  maxTotalExposure: bigint;
  maxDailyLoss: bigint;
  priceBand: bigint;
}

/** Limits on the wire and in SQLite: decimal strings, so nothing goes through floats. */
export interface LimitsWire {
  max_open_orders: number;
  max_market_exposure: string;
  max_total_exposure: string;
  max_daily_loss: string;
  price_band: string;
}

export const limitsToWire = (l: PortfolioLimits): LimitsWire => ({
  max_open_orders: l.maxOpenOrders,
  max_market_exposure: fromMicros(l.maxMarketExposure),
  max_total_exposure: fromMicros(l.maxTotalExposure),
  max_daily_loss: fromMicros(l.maxDailyLoss),
  price_band: fromMicros(l.priceBand),
});

const DECIMAL = /^[0-9]+(\.[0-9]{1,6})?$/;

/** Applies a partial update; a bad value is refused with the field named and nothing changes. */
export function mergeLimits(cur: PortfolioLimits, patch: Partial<LimitsWire>): PortfolioLimits | string {
  const next = { ...cur };
  if (patch.max_open_orders !== undefined) {
    if (!Number.isInteger(patch.max_open_orders) || patch.max_open_orders < 0 || patch.max_open_orders > 100_000) return 'max_open_orders must be an integer 0..100000';
    next.maxOpenOrders = patch.max_open_orders;
  }
  const dec = (k: keyof LimitsWire, v: unknown): bigint | string => (typeof v === 'string' && DECIMAL.test(v) ? toMicros(v) : `${k} must be a decimal string like "250" or "0.05"`);
  for (const [k, field] of [
    ['max_market_exposure', 'maxMarketExposure'],
    ['max_total_exposure', 'maxTotalExposure'],
    ['max_daily_loss', 'maxDailyLoss'],
    ['price_band', 'priceBand'],
  ] as const) {
    const v = patch[k];
    if (v === undefined) continue;
    const m = dec(k, v);
    if (typeof m === 'string') return m;
    if (k === 'price_band' && m > 1_000_000n) return 'price_band must be between 0 and 1';
    next[field] = m;
  }
  return next;
}

/** What the portfolio holds and has working right now (micros). */
export interface PortfolioView {
  openOrders: number;
  /** Cost of positions plus open buy notional in the signal's market. */
  marketExposure: bigint;
  totalExposure: bigint;
  /** Realized PnL since the start of the UTC day (negative = loss). */
  realizedToday: bigint;
  /** The token's current top of book, when known. */
  quote?: { bid: bigint | null; ask: bigint | null };
}

export interface OrderIntent {
  side: Side;
  price: bigint;
  size: bigint;
  /** Shares of this token the strategy holds and has not offered yet. */
  freeToSell: bigint;
}

export type PortfolioCode =
  | 'trading_halted'
  | 'reducing_only'
  | 'daily_loss_limit'
  | 'max_open_orders'
  | 'max_market_exposure'
  | 'max_total_exposure'
  | 'price_band';

export type PortfolioDecision = { ok: true } | { ok: false; code: PortfolioCode; reason: string };

const no = (code: PortfolioCode, reason: string): PortfolioDecision => ({ ok: false, code, reason });

/** The state the limits put trading in: a day's loss past the limit means reduce-only. */
export function effectiveState(state: TradingState, view: Pick<PortfolioView, 'realizedToday'>, limits: PortfolioLimits): TradingState {
  if (state === 'ACTIVE' && limits.maxDailyLoss > 0n && -view.realizedToday >= limits.maxDailyLoss) return 'REDUCING';
  return state;
}

/** Portfolio checks after the per-order ones (`checkRisk`); every denial has a code and says what to change. */
export function checkPortfolio(o: OrderIntent, state: TradingState, view: PortfolioView, limits: PortfolioLimits): PortfolioDecision {
  if (state === 'HALTED') return no('trading_halted', 'trading is halted (kill switch); resume it with trading.resume on executor.rep');
  const reduces = o.side === 'SELL' && o.size <= o.freeToSell;
  const eff = effectiveState(state, view, limits);
  if (eff === 'REDUCING' && !reduces) {
    if (state === 'ACTIVE') {
      return no(
        'daily_loss_limit',
        `today's realized loss ${fromMicros(-view.realizedToday)} pUSD reached POLYBOT_RISK_MAX_DAILY_LOSS ${fromMicros(limits.maxDailyLoss)}: only orders that reduce positions until tomorrow (UTC) or a higher limit`,
      );
    }
    return no('reducing_only', 'trading is reduce-only: only sells of held shares are taken; trading.resume on executor.rep lifts it');
  }
  if (view.openOrders >= limits.maxOpenOrders) {
    return no('max_open_orders', `${view.openOrders} orders are open, the limit is ${limits.maxOpenOrders} (POLYBOT_RISK_MAX_OPEN_ORDERS)`);
  }
  if (o.side === 'BUY') {
    const notional = mulMicros(o.price, o.size);
    if (view.marketExposure + notional > limits.maxMarketExposure) {
      return no(
        'max_market_exposure',
        `exposure in this market would reach ${fromMicros(view.marketExposure + notional)} pUSD, above POLYBOT_RISK_MAX_MARKET_EXPOSURE ${fromMicros(limits.maxMarketExposure)}`,
      );
    }
    if (view.totalExposure + notional > limits.maxTotalExposure) {
      return no(
        'max_total_exposure',
        `total exposure would reach ${fromMicros(view.totalExposure + notional)} pUSD, above POLYBOT_RISK_MAX_TOTAL_EXPOSURE ${fromMicros(limits.maxTotalExposure)}`,
      );
    }
  }
  // A limit far through the book is a fat finger: BUY no higher than ask + band, SELL no lower than bid − band.
  const q = view.quote;
  if (limits.priceBand > 0n && q) {
    if (o.side === 'BUY' && q.ask !== null && o.price > q.ask + limits.priceBand) {
      return no('price_band', `BUY at ${fromMicros(o.price)} is more than ${fromMicros(limits.priceBand)} above the best ask ${fromMicros(q.ask)} (POLYBOT_RISK_PRICE_BAND)`);
    }
    if (o.side === 'SELL' && q.bid !== null && o.price < q.bid - limits.priceBand) {
      return no('price_band', `SELL at ${fromMicros(o.price)} is more than ${fromMicros(limits.priceBand)} below the best bid ${fromMicros(q.bid)} (POLYBOT_RISK_PRICE_BAND)`);
    }
  }
  return { ok: true };
}

/** UTC day number of a time (ms), for the daily loss window. */
export const utcDay = (ms: number): number => Math.floor(ms / 86_400_000);
