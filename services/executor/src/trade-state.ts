/**
 * The settlement life of one venue trade (PROTOCOL.md §2): MATCHED → MINED → CONFIRMED, with
 * RETRYING while the settlement transaction is resubmitted and terminal FAILED, which voids the
 * fill. The user stream replays and reorders events (reconnects, REST refreshes), so statuses are
 * applied idempotently per trade id: a repeat is a no-op, an older status after a newer one is
 * stale and ignored, and only CONFIRMED versus FAILED is a real contradiction.
 */

export const TRADE_STATUSES = ['matched', 'mined', 'retrying', 'confirmed', 'failed'] as const;
export type TradeStatus = (typeof TRADE_STATUSES)[number];

const TERMINAL: ReadonlySet<TradeStatus> = new Set(['confirmed', 'failed']);
export const isTradeTerminal = (s: TradeStatus): boolean => TERMINAL.has(s);

/**
 * A venue trade status in any spelling seen: `CONFIRMED`, `TRADE_STATUS_CONFIRMED` (REST), lower
 * case; `MATCHED_NOT_BROADCASTED` (REST only) means matched. Undefined when not understood.
 */
export function parseTradeStatus(raw: string): TradeStatus | undefined {
  const s = raw.trim().toUpperCase().replace(/^TRADE_STATUS_/, '');
  switch (s) {
    case 'MATCHED':
    case 'MATCHED_NOT_BROADCASTED':
      return 'matched';
    case 'MINED':
      return 'mined';
    case 'RETRYING':
      return 'retrying';
    case 'CONFIRMED':
      return 'confirmed';
    case 'FAILED':
      return 'failed';
    default:
      return undefined;
  }
}

export interface TradeState {
  readonly tradeId: string;
  readonly status: TradeStatus;
}

/**
 * What the caller must do to the fill: `opened` — count it as pending inventory; `confirmed` — move
 * it to settled (also when first seen confirmed); `voided` — remove it as if it never happened
 * (also when first seen failed: do not count it); `none` — nothing.
 */
export type TradeEffect = 'none' | 'opened' | 'confirmed' | 'voided';

export type TradeRefusalCode = 'unknown_status' | 'terminal_conflict' | 'id_mismatch';

export type TradeTransition =
  | { ok: true; state: TradeState; changed: boolean; effect: TradeEffect; stale?: true }
  | { ok: false; state: TradeState | undefined; code: TradeRefusalCode; reason: string };

/**
 * Allowed forward moves. MINED ⇄ RETRYING both ways: a mined transaction can be dropped by a reorg
 * and resubmitted, and a resubmission gets mined. Everything else that is not listed and not a
 * repeat is an out-of-order delivery of an earlier step.
 */
const FORWARD: Readonly<Record<TradeStatus, readonly TradeStatus[]>> = {
  matched: ['mined', 'retrying', 'confirmed', 'failed'],
  mined: ['retrying', 'confirmed', 'failed'],
  retrying: ['mined', 'confirmed', 'failed'],
  confirmed: [],
  failed: [],
};

function effectOf(status: TradeStatus): TradeEffect {
  return status === 'confirmed' ? 'confirmed' : status === 'failed' ? 'voided' : 'none';
}

/**
 * Applies one status to a trade (undefined = first time this trade id is seen).
 *
 * | from \ to  | matched | mined | retrying | confirmed | failed  |
 * |------------|---------|-------|----------|-----------|---------|
 * | (new)      | opened  | opened| opened   | confirmed | voided  |
 * | matched    | repeat  | ✓     | ✓        | ✓ confirm | ✓ void  |
 * | mined      | stale   | repeat| ✓        | ✓ confirm | ✓ void  |
 * | retrying   | stale   | ✓     | repeat   | ✓ confirm | ✓ void  |
 * | confirmed  | stale   | stale | stale    | repeat    | REFUSED |
 * | failed     | stale   | stale | stale    | REFUSED   | repeat  |
 */
export function applyTradeStatus(prev: TradeState | undefined, tradeId: string, status: TradeStatus | string): TradeTransition {
  const to = (TRADE_STATUSES as readonly string[]).includes(status) ? (status as TradeStatus) : parseTradeStatus(status);
  if (to === undefined) return { ok: false, state: prev, code: 'unknown_status', reason: `trade status "${status}" not understood` };
  if (prev === undefined) {
    const effect: TradeEffect = isTradeTerminal(to) ? effectOf(to) : 'opened';
    return { ok: true, state: { tradeId, status: to }, changed: true, effect };
  }
  if (prev.tradeId !== tradeId) return { ok: false, state: prev, code: 'id_mismatch', reason: `state of trade ${prev.tradeId} given for ${tradeId}` };
  if (prev.status === to) return { ok: true, state: prev, changed: false, effect: 'none' };
  if (FORWARD[prev.status].includes(to)) return { ok: true, state: { tradeId, status: to }, changed: true, effect: effectOf(to) };
  if (isTradeTerminal(prev.status) && isTradeTerminal(to)) {
    return { ok: false, state: prev, code: 'terminal_conflict', reason: `trade ${tradeId} is ${prev.status}; the venue now says ${to}` };
  }
  return { ok: true, state: prev, changed: false, effect: 'none', stale: true };
}

/** The trades of one executor, by id; in memory only (persistence is the caller's). */
export class TradeTracker {
  private readonly trades = new Map<string, TradeState>();

  apply(tradeId: string, status: TradeStatus | string): TradeTransition {
    const t = applyTradeStatus(this.trades.get(tradeId), tradeId, status);
    if (t.ok && t.changed) this.trades.set(tradeId, t.state);
    return t;
  }

  get(tradeId: string): TradeState | undefined {
    return this.trades.get(tradeId);
  }

  /** Trades not yet CONFIRMED or FAILED: refresh these from REST after a user-stream reconnect. */
  provisional(): TradeState[] {
    return [...this.trades.values()].filter((t) => !isTradeTerminal(t.status));
  }

  get size(): number {
    return this.trades.size;
  }

  /**
   * Forgets a terminal trade to bound memory; false when it is still provisional. A replay of a
   * forgotten trade reads as new again, so forget only past the horizon replays can reach (or keep
   * the fill ledger — `Inventory` — idempotent by trade id, which it is).
   */
  forget(tradeId: string): boolean {
    const t = this.trades.get(tradeId);
    if (!t || !isTradeTerminal(t.status)) return false;
    return this.trades.delete(tradeId);
  }
}
