import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { toMicros, type Side } from '@polybot/protocol';
import { Inventory, type FillSettlement, type InventoryFill, type InventoryView } from '../src/inventory.js';
import { applyFill, FLAT } from '../src/positions.js';

const m = (s: string) => toMicros(s);
const fill = (tradeId: string, side: Side, size: string, price: string, fee = '0'): InventoryFill => ({
  tradeId,
  side,
  size: m(size),
  usdc: (m(size) * m(price)) / 1_000_000n,
  fee: m(fee),
});

/** settled + pendingBuy − pendingSell + shortfall = size: nothing appears or vanishes. */
const conserved = (v: InventoryView) => v.settled + v.pendingBuy - v.pendingSell + v.shortfall === v.size;

describe('inventory: settled and pending', () => {
  it('averages, realizes, and keeps unconfirmed shares out of what can be sold', () => {
    const inv = new Inventory();
    inv.addFill(fill('b1', 'BUY', '10', '0.56'));
    inv.addFill(fill('b2', 'BUY', '5', '0.59'));
    expect(inv.view()).toMatchObject({ size: m('15'), cost: m('8.55'), avgPrice: m('0.57'), settled: 0n, pendingBuy: m('15'), pendingCash: -m('8.55') });
    expect(inv.canSell(m('5'))).toMatchObject({ ok: false, code: 'unsettled_inventory', free: 0n, afterSettlement: m('15') });
    expect(inv.canSell(m('16'))).toMatchObject({ ok: false, code: 'insufficient_position' });

    inv.confirm('b1');
    expect(inv.view()).toMatchObject({ settled: m('10'), pendingBuy: m('5'), settledCash: -m('5.6'), pendingCash: -m('2.95') });
    expect(inv.canSell(m('10'))).toEqual({ ok: true, free: m('10') });
    expect(inv.canSell(m('10'), m('1'))).toMatchObject({ ok: false, code: 'unsettled_inventory' });

    inv.addFill(fill('s1', 'SELL', '5', '0.6'));
    expect(inv.view()).toMatchObject({ size: m('10'), cost: m('5.7'), realized: m('0.15'), pendingSell: m('5') });
    // The pending sell has committed 5 of the 10 settled shares.
    expect(inv.canSell(m('6'))).toMatchObject({ ok: false, code: 'unsettled_inventory', free: m('5') });

    // b2 fails: as if it never happened — the sell now realizes against b1's price alone.
    inv.fail('b2');
    const v = inv.view();
    expect(v).toMatchObject({ size: m('5'), cost: m('2.8'), avgPrice: m('0.56'), realized: m('0.2'), pendingBuy: 0n, pendingSell: m('5') });
    expect(conserved(v)).toBe(true);
    expect(inv.unrealized('0.7')).toBe(m('0.7'));
  });

  it('fees raise a buy cost and cut a sell proceeds; cash is exact', () => {
    const inv = new Inventory();
    inv.addFill(fill('b', 'BUY', '10', '0.5', '0.1'), 'confirmed');
    inv.addFill(fill('s', 'SELL', '10', '0.6', '0.12'), 'confirmed');
    expect(inv.view()).toMatchObject({ size: 0n, cost: 0n, realized: m('0.78'), fees: m('0.22'), settledCash: m('0.78'), pendingCash: 0n });
  });

  it('a duplicate trade is a status update; conflicting amounts and confirmed ↔ failed are refused', () => {
    const inv = new Inventory();
    expect(inv.addFill(fill('t', 'BUY', '1', '0.5'))).toEqual({ ok: true, changed: true });
    expect(inv.addFill(fill('t', 'BUY', '1', '0.5'))).toEqual({ ok: true, changed: false });
    expect(inv.addFill(fill('t', 'BUY', '1', '0.5'), 'confirmed')).toEqual({ ok: true, changed: true });
    expect(inv.addFill(fill('t', 'BUY', '1', '0.5'), 'pending')).toEqual({ ok: true, changed: false });
    expect(inv.settlementOf('t')).toBe('confirmed');
    expect(inv.addFill(fill('t', 'BUY', '2', '0.5'))).toMatchObject({ ok: false, code: 'fill_conflict' });
    expect(inv.fail('t')).toMatchObject({ ok: false, code: 'terminal_conflict' });
    expect(inv.confirm('nope')).toMatchObject({ ok: false, code: 'unknown_trade' });
    expect(inv.addFill({ tradeId: 'z', side: 'BUY', size: 0n, usdc: 0n })).toMatchObject({ ok: false, code: 'invalid_fill' });
  });

  it('a trade first seen FAILED never counts', () => {
    const inv = new Inventory();
    inv.addFill(fill('f', 'BUY', '10', '0.5'), 'failed');
    expect(inv.view()).toEqual(new Inventory().view());
    expect(inv.addFill(fill('f', 'BUY', '10', '0.5'))).toEqual({ ok: true, changed: false });
  });

  it('resolution pays 1 or 0 per share and realizes the PnL, pending shares included', () => {
    const build = () => {
      const inv = new Inventory();
      inv.addFill(fill('b1', 'BUY', '10', '0.4'), 'confirmed');
      inv.addFill(fill('b2', 'BUY', '5', '0.5'));
      return inv;
    };
    const win = build();
    win.resolveOutcome(true);
    expect(win.view()).toMatchObject({ size: 0n, cost: 0n, realized: m('8.5'), resolved: m('1'), settled: -m('5'), pendingBuy: m('5') });
    expect(conserved(win.view())).toBe(true);
    expect(win.unrealized('0.3')).toBe(0n);
    expect(win.canSell(m('1'))).toMatchObject({ ok: false, code: 'market_resolved' });
    win.confirm('b2');
    expect(win.view()).toMatchObject({ settled: 0n, pendingBuy: 0n, realized: m('8.5'), settledCash: m('8.5') });

    const failed = build();
    failed.resolve('1');
    failed.fail('b2');
    expect(failed.view()).toMatchObject({ settled: 0n, realized: m('6'), settledCash: m('6') });

    const lose = build();
    lose.resolve('0');
    expect(lose.view()).toMatchObject({ realized: -m('6.5'), size: 0n });
    expect(lose.resolve('0')).toEqual({ ok: true, changed: false });
    expect(lose.resolve('1')).toMatchObject({ ok: false, code: 'resolution_conflict' });
    expect(lose.resolve('1.5')).toMatchObject({ ok: false, code: 'invalid_payout' });
  });

  it('a fill learned after resolution still belongs before it', () => {
    const a = new Inventory();
    a.addFill(fill('b1', 'BUY', '10', '0.4'), 'confirmed');
    a.resolve('1');
    a.addFill(fill('b2', 'BUY', '5', '0.5'), 'confirmed');
    const b = new Inventory();
    b.addFill(fill('b1', 'BUY', '10', '0.4'), 'confirmed');
    b.addFill(fill('b2', 'BUY', '5', '0.5'), 'confirmed');
    b.resolve('1');
    expect(a.view()).toEqual(b.view());
  });

  it('reports the shortfall when a failed buy leaves a sell without shares', () => {
    const inv = new Inventory();
    inv.addFill(fill('b1', 'BUY', '5', '0.5'), 'confirmed');
    inv.addFill(fill('b2', 'BUY', '5', '0.5'));
    inv.addFill(fill('s1', 'SELL', '8', '0.6'), 'confirmed');
    inv.fail('b2');
    const v = inv.view();
    expect(v).toMatchObject({ size: 0n, shortfall: m('3') });
    expect(conserved(v)).toBe(true);
  });
});

// ------------------------------------------------------------------ properties

interface Gen {
  side: Side;
  centiShares: number;
  cents: number;
  feeMicros: number;
  final: FillSettlement;
  delay: number;
}

const genArb: fc.Arbitrary<Gen> = fc.record({
  side: fc.constantFrom<Side>('BUY', 'BUY', 'SELL'),
  centiShares: fc.integer({ min: 1, max: 5_000 }),
  cents: fc.integer({ min: 1, max: 99 }),
  feeMicros: fc.integer({ min: 0, max: 50_000 }),
  final: fc.constantFrom<FillSettlement>('pending', 'confirmed', 'failed'),
  delay: fc.integer({ min: 1, max: 60 }),
});

const toFill = (g: Gen, i: number): InventoryFill => {
  const size = BigInt(g.centiShares) * 10_000n;
  return { tradeId: `t${i}`, side: g.side, size, usdc: (size * BigInt(g.cents) * 10_000n) / 1_000_000n, fee: BigInt(g.feeMicros) };
};

type Ev = { at: number; order: number; run: (inv: Inventory) => void };

/** Fills arrive in order; each one's final status arrives later, interleaved with others, sometimes twice. */
function events(gens: Gen[], dupes: boolean[]): Ev[] {
  const out: Ev[] = [];
  gens.forEach((g, i) => {
    const f = toFill(g, i);
    out.push({ at: i * 10, order: 0, run: (inv) => expect(inv.addFill(f).ok).toBe(true) });
    if (g.final !== 'pending') {
      out.push({ at: i * 10 + g.delay, order: 1, run: (inv) => expect(inv.setStatus(f.tradeId, g.final).ok).toBe(true) });
      // A replayed trade event carrying the final status again.
      if (dupes[i]) out.push({ at: i * 10 + g.delay + 3, order: 2, run: (inv) => expect(inv.addFill(f, g.final)).toEqual({ ok: true, changed: false }) });
    }
  });
  return out.sort((a, b) => a.at - b.at || a.order - b.order);
}

describe('inventory: properties', () => {
  it('random fills with a random subset FAILED equal the inventory of the other fills alone, exactly', () => {
    fc.assert(
      fc.property(fc.array(genArb, { maxLength: 25 }), fc.array(fc.boolean(), { minLength: 25, maxLength: 25 }), fc.constantFrom(undefined, '0', '1'), (gens, dupes, payout) => {
        const a = new Inventory();
        for (const e of events(gens, dupes)) {
          e.run(a);
          expect(conserved(a.view())).toBe(true);
        }
        const b = new Inventory();
        gens.forEach((g, i) => {
          if (g.final !== 'failed') b.addFill(toFill(g, i), g.final);
        });
        if (payout !== undefined) {
          a.resolve(payout);
          b.resolve(payout);
        }
        expect(a.view()).toEqual(b.view());
        expect(conserved(a.view())).toBe(true);

        // And both equal an independent fold of positions.ts over the surviving fills.
        let pos = FLAT;
        let settled = 0n;
        let pendingBuy = 0n;
        let pendingSell = 0n;
        let fees = 0n;
        gens.forEach((g, i) => {
          if (g.final === 'failed') return;
          const f = toFill(g, i);
          pos = applyFill(pos, f.side, f.size, f.usdc, f.fee);
          fees += f.fee ?? 0n;
          const signed = f.side === 'BUY' ? f.size : -f.size;
          if (g.final === 'confirmed') settled += signed;
          else if (f.side === 'BUY') pendingBuy += f.size;
          else pendingSell += f.size;
        });
        if (payout === undefined) {
          expect(a.view()).toMatchObject({ size: pos.size, cost: pos.cost, realized: pos.realized, settled, pendingBuy, pendingSell, fees });
        } else {
          const proceeds = payout === '1' ? pos.size : 0n;
          expect(a.view()).toMatchObject({ size: 0n, cost: 0n, realized: pos.realized + proceeds - pos.cost, settled: settled - pos.size, pendingBuy, pendingSell });
        }
      }),
      { numRuns: 500 },
    );
  });

  it('confirming everything moves all shares and cash to settled and changes no PnL', () => {
    fc.assert(
      fc.property(fc.array(genArb, { maxLength: 20 }), (gens) => {
        const inv = new Inventory();
        gens.forEach((g, i) => inv.addFill(toFill(g, i)));
        const before = inv.view();
        gens.forEach((_g, i) => inv.confirm(`t${i}`));
        const after = inv.view();
        expect(after).toMatchObject({ size: before.size, cost: before.cost, realized: before.realized, fees: before.fees, pendingBuy: 0n, pendingSell: 0n, pendingCash: 0n });
        expect(after.settled).toBe(before.settled + before.pendingBuy - before.pendingSell);
        expect(after.settledCash).toBe(before.settledCash + before.pendingCash);
      }),
      { numRuns: 300 },
    );
  });
});
