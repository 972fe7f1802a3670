import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { applyTradeStatus, parseTradeStatus, TRADE_STATUSES, TradeTracker, type TradeEffect, type TradeState, type TradeStatus } from '../src/trade-state.js';

const at = (status: TradeStatus): TradeState => ({ tradeId: 't', status });

describe('trade state machine: transitions', () => {
  // [from, to, resulting status or 'REFUSED', effect, stale]
  const table: [TradeStatus | undefined, TradeStatus, TradeStatus | 'REFUSED', TradeEffect?, boolean?][] = [
    [undefined, 'matched', 'matched', 'opened'],
    [undefined, 'mined', 'mined', 'opened'],
    [undefined, 'retrying', 'retrying', 'opened'],
    [undefined, 'confirmed', 'confirmed', 'confirmed'],
    [undefined, 'failed', 'failed', 'voided'],
    ['matched', 'matched', 'matched', 'none'],
    ['matched', 'mined', 'mined', 'none'],
    ['matched', 'retrying', 'retrying', 'none'],
    ['matched', 'confirmed', 'confirmed', 'confirmed'],
    ['matched', 'failed', 'failed', 'voided'],
    ['mined', 'matched', 'mined', 'none', true],
    ['mined', 'mined', 'mined', 'none'],
    ['mined', 'retrying', 'retrying', 'none'],
    ['mined', 'confirmed', 'confirmed', 'confirmed'],
    ['mined', 'failed', 'failed', 'voided'],
    ['retrying', 'matched', 'retrying', 'none', true],
    ['retrying', 'mined', 'mined', 'none'],
    ['retrying', 'retrying', 'retrying', 'none'],
    ['retrying', 'confirmed', 'confirmed', 'confirmed'],
    ['retrying', 'failed', 'failed', 'voided'],
    ['confirmed', 'matched', 'confirmed', 'none', true],
    ['confirmed', 'mined', 'confirmed', 'none', true],
    ['confirmed', 'retrying', 'confirmed', 'none', true],
    ['confirmed', 'confirmed', 'confirmed', 'none'],
    ['confirmed', 'failed', 'REFUSED'],
    ['failed', 'matched', 'failed', 'none', true],
    ['failed', 'mined', 'failed', 'none', true],
    ['failed', 'retrying', 'failed', 'none', true],
    ['failed', 'confirmed', 'REFUSED'],
    ['failed', 'failed', 'failed', 'none'],
  ];

  it.each(table)('%s → %s = %s', (from, to, expected, effect, stale) => {
    const prev = from === undefined ? undefined : at(from);
    const t = applyTradeStatus(prev, 't', to);
    if (expected === 'REFUSED') {
      expect(t).toMatchObject({ ok: false, code: 'terminal_conflict' });
      expect(t.state).toBe(prev);
      return;
    }
    expect(t).toMatchObject({ ok: true, state: { tradeId: 't', status: expected }, effect });
    expect(t.ok && t.stale === true).toBe(stale === true);
  });

  it('parses every spelling the venue uses', () => {
    expect(parseTradeStatus('CONFIRMED')).toBe('confirmed');
    expect(parseTradeStatus('TRADE_STATUS_CONFIRMED')).toBe('confirmed');
    expect(parseTradeStatus('MATCHED_NOT_BROADCASTED')).toBe('matched');
    expect(parseTradeStatus(' retrying ')).toBe('retrying');
    expect(parseTradeStatus('SETTLED')).toBeUndefined();
    expect(applyTradeStatus(undefined, 't', 'TRADE_STATUS_MINED')).toMatchObject({ ok: true, state: { status: 'mined' } });
    expect(applyTradeStatus(undefined, 't', 'SETTLED')).toMatchObject({ ok: false, code: 'unknown_status' });
  });

  it('refuses the state of another trade', () => {
    expect(applyTradeStatus(at('matched'), 'other', 'mined')).toMatchObject({ ok: false, code: 'id_mismatch' });
  });

  it('the tracker keys by trade id and lists what is still provisional', () => {
    const tr = new TradeTracker();
    tr.apply('a', 'MATCHED');
    tr.apply('b', 'MATCHED');
    tr.apply('b', 'CONFIRMED');
    tr.apply('c', 'FAILED');
    expect(tr.provisional().map((t) => t.tradeId)).toEqual(['a']);
    expect(tr.apply('b', 'MINED')).toMatchObject({ ok: true, changed: false, stale: true });
    expect(tr.apply('c', 'CONFIRMED')).toMatchObject({ ok: false, code: 'terminal_conflict' });
    expect(tr.get('c')?.status).toBe('failed');
    expect(tr.forget('a')).toBe(false);
    expect(tr.forget('b')).toBe(true);
    expect(tr.size).toBe(2);
  });
});

/** Lifecycles the venue can produce: provisional steps, then at most one terminal status. */
const pathArb: fc.Arbitrary<TradeStatus[]> = fc
  .tuple(fc.array(fc.constantFrom<TradeStatus>('mined', 'retrying'), { maxLength: 4 }), fc.constantFrom<TradeStatus | undefined>('confirmed', 'failed', undefined))
  .map(([mid, end]) => ['matched', ...mid, ...(end ? [end] : [])]);

describe('trade state machine: properties', () => {
  it('any delivery (reordered, duplicated) of a real lifecycle ends at its terminal status, with one effect', () => {
    fc.assert(
      fc.property(
        pathArb.chain((path) => fc.tuple(fc.constant(path), fc.shuffledSubarray([...path, ...path], { minLength: path.length }))),
        ([path, delivered]) => {
          // Every status of the path is delivered at least once (the subarray may drop duplicates only).
          const mustHave = new Set(path);
          const got = new Set(delivered);
          fc.pre([...mustHave].every((s) => got.has(s)));
          const tr = new TradeTracker();
          const effects: TradeEffect[] = [];
          for (const s of delivered) {
            const t = tr.apply('x', s);
            expect(t.ok).toBe(true);
            if (t.ok) effects.push(t.effect);
          }
          const end = path[path.length - 1] as TradeStatus;
          const terminal = end === 'confirmed' || end === 'failed';
          if (terminal) expect(tr.get('x')?.status).toBe(end);
          expect(effects.filter((e) => e === 'confirmed').length).toBe(end === 'confirmed' ? 1 : 0);
          expect(effects.filter((e) => e === 'voided').length).toBe(end === 'failed' ? 1 : 0);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('random statuses: same status twice equals once; confirmed and failed never swap; terminal stays', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.constantFrom(...TRADE_STATUSES)), { maxLength: 40 }), (events) => {
        const tr = new TradeTracker();
        for (const [id, status] of events) {
          const before = tr.get(id);
          const once = applyTradeStatus(before, id, status);
          const twice = applyTradeStatus(once.state, id, status);
          expect(twice.state).toEqual(once.state);
          if (twice.ok) expect(twice.changed).toBe(false);
          tr.apply(id, status);
          const after = tr.get(id) as TradeState;
          if (before && (before.status === 'confirmed' || before.status === 'failed')) expect(after.status).toBe(before.status);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
