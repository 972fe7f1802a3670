import type { OrderStatus as WireOrderStatus, OrderType } from '@polybot/protocol';

/**
 * The life of one order as the executor sees it, as a pure transition function.
 *
 * Two facts are tracked separately because they arrive from different, unordered sources:
 * - `matched` (micro shares) only ever grows. The venue's `size_matched` and our own trade fills
 *   are both cumulative evidence of the same thing, so they are merged with `max`, never added;
 *   a stale event with a smaller `size_matched` therefore cannot lower it.
 * - `status` follows the table in `applyOrderInput`. Terminal statuses stay put; only `unknown`
 *   (ambiguous: the order may exist at the venue) is settled by what the stream or a lookup says.
 *
 * Inputs that contradict what is known are refused with a code and a sentence, never thrown: the
 * caller logs them as anomalies and keeps the previous state.
 */

export const ORDER_STATUSES = ['pending', 'live', 'partially_filled', 'filled', 'canceled', 'rejected', 'expired', 'unknown'] as const;
export type OrderLifecycleStatus = (typeof ORDER_STATUSES)[number];

const TERMINAL: ReadonlySet<OrderLifecycleStatus> = new Set(['filled', 'canceled', 'rejected', 'expired']);
/** Statuses that may still trade at the venue: they count towards exposure. */
export const OPEN_ORDER_STATUSES: readonly OrderLifecycleStatus[] = ['pending', 'live', 'partially_filled', 'unknown'];

/** Why an order ended `rejected`: `not_sent` and `venue` are certain, `not_found` is a final lookup miss. */
export type RejectionKind = 'not_sent' | 'venue' | 'not_found';

export interface OrderState {
  readonly status: OrderLifecycleStatus;
  readonly orderType: OrderType;
  /** The order's share amount in micro shares (for a market BUY: the shares its amount buys at the worst price). */
  readonly size: bigint;
  /** The largest `size_matched` any venue report carried (micro shares). */
  readonly venueMatched: bigint;
  /** Our own fills by trade id (micro shares), so a replayed trade counts once. */
  readonly fills: ReadonlyMap<string, bigint>;
  /** max(venueMatched, Σ fills): never decreases. */
  readonly matched: bigint;
  readonly venueOrderId?: string;
  /** The latest explanation worth showing (venue error text, cancel reason, …). */
  readonly reason?: string;
  readonly rejection?: RejectionKind;
}

/** What `POST /order` answered, as the trading client classifies it (brief §6.6). */
export type PostInput =
  | {
      kind: 'post';
      outcome: 'accepted';
      /** The response's `status`: live | matched | delayed | unmatched (absent reads as live). */
      status?: string;
      /** Shares matched at placement (from making/taking amounts), micro shares. */
      matched?: bigint;
      venueOrderId?: string;
    }
  /** `willRetry`: the caller will post the same signed payload again (425/429), so the order stays pending. */
  | { kind: 'post'; outcome: 'rejected'; reason: string; willRetry?: boolean }
  | { kind: 'post'; outcome: 'not_sent'; reason: string; willRetry?: boolean }
  | { kind: 'post'; outcome: 'ambiguous'; reason: string };

/** A user-channel `order` event (PROTOCOL.md §2); `status` as received or normalized, parsed by prefix. */
export interface VenueOrderInput {
  kind: 'venue';
  type: 'PLACEMENT' | 'UPDATE' | 'CANCELLATION';
  status: string;
  sizeMatched: bigint;
  reason?: string;
}

/**
 * `GET /data/order/{id}`. A miss is only evidence when the caller says it is `final` (after its
 * retries and a grace period: venues show fresh orders late); until then it settles nothing.
 */
export type LookupInput =
  | { kind: 'lookup'; found: true; status: string; sizeMatched: bigint }
  | { kind: 'lookup'; found: false; final: boolean };

/** One of our fills on this order (a trade event, or one trade id of the POST answer). */
export interface FillInput {
  kind: 'fill';
  tradeId: string;
  size: bigint;
}

/** The answer to `DELETE /order`: in `canceled`, or in `not_canceled` with the venue's reason. */
export interface CancelAckInput {
  kind: 'cancel_ack';
  canceled: boolean;
  reason?: string;
}

/** The GTD expiration passed (the caller adds the venue's security buffer). */
export interface ExpireInput {
  kind: 'expire';
}

export type OrderInput = PostInput | VenueOrderInput | LookupInput | FillInput | CancelAckInput | ExpireInput;

export type OrderRefusalCode =
  | 'invalid_input'
  | 'unknown_status'
  | 'exists_after_rejection'
  | 'contradicts_venue'
  | 'fill_conflict'
  | 'already_filled'
  | 'lookup_missing'
  | 'not_gtd'
  | 'unresolved';

export type OrderTransition =
  | { ok: true; state: OrderState; changed: boolean; note?: string }
  | { ok: false; state: OrderState; code: OrderRefusalCode; reason: string };

/** How a venue status reads, whatever its spelling (`CANCELED_<why>`, `ORDER_STATUS_LIVE`, case). */
export type VenueStatusClass = 'working' | 'matched' | 'canceled' | 'unmatched' | 'unknown';

export function classifyVenueStatus(status: string): VenueStatusClass {
  const s = status.trim().toUpperCase().replace(/^ORDER_STATUS_/, '');
  if (s === 'LIVE' || s === 'DELAYED') return 'working';
  if (s === 'MATCHED') return 'matched';
  if (s === 'UNMATCHED') return 'unmatched';
  // INVALID is the venue cancelling the order itself; CANCELED_<reason> carries the why.
  if (s.startsWith('CANCELED') || s.startsWith('CANCELLED') || s === 'INVALID') return 'canceled';
  return 'unknown';
}

/** A persisted, not yet acknowledged order. Throws on a non-positive size: that is a caller bug, not an event. */
export function newOrderState(init: { orderType: OrderType; size: bigint; venueOrderId?: string }): OrderState {
  if (init.size <= 0n) throw new RangeError(`order size must be positive, got ${init.size} micro shares`);
  return {
    status: 'pending',
    orderType: init.orderType,
    size: init.size,
    venueMatched: 0n,
    fills: new Map(),
    matched: 0n,
    ...(init.venueOrderId !== undefined ? { venueOrderId: init.venueOrderId } : {}),
  };
}

export const isTerminal = (s: OrderState | OrderLifecycleStatus): boolean => TERMINAL.has(typeof s === 'string' ? s : s.status);
export const isOpen = (s: OrderState): boolean => !TERMINAL.has(s.status);
const isMarket = (s: OrderState): boolean => s.orderType === 'FOK' || s.orderType === 'FAK';

/** Shares that may still trade: the unmatched rest of an open order, 0 once terminal. */
export function remaining(s: OrderState): bigint {
  if (isTerminal(s)) return 0n;
  return s.size > s.matched ? s.size - s.matched : 0n;
}

/** The wire status (protocol `OrderStatus` has no `expired`: an expired order reads as canceled). */
export function toWireStatus(s: OrderState | OrderLifecycleStatus): WireOrderStatus {
  const status = typeof s === 'string' ? s : s.status;
  return status === 'expired' ? 'canceled' : status;
}

/** Invariants every reachable state satisfies; a non-empty list is a bug. Used by the tests. */
export function orderStateProblems(s: OrderState): string[] {
  const out: string[] = [];
  let sum = 0n;
  for (const v of s.fills.values()) sum += v;
  const expect = s.venueMatched > sum ? s.venueMatched : sum;
  if (s.matched !== expect) out.push(`matched ${s.matched} is not max(venue ${s.venueMatched}, fills ${sum})`);
  if (s.venueMatched < 0n) out.push('negative venue matched');
  if (s.status === 'live' && s.matched !== 0n) out.push('live with matched size');
  if (s.status === 'partially_filled' && !(s.matched > 0n && s.matched < s.size)) out.push('partially_filled outside (0, size)');
  if ((s.status === 'pending' || s.status === 'unknown' || s.status === 'rejected') && s.matched !== 0n) {
    out.push(`${s.status} with matched size`);
  }
  if (s.status === 'rejected' && s.rejection === undefined) out.push('rejected without a kind');
  return out;
}

// ------------------------------------------------------------------ transition

const same = (state: OrderState, note?: string): OrderTransition => ({ ok: true, state, changed: false, ...(note ? { note } : {}) });
const refuse = (state: OrderState, code: OrderRefusalCode, reason: string): OrderTransition => ({ ok: false, state, code, reason });

function result(prev: OrderState, next: OrderState, note?: string): OrderTransition {
  const changed =
    next.status !== prev.status ||
    next.matched !== prev.matched ||
    next.venueMatched !== prev.venueMatched ||
    next.fills !== prev.fills ||
    next.venueOrderId !== prev.venueOrderId ||
    next.reason !== prev.reason ||
    next.rejection !== prev.rejection;
  return { ok: true, state: changed ? next : prev, changed, ...(note ? { note } : {}) };
}

/** The status a working (non-terminal, acknowledged) order has for a matched size. */
function working(s: OrderState, matched: bigint): OrderLifecycleStatus {
  if (matched >= s.size && s.size > 0n) return 'filled';
  return matched > 0n ? 'partially_filled' : 'live';
}

const withReason = (s: OrderState, reason: string | undefined): OrderState => (reason ? { ...s, reason } : s);

/**
 * A venue report (stream event, lookup or POST answer) of what the order is and how much matched.
 * `cls` 'placed' is the POST answer's `matched`, which means "matched something at placement" —
 * unlike the stream's MATCHED, which means the whole order is done.
 */
function report(s: OrderState, cls: VenueStatusClass | 'placed', sizeMatched: bigint, reason?: string): OrderTransition {
  // Nothing from a report we cannot read is trusted, not even its size.
  if (cls === 'unknown') return refuse(s, 'unknown_status', 'venue status not understood');
  if (s.status === 'rejected') {
    return refuse(s, 'exists_after_rejection', `the venue reports the order (${cls}) but it was rejected (${s.rejection})`);
  }
  const venueMatched = sizeMatched > s.venueMatched ? sizeMatched : s.venueMatched;
  const matched = venueMatched > s.matched ? venueMatched : s.matched;
  let status: OrderLifecycleStatus = s.status;
  let note: string | undefined;
  if (isTerminal(s)) {
    // Terminal is final: a late or replayed report may still carry a larger matched size (a fill
    // that happened before the cancel), which is a fact worth keeping, but never reopens the order.
    if (cls === 'working' || cls === 'placed') note = `stale ${cls} report on a ${s.status} order`;
  } else {
    switch (cls) {
      case 'working':
        status = working(s, matched);
        break;
      case 'placed':
        // FOK matched = all of it; FAK matched = what it could, the rest was killed; GTC/GTD rest the remainder.
        if (s.orderType === 'FOK') status = 'filled';
        else if (s.orderType === 'FAK') status = matched >= s.size ? 'filled' : 'canceled';
        else status = working(s, matched);
        if (matched === 0n) note = 'matched without amounts; the trade events will tell how much';
        break;
      case 'matched':
        // A market order the venue calls MATCHED with part of it unfilled had its remainder killed.
        status = isMarket(s) && matched > 0n && matched < s.size ? 'canceled' : 'filled';
        break;
      case 'unmatched':
        status = isMarket(s) ? (matched >= s.size && s.size > 0n ? 'filled' : 'canceled') : working(s, matched);
        break;
      case 'canceled':
        status = matched >= s.size && s.size > 0n ? 'filled' : 'canceled';
        break;
    }
  }
  const next: OrderState = { ...s, status, venueMatched, matched, ...(reason && status !== s.status ? { reason } : {}) };
  return result(s, next, note);
}

function post(s: OrderState, input: PostInput): OrderTransition {
  const unresolved = s.status === 'pending' || s.status === 'unknown';
  switch (input.outcome) {
    case 'accepted': {
      if (input.matched !== undefined && input.matched < 0n) return refuse(s, 'invalid_input', 'negative matched size');
      const raw = (input.status ?? 'live').trim().toLowerCase();
      const cls: VenueStatusClass | 'placed' =
        raw === 'matched' ? 'placed' : raw === 'unmatched' ? 'unmatched' : raw === 'live' || raw === 'delayed' ? 'working' : 'unknown';
      if (cls === 'unknown') return refuse(s, 'unknown_status', `order response status "${input.status}" not understood`);
      const base = input.venueOrderId && !s.venueOrderId ? { ...s, venueOrderId: input.venueOrderId } : s;
      const t = report(base, cls, input.matched ?? 0n, raw === 'delayed' ? 'match delayed by the venue' : undefined);
      if (!t.ok) return { ...t, state: s };
      return base !== s && !t.changed ? { ...t, state: base, changed: true } : t;
    }
    case 'rejected': {
      // The venue already has this exact signed order: it exists, its state must be looked up.
      if (/duplicat/i.test(input.reason)) {
        if (s.status === 'rejected') return refuse(s, 'exists_after_rejection', `venue says duplicated: ${input.reason}`);
        if (unresolved) return result(s, { ...s, status: 'unknown', reason: input.reason }, 'the venue already has this order');
        return same(s);
      }
      if (s.status === 'pending') {
        if (input.willRetry) return result(s, withReason(s, input.reason), 'will be posted again');
        return result(s, { ...s, status: 'rejected', rejection: 'venue', reason: input.reason });
      }
      // A re-post may be refused because the first one exists (e.g. it holds the balance): proves nothing.
      if (s.status === 'unknown') return result(s, withReason(s, input.reason), 'a refused re-post does not settle an ambiguous order');
      if (s.status === 'rejected') return same(s);
      return refuse(s, 'contradicts_venue', `the venue rejected an order it already reported as ${s.status}: ${input.reason}`);
    }
    case 'not_sent':
      if (s.status === 'pending') {
        if (input.willRetry) return result(s, withReason(s, input.reason), 'will be posted again');
        return result(s, { ...s, status: 'rejected', rejection: 'not_sent', reason: `not sent: ${input.reason}` });
      }
      // Unknown: an earlier attempt may have arrived, so a failed re-post leaves it unknown.
      // Anything else: a redundant re-post that never left; nothing learned.
      return same(s);
    case 'ambiguous':
      if (s.status === 'pending') return result(s, { ...s, status: 'unknown', reason: input.reason });
      return same(s);
  }
}

function lookup(s: OrderState, input: LookupInput): OrderTransition {
  if (input.found) {
    if (input.sizeMatched < 0n) return refuse(s, 'invalid_input', 'negative size_matched');
    return report(s, classifyVenueStatus(input.status), input.sizeMatched);
  }
  if (s.status === 'pending' || s.status === 'unknown') {
    if (!input.final) return result(s, { ...s, status: 'unknown' });
    return result(s, { ...s, status: 'rejected', rejection: 'not_found', reason: 'not found at the venue after every lookup' });
  }
  if (s.status === 'live' || s.status === 'partially_filled') {
    return refuse(s, 'lookup_missing', `the venue does not find an order it reported as ${s.status}; leave it to the stream or reconciliation`);
  }
  // Finished orders may be dropped from the venue's index.
  return same(s);
}

function fill(s: OrderState, input: FillInput): OrderTransition {
  if (!input.tradeId || input.size <= 0n) return refuse(s, 'invalid_input', 'a fill needs a trade id and a positive size');
  const known = s.fills.get(input.tradeId);
  if (known !== undefined) {
    return known === input.size ? same(s) : refuse(s, 'fill_conflict', `trade ${input.tradeId} was ${known} micro shares, now ${input.size}`);
  }
  if (s.status === 'rejected') return refuse(s, 'exists_after_rejection', `trade ${input.tradeId} fills an order that was rejected (${s.rejection})`);
  const fills = new Map(s.fills);
  fills.set(input.tradeId, input.size);
  let sum = 0n;
  for (const v of fills.values()) sum += v;
  const matched = sum > s.matched ? sum : s.matched;
  const status = isTerminal(s) ? s.status : working(s, matched);
  return result(s, { ...s, fills, matched, status });
}

function cancelAck(s: OrderState, input: CancelAckInput): OrderTransition {
  if (!input.canceled) {
    // "already canceled or matched" and friends: ambiguous; the stream or a lookup settles it.
    return same(s, input.reason ? `not canceled: ${input.reason}` : 'not canceled');
  }
  if (s.status === 'rejected') return refuse(s, 'exists_after_rejection', 'the venue canceled an order that was rejected');
  if (s.status === 'filled') return refuse(s, 'already_filled', 'the venue canceled an order it reported as filled');
  if (s.status === 'canceled' || s.status === 'expired') return same(s);
  return result(s, { ...s, status: 'canceled', reason: input.reason ?? 'canceled on request' });
}

function expire(s: OrderState): OrderTransition {
  if (s.orderType !== 'GTD') return refuse(s, 'not_gtd', `a ${s.orderType} order does not expire`);
  if (isTerminal(s)) return same(s);
  if (s.status === 'pending' || s.status === 'unknown') {
    return refuse(s, 'unresolved', `the order is ${s.status}: it may have traded before expiring; look it up first`);
  }
  return result(s, { ...s, status: 'expired', reason: 'GTD expiration passed' });
}

/**
 * Applies one input. Same input twice equals once; `matched` never decreases; terminal statuses
 * never change (matched may still grow on filled/canceled/expired when late fills arrive).
 *
 * | from \ input        | post accepted         | post rejected            | not_sent       | ambiguous | venue / lookup found     | lookup miss (final) | fill             | cancel ack ✓ | expire (GTD) |
 * |---------------------|-----------------------|--------------------------|----------------|-----------|--------------------------|---------------------|------------------|--------------|--------------|
 * | pending             | live/partial/filled/… | rejected (unknown if dup)| rejected       | unknown   | by status                | unknown (rejected)  | partial/filled   | canceled     | refused      |
 * | unknown             | live/partial/filled/… | unknown                  | unknown        | unknown   | by status                | unknown (rejected)  | partial/filled   | canceled     | refused      |
 * | live / partial      | merge (never back)    | refused (dup: no-op)     | no-op          | no-op     | by status, never back    | refused             | partial/filled   | canceled     | expired      |
 * | filled/canceled/exp | matched only          | refused (dup: no-op)     | no-op          | no-op     | matched only             | no-op               | matched only     | filled: refused | no-op     |
 * | rejected            | refused               | no-op                    | no-op          | no-op     | refused                  | no-op               | refused          | refused      | no-op        |
 */
export function applyOrderInput(s: OrderState, input: OrderInput): OrderTransition {
  switch (input.kind) {
    case 'post':
      return post(s, input);
    case 'venue': {
      if (input.sizeMatched < 0n) return refuse(s, 'invalid_input', 'negative size_matched');
      const cls = input.type === 'CANCELLATION' ? 'canceled' : classifyVenueStatus(input.status);
      if (cls === 'unknown') return refuse(s, 'unknown_status', `venue order status "${input.status}" not understood`);
      return report(s, cls, input.sizeMatched, input.reason);
    }
    case 'lookup':
      return lookup(s, input);
    case 'fill':
      return fill(s, input);
    case 'cancel_ack':
      return cancelAck(s, input);
    case 'expire':
      return expire(s);
  }
}

/** Applies inputs in order, collecting refusals; convenient for replays and tests. */
export function applyOrderInputs(s: OrderState, inputs: readonly OrderInput[]): { state: OrderState; refusals: { input: OrderInput; code: OrderRefusalCode; reason: string }[] } {
  let state = s;
  const refusals: { input: OrderInput; code: OrderRefusalCode; reason: string }[] = [];
  for (const input of inputs) {
    const t = applyOrderInput(state, input);
    if (t.ok) state = t.state;
    else refusals.push({ input, code: t.code, reason: t.reason });
  }
  return { state, refusals };
}
