import { fromMicros, MICROS_PER_UNIT, mulMicros, toMicros, type Side } from '@polybot/protocol';
import { applyFill, avgPrice, FLAT, type PositionState } from './positions.js';

/**
 * One position (one strategy, one token) that keeps SETTLED and PENDING inventory apart.
 *
 * A fill counts at once (pending) and moves to settled when its trade is CONFIRMED; a FAILED trade
 * is removed as if it had never happened, including what it did to the average cost and realized
 * PnL of every later fill. That is only exact by recomputing, so the position is defined as the
 * `applyFill` fold (positions.ts) over the fills that are not failed, in arrival order. To keep
 * that cheap, the fold is checkpointed: fills before the first pending one can never change, so
 * they live in `base` and only the tail from the first pending fill is refolded — trades confirm
 * roughly in order, so the tail stays short.
 *
 * Resolution is applied after every fill, whenever it was learned: a trade notification that
 * arrives after the market resolved still belongs to a trade matched before it.
 *
 * All amounts are bigint micros (10^-6 shares / pUSD).
 */

export type FillSettlement = 'pending' | 'confirmed' | 'failed';

export interface InventoryFill {
  tradeId: string;
  side: Side;
  /** Micro shares, > 0. */
  size: bigint;
  /** Micro pUSD that changed hands for the shares (before fees), ≥ 0. */
  usdc: bigint;
  /** Micro pUSD of fee paid, ≥ 0; added to a buy's cost, taken from a sell's proceeds. */
  fee?: bigint;
}

export interface InventoryView {
  /** Shares held: settled + pendingBuy − pendingSell + shortfall; 0 once resolved. */
  size: bigint;
  /** Shares from confirmed trades (minus what resolution paid out). */
  settled: bigint;
  /** Shares bought in trades not yet confirmed: not in the wallet yet, cannot be sold. */
  pendingBuy: bigint;
  /** Shares sold in trades not yet confirmed: still in the wallet, already committed. */
  pendingSell: bigint;
  /** Cost basis of `size` (buy fees included), micro pUSD. */
  cost: bigint;
  /** cost ÷ size (0 when flat). */
  avgPrice: bigint;
  /** Realized PnL net of fees, including resolution. */
  realized: bigint;
  /** Fees of the fills that count. */
  fees: bigint;
  /** Signed pUSD of confirmed trades and resolution (buys negative, incl. fees). */
  settledCash: bigint;
  /** Signed pUSD of trades not yet confirmed. */
  pendingCash: bigint;
  /**
   * Shares sold beyond what was held at the time (only possible when a buy failed after a sell of
   * its shares, or fills arrive out of order); positions.ts realizes such a sell against what was
   * held, so this says by how much the books and the fills disagree. 0 in a consistent history.
   */
  shortfall: bigint;
  /** Payout per share once the market resolved (micro pUSD: 1_000_000 winner, 0 loser). */
  resolved?: bigint;
}

export type InventoryRefusalCode = 'invalid_fill' | 'fill_conflict' | 'unknown_trade' | 'terminal_conflict' | 'invalid_payout' | 'resolution_conflict';

export type InventoryResult = { ok: true; changed: boolean } | { ok: false; code: InventoryRefusalCode; reason: string };

export type SellCheck =
  | { ok: true; free: bigint }
  | { ok: false; code: 'unsettled_inventory'; reason: string; free: bigint; afterSettlement: bigint }
  | { ok: false; code: 'insufficient_position'; reason: string; free: bigint; afterSettlement: bigint }
  | { ok: false; code: 'market_resolved'; reason: string };

interface FillRecord {
  readonly fill: Required<InventoryFill>;
  status: FillSettlement;
}

interface Acc {
  pos: PositionState;
  settled: bigint;
  pendingBuy: bigint;
  pendingSell: bigint;
  settledCash: bigint;
  pendingCash: bigint;
  fees: bigint;
  shortfall: bigint;
}

const ZERO: Acc = { pos: FLAT, settled: 0n, pendingBuy: 0n, pendingSell: 0n, settledCash: 0n, pendingCash: 0n, fees: 0n, shortfall: 0n };

function step(acc: Acc, r: FillRecord): Acc {
  if (r.status === 'failed') return acc;
  const { side, size, usdc, fee } = r.fill;
  const held = acc.pos.size;
  const pos = applyFill(acc.pos, side, size, usdc, fee);
  const shortfall = side === 'SELL' && size > held ? acc.shortfall + (size - held) : acc.shortfall;
  const shares = side === 'BUY' ? size : -size;
  const cash = side === 'BUY' ? -(usdc + fee) : usdc - fee;
  const next: Acc = { ...acc, pos, shortfall, fees: acc.fees + fee };
  if (r.status === 'confirmed') {
    next.settled += shares;
    next.settledCash += cash;
  } else {
    if (side === 'BUY') next.pendingBuy += size;
    else next.pendingSell += size;
    next.pendingCash += cash;
  }
  return next;
}

const sameFill = (a: Required<InventoryFill>, b: Required<InventoryFill>) =>
  a.side === b.side && a.size === b.size && a.usdc === b.usdc && a.fee === b.fee;

function parsePayout(payout: string | bigint): bigint | undefined {
  try {
    const v = typeof payout === 'bigint' ? payout : toMicros(payout);
    return v >= 0n && v <= MICROS_PER_UNIT ? v : undefined;
  } catch {
    return undefined;
  }
}

export class Inventory {
  private readonly records = new Map<string, FillRecord>();
  /** Fills from the first pending one on, in arrival order. */
  private tail: FillRecord[] = [];
  /** The fold of every fill before the tail; all of them are confirmed or failed. */
  private base: Acc = ZERO;
  private payout: bigint | undefined;

  /**
   * Records a fill (a trade event), with its settlement if already known. The same trade again is
   * a status update: identical amounts required, the status moves pending → confirmed | failed,
   * an older status is ignored, confirmed ↔ failed is refused.
   */
  addFill(fill: InventoryFill, status: FillSettlement = 'pending'): InventoryResult {
    const f: Required<InventoryFill> = { ...fill, fee: fill.fee ?? 0n };
    if (!f.tradeId || f.size <= 0n || f.usdc < 0n || f.fee < 0n) {
      return { ok: false, code: 'invalid_fill', reason: 'a fill needs a trade id, a positive size and non-negative amounts' };
    }
    const known = this.records.get(f.tradeId);
    if (known) {
      if (!sameFill(known.fill, f)) return { ok: false, code: 'fill_conflict', reason: `trade ${f.tradeId} was recorded with other amounts` };
      return this.setStatus(f.tradeId, status);
    }
    const r: FillRecord = { fill: f, status };
    this.records.set(f.tradeId, r);
    this.tail.push(r);
    this.advance();
    return { ok: true, changed: true };
  }

  /** The trade is CONFIRMED: its shares and cash move from pending to settled. */
  confirm(tradeId: string): InventoryResult {
    return this.setStatus(tradeId, 'confirmed');
  }

  /** The trade FAILED: the fill is voided, as if it had never happened. */
  fail(tradeId: string): InventoryResult {
    return this.setStatus(tradeId, 'failed');
  }

  setStatus(tradeId: string, status: FillSettlement): InventoryResult {
    const r = this.records.get(tradeId);
    if (!r) return { ok: false, code: 'unknown_trade', reason: `no fill for trade ${tradeId}` };
    if (r.status === status || status === 'pending') return { ok: true, changed: false };
    if (r.status !== 'pending') {
      return { ok: false, code: 'terminal_conflict', reason: `trade ${tradeId} is ${r.status}, cannot become ${status}` };
    }
    r.status = status;
    this.advance();
    return { ok: true, changed: true };
  }

  settlementOf(tradeId: string): FillSettlement | undefined {
    return this.records.get(tradeId)?.status;
  }

  /**
   * The market resolved: every share is worth `payout` (decimal string or micros; "1" for the
   * winning token, "0" for the loser). The position closes at that price and its PnL is realized.
   */
  resolve(payout: string | bigint): InventoryResult {
    const p = parsePayout(payout);
    if (p === undefined) return { ok: false, code: 'invalid_payout', reason: `payout ${String(payout)} is not a price in [0, 1]` };
    if (this.payout !== undefined) {
      return this.payout === p
        ? { ok: true, changed: false }
        : { ok: false, code: 'resolution_conflict', reason: `already resolved at ${fromMicros(this.payout)}` };
    }
    this.payout = p;
    return { ok: true, changed: true };
  }

  resolveOutcome(won: boolean): InventoryResult {
    return this.resolve(won ? MICROS_PER_UNIT : 0n);
  }

  view(): InventoryView {
    let acc = this.base;
    for (const r of this.tail) acc = step(acc, r);
    if (this.payout !== undefined) {
      const held = acc.pos.size;
      const proceeds = mulMicros(held, this.payout);
      // Redemption pays every held share, settled or not; settled may dip below zero until the
      // pending buys that were paid out confirm (and it comes back if they fail, by the refold).
      acc = { ...acc, pos: applyFill(acc.pos, 'SELL', held, proceeds), settled: acc.settled - held, settledCash: acc.settledCash + proceeds };
    }
    const v: InventoryView = {
      size: acc.pos.size,
      settled: acc.settled,
      pendingBuy: acc.pendingBuy,
      pendingSell: acc.pendingSell,
      cost: acc.pos.cost,
      avgPrice: avgPrice(acc.pos),
      realized: acc.pos.realized,
      fees: acc.fees,
      settledCash: acc.settledCash,
      pendingCash: acc.pendingCash,
      shortfall: acc.shortfall,
    };
    if (this.payout !== undefined) v.resolved = this.payout;
    return v;
  }

  /** The position in positions.ts form (for `toRow`). */
  position(): PositionState {
    const v = this.view();
    return { size: v.size, cost: v.cost, realized: v.realized };
  }

  /** Unrealized PnL at a mark price (exact decimal string or micros): size × mark − cost. */
  unrealized(mark: string | bigint): bigint {
    const m = typeof mark === 'bigint' ? mark : toMicros(mark);
    const v = this.view();
    return mulMicros(v.size, m) - v.cost;
  }

  /**
   * Whether `size` shares can be sold now, with `reserved` shares already offered by open sell
   * orders. Only settled shares are in the wallet; shares of pending buys arrive when their trades
   * confirm (`unsettled_inventory`: wait, or deny), and pending sells have already committed theirs.
   */
  canSell(size: bigint, reserved = 0n): SellCheck {
    const v = this.view();
    if (v.resolved !== undefined) return { ok: false, code: 'market_resolved', reason: 'the market resolved; positions are redeemed, not sold' };
    const free = v.settled - v.pendingSell - reserved;
    if (size <= free) return { ok: true, free };
    const afterSettlement = free + v.pendingBuy;
    const shown = (x: bigint) => fromMicros(x > 0n ? x : 0n);
    if (size <= afterSettlement) {
      return {
        ok: false,
        code: 'unsettled_inventory',
        reason: `selling ${fromMicros(size)} shares needs ${fromMicros(size - (free > 0n ? free : 0n))} from buys not yet confirmed (${shown(free)} settled and free)`,
        free,
        afterSettlement,
      };
    }
    return {
      ok: false,
      code: 'insufficient_position',
      reason: `selling ${fromMicros(size)} shares but only ${shown(afterSettlement)} are held and not already offered, settled or not`,
      free,
      afterSettlement,
    };
  }

  /** Every fill with its settlement, in arrival order (for persistence and inspection). */
  fills(): { fill: Required<InventoryFill>; status: FillSettlement }[] {
    return [...this.records.values()].map((r) => ({ fill: { ...r.fill }, status: r.status }));
  }

  private advance(): void {
    let i = 0;
    while (i < this.tail.length && (this.tail[i] as FillRecord).status !== 'pending') {
      this.base = step(this.base, this.tail[i] as FillRecord);
      i++;
    }
    if (i > 0) this.tail = this.tail.slice(i);
  }
}
