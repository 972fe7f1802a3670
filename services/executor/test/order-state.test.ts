import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { toMicros } from '@polybot/protocol';
import {
  applyOrderInput,
  applyOrderInputs,
  classifyVenueStatus,
  isTerminal,
  newOrderState,
  orderStateProblems,
  remaining,
  toWireStatus,
  type OrderInput,
  type OrderLifecycleStatus,
  type OrderState,
} from '../src/order-state.js';

const m = (s: string) => toMicros(s);
const SIZE = m('10');

const of = (type: 'GTC' | 'GTD' | 'FOK' | 'FAK') => newOrderState({ orderType: type, size: SIZE });

const accepted = (status?: string, matched?: string): OrderInput => ({
  kind: 'post',
  outcome: 'accepted',
  ...(status ? { status } : {}),
  ...(matched ? { matched: m(matched) } : {}),
});
const venue = (type: 'PLACEMENT' | 'UPDATE' | 'CANCELLATION', status: string, matched = '0'): OrderInput => ({ kind: 'venue', type, status, sizeMatched: m(matched) });
const fill = (tradeId: string, size: string): OrderInput => ({ kind: 'fill', tradeId, size: m(size) });
const lookup = (status: string, matched = '0'): OrderInput => ({ kind: 'lookup', found: true, status, sizeMatched: m(matched) });
const miss = (final: boolean): OrderInput => ({ kind: 'lookup', found: false, final });
const cancelOk: OrderInput = { kind: 'cancel_ack', canceled: true };
const cancelNo: OrderInput = { kind: 'cancel_ack', canceled: false, reason: 'already canceled or matched' };
const expire: OrderInput = { kind: 'expire' };
const rejected = (reason = 'not enough balance / allowance', willRetry?: boolean): OrderInput => ({ kind: 'post', outcome: 'rejected', reason, ...(willRetry ? { willRetry } : {}) });
const notSent = (willRetry?: boolean): OrderInput => ({ kind: 'post', outcome: 'not_sent', reason: 'ECONNREFUSED', ...(willRetry ? { willRetry } : {}) });
const ambiguous: OrderInput = { kind: 'post', outcome: 'ambiguous', reason: 'timeout' };

/** A state reached from a fresh order of `type` by `inputs`, failing the test if any was refused. */
function reach(inputs: OrderInput[], type: 'GTC' | 'GTD' | 'FOK' | 'FAK' = 'GTC'): OrderState {
  const { state, refusals } = applyOrderInputs(of(type), inputs);
  expect(refusals).toEqual([]);
  return state;
}

const FROM: Record<string, OrderInput[]> = {
  pending: [],
  unknown: [ambiguous],
  live: [accepted('live')],
  partially_filled: [accepted('matched', '4')],
  filled: [accepted('matched', '10')],
  canceled: [accepted('live'), cancelOk],
  rejected: [rejected()],
  expired: [accepted('live'), expire],
};

type Row = [from: keyof typeof FROM, input: OrderInput, expected: OrderLifecycleStatus | { refused: string }, matched?: string];

describe('order state machine: transitions', () => {
  const rows: Row[] = [
    // POST outcomes (brief §6.6)
    ['pending', accepted('live'), 'live', '0'],
    ['pending', accepted('delayed'), 'live', '0'],
    ['pending', accepted('matched', '4'), 'partially_filled', '4'],
    ['pending', accepted('matched', '10'), 'filled', '10'],
    ['pending', accepted('unmatched'), 'live', '0'],
    ['pending', accepted('weird'), { refused: 'unknown_status' }],
    ['pending', rejected(), 'rejected'],
    ['pending', rejected('too many requests', true), 'pending'],
    ['pending', rejected('order 0xabc is invalid. Duplicated.'), 'unknown'],
    ['pending', notSent(), 'rejected'],
    ['pending', notSent(true), 'pending'],
    ['pending', ambiguous, 'unknown'],
    ['unknown', accepted('live'), 'live'],
    ['unknown', rejected(), 'unknown'],
    ['unknown', rejected('Duplicated.'), 'unknown'],
    ['unknown', notSent(), 'unknown'],
    ['unknown', ambiguous, 'unknown'],
    ['live', accepted('live'), 'live'],
    ['live', rejected(), { refused: 'contradicts_venue' }],
    ['live', rejected('Duplicated.'), 'live'],
    ['live', notSent(), 'live'],
    ['live', ambiguous, 'live'],
    ['filled', accepted('live'), 'filled', '10'],
    ['rejected', accepted('live'), { refused: 'exists_after_rejection' }],
    ['rejected', rejected(), 'rejected'],
    ['rejected', notSent(), 'rejected'],
    ['rejected', rejected('Duplicated.'), { refused: 'exists_after_rejection' }],
    // user-channel order events
    ['pending', venue('PLACEMENT', 'LIVE'), 'live'],
    ['unknown', venue('PLACEMENT', 'LIVE'), 'live'],
    ['live', venue('UPDATE', 'LIVE', '3'), 'partially_filled', '3'],
    ['live', venue('UPDATE', 'MATCHED', '10'), 'filled', '10'],
    ['live', venue('UPDATE', 'MATCHED', '6'), 'filled', '6'],
    ['live', venue('CANCELLATION', 'CANCELED'), 'canceled'],
    ['live', venue('UPDATE', 'CANCELED_MARKET_RESOLVED'), 'canceled'],
    ['live', venue('UPDATE', 'INVALID'), 'canceled'],
    ['live', venue('UPDATE', 'DELAYED'), 'live'],
    ['live', venue('UPDATE', 'SOMETHING_NEW'), { refused: 'unknown_status' }],
    ['partially_filled', venue('UPDATE', 'LIVE', '2'), 'partially_filled', '4'],
    ['partially_filled', venue('UPDATE', 'LIVE', '10'), 'filled', '10'],
    ['partially_filled', venue('CANCELLATION', 'CANCELED', '4'), 'canceled', '4'],
    ['canceled', venue('PLACEMENT', 'LIVE'), 'canceled'],
    ['canceled', venue('UPDATE', 'LIVE', '3'), 'canceled', '3'],
    ['filled', venue('CANCELLATION', 'CANCELED', '10'), 'filled', '10'],
    ['expired', venue('UPDATE', 'LIVE', '2'), 'expired', '2'],
    ['rejected', venue('PLACEMENT', 'LIVE'), { refused: 'exists_after_rejection' }],
    // lookups
    ['unknown', lookup('LIVE'), 'live'],
    ['unknown', lookup('MATCHED', '10'), 'filled', '10'],
    ['unknown', lookup('ORDER_STATUS_CANCELED', '2'), 'canceled', '2'],
    ['unknown', miss(false), 'unknown'],
    ['unknown', miss(true), 'rejected'],
    ['pending', miss(false), 'unknown'],
    ['pending', miss(true), 'rejected'],
    ['live', miss(true), { refused: 'lookup_missing' }],
    ['canceled', miss(true), 'canceled'],
    ['rejected', lookup('LIVE'), { refused: 'exists_after_rejection' }],
    ['canceled', lookup('WHATEVER', '5'), { refused: 'unknown_status' }],
    // fills
    ['pending', fill('t1', '3'), 'partially_filled', '3'],
    ['unknown', fill('t1', '10'), 'filled', '10'],
    ['live', fill('t1', '3'), 'partially_filled', '3'],
    ['partially_filled', fill('t1', '3'), 'partially_filled', '4'],
    // Fills and the venue's size_matched are the same evidence: merged by max, not added.
    ['partially_filled', fill('t1', '6'), 'partially_filled', '6'],
    ['partially_filled', fill('t1', '10'), 'filled', '10'],
    ['canceled', fill('t1', '3'), 'canceled', '3'],
    ['rejected', fill('t1', '3'), { refused: 'exists_after_rejection' }],
    ['live', fill('', '3'), { refused: 'invalid_input' }],
    ['live', fill('t1', '0'), { refused: 'invalid_input' }],
    // cancel acknowledgements
    ['live', cancelOk, 'canceled'],
    ['partially_filled', cancelOk, 'canceled', '4'],
    ['pending', cancelOk, 'canceled'],
    ['unknown', cancelOk, 'canceled'],
    ['live', cancelNo, 'live'],
    ['filled', cancelOk, { refused: 'already_filled' }],
    ['canceled', cancelOk, 'canceled'],
    ['rejected', cancelOk, { refused: 'exists_after_rejection' }],
    // expiry (GTC here: refused; GTD in its own test)
    ['live', expire, { refused: 'not_gtd' }],
  ];

  const label = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}µ` : x));
  const cases = rows.map((r) => ({ name: `${r[0]} + ${label(r[1])} → ${label(r[2])}`, row: r }));

  it.each(cases)('$name', ({ row: [from, input, expected, matched] }) => {
    const s = reach(FROM[from] as OrderInput[], from === 'expired' ? 'GTD' : 'GTC');
    const t = applyOrderInput(s, input);
    if (typeof expected === 'object') {
      expect(t).toMatchObject({ ok: false, code: expected.refused });
      expect(t.state).toBe(s);
      expect(typeof (t as { reason: string }).reason).toBe('string');
    } else {
      expect(t.ok).toBe(true);
      expect(t.state.status).toBe(expected);
      if (matched !== undefined) expect(t.state.matched).toBe(m(matched));
    }
    expect(orderStateProblems(t.state)).toEqual([]);
  });

  it('market orders: FOK matched is filled, a FAK partial has its remainder killed', () => {
    expect(reach([accepted('matched')], 'FOK').status).toBe('filled');
    expect(reach([accepted('matched', '4')], 'FAK')).toMatchObject({ status: 'canceled', matched: m('4') });
    expect(reach([accepted('matched', '10')], 'FAK')).toMatchObject({ status: 'filled' });
    expect(reach([accepted('unmatched')], 'FAK').status).toBe('canceled');
    expect(reach([venue('UPDATE', 'MATCHED', '4')], 'FAK').status).toBe('canceled');
    // The POST answer's "matched" means "matched at placement": a GTC rests the rest.
    expect(reach([accepted('matched', '4')], 'GTC').status).toBe('partially_filled');
  });

  it('GTD orders expire only once acknowledged', () => {
    expect(reach([accepted('live'), expire], 'GTD').status).toBe('expired');
    expect(reach([accepted('matched', '4'), expire], 'GTD')).toMatchObject({ status: 'expired', matched: m('4') });
    expect(applyOrderInput(of('GTD'), expire)).toMatchObject({ ok: false, code: 'unresolved' });
    expect(applyOrderInput(reach([ambiguous], 'GTD'), expire)).toMatchObject({ ok: false, code: 'unresolved' });
    expect(toWireStatus(reach([accepted('live'), expire], 'GTD'))).toBe('canceled');
  });

  it('records why an order was rejected', () => {
    expect(reach([notSent()])).toMatchObject({ status: 'rejected', rejection: 'not_sent' });
    expect(reach([rejected()])).toMatchObject({ status: 'rejected', rejection: 'venue', reason: 'not enough balance / allowance' });
    expect(reach([ambiguous, miss(true)])).toMatchObject({ status: 'rejected', rejection: 'not_found' });
  });

  it('keeps the venue order id from the first acceptance', () => {
    const s = reach([{ kind: 'post', outcome: 'accepted', status: 'live', venueOrderId: '0xabc' }]);
    expect(s.venueOrderId).toBe('0xabc');
    const again = applyOrderInput(s, { kind: 'post', outcome: 'accepted', status: 'live', venueOrderId: '0xabc' });
    expect(again).toMatchObject({ ok: true, changed: false });
  });

  it('an HTTP answer arriving after the stream does not move the order back', () => {
    const s = reach([venue('PLACEMENT', 'LIVE'), venue('UPDATE', 'LIVE', '6')]);
    expect(reach([venue('PLACEMENT', 'LIVE'), venue('UPDATE', 'LIVE', '6'), accepted('live')])).toEqual(s);
    expect(s.status).toBe('partially_filled');
  });

  it('counts trade fills and venue size_matched as the same evidence, not twice', () => {
    const s = reach([accepted('live'), fill('a', '3'), venue('UPDATE', 'LIVE', '3'), fill('b', '2'), venue('UPDATE', 'LIVE', '5')]);
    expect(s.matched).toBe(m('5'));
    expect(remaining(s)).toBe(m('5'));
    expect(applyOrderInput(s, fill('a', '4'))).toMatchObject({ ok: false, code: 'fill_conflict' });
  });

  it('classifies venue statuses by prefix', () => {
    expect(classifyVenueStatus("CANCELED_order couldn't be fully filled. FOK orders are fully filled or killed.")).toBe('canceled');
    expect(classifyVenueStatus('live')).toBe('working');
    expect(classifyVenueStatus('ORDER_STATUS_MATCHED')).toBe('matched');
    expect(classifyVenueStatus('')).toBe('unknown');
  });

  it('refuses a non-positive order size at creation', () => {
    expect(() => newOrderState({ orderType: 'GTC', size: 0n })).toThrow(RangeError);
  });
});

// ------------------------------------------------------------------ properties

const sizes = fc.constantFrom('0', '1', '3', '4', '5', '9.5', '10', '12').map(m);
const statusArb = fc.constantFrom('LIVE', 'MATCHED', 'CANCELED', 'INVALID', 'DELAYED', 'UNMATCHED', 'CANCELED_MARKET_RESOLVED', 'ORDER_STATUS_LIVE', 'BOGUS');
const inputArb: fc.Arbitrary<OrderInput> = fc.oneof(
  fc.record({ kind: fc.constant('post' as const), outcome: fc.constant('accepted' as const), status: fc.constantFrom('live', 'matched', 'delayed', 'unmatched'), matched: sizes }),
  fc.record({ kind: fc.constant('post' as const), outcome: fc.constant('rejected' as const), reason: fc.constantFrom('not enough balance / allowance', 'order 0x1 is invalid. Duplicated.'), willRetry: fc.boolean() }),
  fc.record({ kind: fc.constant('post' as const), outcome: fc.constant('not_sent' as const), reason: fc.constant('ECONNREFUSED'), willRetry: fc.boolean() }),
  fc.record({ kind: fc.constant('post' as const), outcome: fc.constant('ambiguous' as const), reason: fc.constant('timeout') }),
  fc.record({ kind: fc.constant('venue' as const), type: fc.constantFrom('PLACEMENT' as const, 'UPDATE' as const, 'CANCELLATION' as const), status: statusArb, sizeMatched: sizes }),
  fc.record({ kind: fc.constant('lookup' as const), found: fc.constant(true as const), status: statusArb, sizeMatched: sizes }),
  fc.record({ kind: fc.constant('lookup' as const), found: fc.constant(false as const), final: fc.boolean() }),
  fc.record({ kind: fc.constant('fill' as const), tradeId: fc.constantFrom('t1', 't2', 't3', 't4'), size: fc.constantFrom('1', '2', '3', '6').map(m) }),
  fc.record({ kind: fc.constant('cancel_ack' as const), canceled: fc.boolean() }),
  fc.constant({ kind: 'expire' as const }),
);
const typeArb = fc.constantFrom('GTC' as const, 'GTD' as const, 'FOK' as const, 'FAK' as const);

describe('order state machine: properties', () => {
  it('random event sequences never reach an impossible state; matched never decreases; terminal is final', () => {
    fc.assert(
      fc.property(typeArb, fc.array(inputArb, { maxLength: 40 }), (type, inputs) => {
        let s = of(type);
        for (const input of inputs) {
          const t = applyOrderInput(s, input);
          expect(orderStateProblems(t.state)).toEqual([]);
          expect(t.state.matched >= s.matched).toBe(true);
          if (!t.ok) expect(t.state).toBe(s);
          if (isTerminal(s)) expect(t.state.status).toBe(s.status);
          if (s.status === 'rejected') expect(t.state).toEqual(s);
          s = t.state;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('applying the same input twice equals applying it once', () => {
    fc.assert(
      fc.property(typeArb, fc.array(inputArb, { maxLength: 20 }), inputArb, (type, prefix, input) => {
        const s = applyOrderInputs(of(type), prefix).state;
        const once = applyOrderInput(s, input);
        const twice = applyOrderInput(once.state, input);
        expect(twice.state).toEqual(once.state);
        if (twice.ok) expect(twice.changed).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('venue updates in any order settle on the largest size_matched', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 6 }), (matchedUnits) => {
        const updates = matchedUnits.map((u) => venue('UPDATE', 'LIVE', String(u)));
        const fwd = reach([accepted('live'), ...[...updates].sort((a, b) => Number((a as { sizeMatched: bigint }).sizeMatched - (b as { sizeMatched: bigint }).sizeMatched))]);
        const shuffled = reach([accepted('live'), ...updates]);
        expect(shuffled).toEqual(fwd);
        expect(shuffled.matched).toBe(m(String(Math.max(...matchedUnits))));
        expect(shuffled.status).toBe('partially_filled');
      }),
    );
  });
});
