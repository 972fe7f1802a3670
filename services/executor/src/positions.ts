import { divMicros, fromMicros, toMicros, type Side } from '@polybot/protocol';
import type { PositionRow } from './db.js';

/** A position in micro units (10^-6 shares / pUSD); never floats. */
export interface PositionState {
  size: bigint;
  cost: bigint;
  realized: bigint;
}

export const FLAT: PositionState = { size: 0n, cost: 0n, realized: 0n };

export function fromRow(row: PositionRow | undefined): PositionState {
  if (!row) return FLAT;
  return { size: toMicros(row.size), cost: toMicros(row.cost), realized: toMicros(row.realized_pnl) };
}

/** cost × num ÷ den, rounded half-up (the cost basis of part of a position). */
function prorate(cost: bigint, num: bigint, den: bigint): bigint {
  return (cost * num * 2n + den) / (2n * den);
}

/**
 * Applies one fill. A buy adds its pUSD to the cost; a sell releases the average cost of the
 * shares sold and realizes the difference to what it fetched. Fees are added to a buy's cost and
 * taken from a sell's proceeds.
 */
export function applyFill(p: PositionState, side: Side, shares: bigint, usdc: bigint, fee = 0n): PositionState {
  if (shares <= 0n) return p;
  if (side === 'BUY') return { size: p.size + shares, cost: p.cost + usdc + fee, realized: p.realized };
  // Polymarket cannot go short: selling more than held (never admitted by risk) realizes against what is held.
  const sold = shares < p.size ? shares : p.size;
  const basis = sold === p.size ? p.cost : prorate(p.cost, sold, p.size);
  const size = p.size - sold;
  return { size, cost: size === 0n ? 0n : p.cost - basis, realized: p.realized + usdc - fee - basis };
}

export function avgPrice(p: PositionState): bigint {
  return p.size > 0n ? divMicros(p.cost, p.size) : 0n;
}

export function toRow(p: PositionState, strategy: string, tokenId: string, market: string, now: number): PositionRow {
  return {
    strategy,
    token_id: tokenId,
    market,
    size: fromMicros(p.size),
    avg_price: fromMicros(avgPrice(p)),
    cost: fromMicros(p.cost),
    realized_pnl: fromMicros(p.realized),
    updated_at: now,
  };
}
