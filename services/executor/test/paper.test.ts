import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { toMicros, type Side } from '@polybot/protocol';
import { applyOrderInput, newOrderState } from '../src/order-state.js';
import { Inventory } from '../src/inventory.js';
import {
  levelsFromWire,
  PAPER_ERRORS,
  PaperEngine,
  takerFee,
  walkBook,
  type PaperBookInput,
  type PaperOrder,
  type PaperSubmitResult,
  type WireLevel,
} from '../src/paper.js';

const m = (s: string) => toMicros(s);
const TOKEN = 'tok1';

const BOOK: PaperBookInput = {
  token_id: TOKEN,
  bids: [
    [0.48, 80],
    [0.47, 100],
  ],
  asks: [
    [0.5, 100],
    [0.52, 100],
    [0.55, 50],
  ],
};

function engine(book: PaperBookInput = BOOK): PaperEngine {
  const e = new PaperEngine();
  e.onBook(book);
  return e;
}

let n = 0;
const order = (o: Partial<PaperOrder> & Pick<PaperOrder, 'side' | 'orderType'> & { px: string; qty?: string; usd?: string }): PaperOrder => {
  const { px, qty, usd, ...rest } = o;
  return {
    id: `o${++n}`,
    tokenId: TOKEN,
    price: m(px),
    ...(qty !== undefined ? { size: m(qty) } : {}),
    ...(usd !== undefined ? { amount: m(usd) } : {}),
    ...rest,
  };
};

const ok = (r: PaperSubmitResult) => {
  if (!r.ok) throw new Error(`rejected: ${r.errorMsg}`);
  return r;
};
const fillsOf = (r: PaperSubmitResult) => ok(r).fills.map((f) => [f.price, f.size, f.usdc]);

describe('paper engine: taking liquidity', () => {
  it('walks the depth at the book prices, exactly', () => {
    const r = ok(engine().submit(order({ side: 'BUY', orderType: 'FAK', px: '0.52', qty: '150' })));
    expect(fillsOf(r)).toEqual([
      [m('0.5'), m('100'), m('50')],
      [m('0.52'), m('50'), m('26')],
    ]);
    expect(r).toMatchObject({ status: 'matched', matched: m('150'), usdc: m('76'), killed: 0n, fee: 0n });
    const s = ok(engine().submit(order({ side: 'SELL', orderType: 'FOK', px: '0.47', qty: '100' })));
    expect(fillsOf(s)).toEqual([
      [m('0.48'), m('80'), m('38.4')],
      [m('0.47'), m('20'), m('9.4')],
    ]);
    expect(s.fills.every((f) => f.liquidity === 'taker' && f.bookSeq === 1)).toBe(true);
    expect(s.fills.map((f) => f.tradeId)).toEqual([`${s.orderId}`, `${s.orderId}`].map((id, i) => `paper-${id}-${i + 1}`));
  });

  it('FOK fills all or nothing, leaving the book untouched when killed', () => {
    const e = engine();
    const before = e.depth(TOKEN);
    expect(e.submit(order({ side: 'BUY', orderType: 'FOK', px: '0.55', qty: '250.01' }))).toMatchObject({ ok: false, code: 'fok_not_filled', errorMsg: PAPER_ERRORS.fok });
    expect(e.depth(TOKEN)).toEqual(before);
    expect(ok(e.submit(order({ side: 'BUY', orderType: 'FOK', px: '0.55', qty: '250' }))).matched).toBe(m('250'));
  });

  it('FAK fills what it can and kills the rest; nothing to take is the venue error', () => {
    const r = ok(engine().submit(order({ side: 'BUY', orderType: 'FAK', px: '0.55', qty: '300' })));
    expect(r).toMatchObject({ matched: m('250'), usdc: m('129.5'), killed: m('50') });
    expect(r.resting).toBeUndefined();
    expect(engine().submit(order({ side: 'BUY', orderType: 'FAK', px: '0.49', qty: '10' }))).toMatchObject({ ok: false, code: 'fak_no_match', errorMsg: PAPER_ERRORS.fak });
  });

  it('a market BUY by amount spends exactly the amount', () => {
    expect(ok(engine().submit(order({ side: 'BUY', orderType: 'FOK', px: '0.52', usd: '76' })))).toMatchObject({ matched: m('150'), usdc: m('76'), killed: 0n });
    const thirds = ok(engine({ token_id: TOKEN, bids: [], asks: [[0.3, 100]] }).submit(order({ side: 'BUY', orderType: 'FOK', px: '0.3', usd: '10' })));
    expect(thirds).toMatchObject({ matched: m('33.333333'), usdc: m('10') });
    expect(engine().submit(order({ side: 'BUY', orderType: 'FOK', px: '0.52', usd: '102.01' }))).toMatchObject({ ok: false, code: 'fok_not_filled' });
    // 50 pUSD buys the 0.50 level; the other 50 buy floor(50 / 0.52) micro shares, costing 50 once rounded up.
    expect(ok(engine().submit(order({ side: 'BUY', orderType: 'FAK', px: '0.52', usd: '100' })))).toMatchObject({ matched: m('196.153846'), usdc: m('100'), killed: 0n });
  });

  it('FAK by amount reports the unspent pUSD as killed', () => {
    const r = ok(engine().submit(order({ side: 'BUY', orderType: 'FAK', px: '0.5', usd: '60' })));
    expect(r).toMatchObject({ matched: m('100'), usdc: m('50'), killed: m('10') });
  });

  it('GTC takes what crosses and rests the remainder', () => {
    const e = engine();
    const r = ok(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.5', qty: '130' })));
    expect(r).toMatchObject({ status: 'matched', matched: m('100'), usdc: m('50'), resting: { remaining: m('30'), price: m('0.5'), size: m('130') } });
    const quiet = ok(e.submit(order({ side: 'SELL', orderType: 'GTC', px: '0.6', qty: '10' })));
    expect(quiet).toMatchObject({ status: 'live', fills: [], matched: 0n, resting: { remaining: m('10') } });
    expect(e.restingOrders(TOKEN).map((o) => o.id)).toEqual([r.orderId, quiet.orderId]);
  });

  it('post-only orders that would cross are rejected with the venue text', () => {
    const e = engine();
    expect(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.5', qty: '10', postOnly: true }))).toMatchObject({
      ok: false,
      code: 'post_only_crosses',
      errorMsg: 'invalid post-only order: order crosses book',
    });
    expect(e.submit(order({ side: 'SELL', orderType: 'GTD', px: '0.48', qty: '10', postOnly: true }))).toMatchObject({ ok: false, code: 'post_only_crosses' });
    expect(ok(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.49', qty: '10', postOnly: true })))).toMatchObject({ status: 'live' });
    expect(e.submit(order({ side: 'BUY', orderType: 'FOK', px: '0.49', qty: '10', postOnly: true }))).toMatchObject({ ok: false, code: 'post_only_type' });
  });

  it('two orders in one book update never take the same liquidity; a new book brings it back', () => {
    const e = engine();
    expect(fillsOf(e.submit(order({ side: 'BUY', orderType: 'FAK', px: '0.52', qty: '120' })))).toEqual([
      [m('0.5'), m('100'), m('50')],
      [m('0.52'), m('20'), m('10.4')],
    ]);
    expect(fillsOf(e.submit(order({ side: 'BUY', orderType: 'FAK', px: '0.52', qty: '100' })))).toEqual([[m('0.52'), m('80'), m('41.6')]]);
    expect(e.submit(order({ side: 'BUY', orderType: 'FAK', px: '0.52', qty: '1' }))).toMatchObject({ ok: false, code: 'fak_no_match' });
    // Post-only sees the consumed book: 0.52 is gone, so a bid there no longer crosses.
    expect(ok(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.52', qty: '5', postOnly: true }))).status).toBe('live');
    expect(e.depth(TOKEN)?.asks).toEqual([{ price: m('0.55'), size: m('50') }]);
    e.onBook(BOOK);
    expect(e.depth(TOKEN)).toMatchObject({ seq: 2 });
    // The resting post-only bid at 0.52 fills first from the new book, then the taker gets the rest.
    const r = ok(e.submit(order({ side: 'BUY', orderType: 'FAK', px: '0.5', qty: '100' })));
    expect(r.matched).toBe(m('95'));
    expect(r.fills[0]?.bookSeq).toBe(2);
  });

  it('charges taker fees from the caller schedule', () => {
    // The V2 curve, docs example: 100 shares at 0.50, rate 0.25, exponent 2 → 1.5625 pUSD.
    const curve = ok(engine({ token_id: TOKEN, bids: [], asks: [[0.5, 100]] }).submit(order({ side: 'BUY', orderType: 'FOK', px: '0.5', qty: '100', fees: { rateBps: 2500, exponent: 2 } })));
    expect(curve.fee).toBe(m('1.5625'));
    const flat = ok(engine().submit(order({ side: 'BUY', orderType: 'FAK', px: '0.52', qty: '150', fees: { rateBps: 200 } })));
    expect(flat.fills.map((f) => f.fee)).toEqual([m('1'), m('0.52')]);
    expect(flat.fee).toBe(m('1.52'));
    expect(takerFee(m('3'), m('0.33'), m('0.99'), { rateBps: 1 })).toBe(99n);
    expect(takerFee(m('1'), m('0.5'), m('0.5'), undefined)).toBe(0n);
  });

  it('refuses malformed orders and reused ids', () => {
    const e = engine();
    expect(e.submit(order({ side: 'SELL', orderType: 'FOK', px: '0.4', usd: '10' }))).toMatchObject({ ok: false, code: 'invalid_order' });
    expect(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.4', usd: '10' }))).toMatchObject({ ok: false, code: 'invalid_order' });
    expect(e.submit(order({ side: 'BUY', orderType: 'FOK', px: '0.4', qty: '1', usd: '10' }))).toMatchObject({ ok: false, code: 'invalid_order' });
    expect(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '1', qty: '1' }))).toMatchObject({ ok: false, code: 'invalid_order' });
    expect(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.4', qty: '0' }))).toMatchObject({ ok: false, code: 'invalid_order' });
    expect(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.4', qty: '1', fees: { rateBps: 1.5 } }))).toMatchObject({ ok: false, code: 'invalid_order' });
    const o = order({ side: 'BUY', orderType: 'GTC', px: '0.4', qty: '1' });
    ok(e.submit(o));
    expect(e.submit(o)).toMatchObject({ ok: false, code: 'duplicated', errorMsg: `order ${o.id} is invalid. Duplicated.` });
    // A killed FOK was never accepted: its id may be used again, as at the venue.
    const fok = order({ side: 'BUY', orderType: 'FOK', px: '0.5', qty: '1000' });
    expect(e.submit(fok).ok).toBe(false);
    expect(e.submit({ ...fok, size: m('10') }).ok).toBe(true);
  });

  it('without a book nothing fills: resting orders rest, market orders are killed', () => {
    const e = new PaperEngine();
    expect(ok(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.4', qty: '10' }))).status).toBe('live');
    expect(e.submit(order({ side: 'BUY', orderType: 'FOK', px: '0.4', qty: '10' }))).toMatchObject({ ok: false, code: 'fok_not_filled' });
    expect(e.depth(TOKEN)).toBeUndefined();
  });
});

describe('paper engine: resting orders', () => {
  it('fill at their own price when a later book crosses them, at most the shown size', () => {
    const e = engine();
    const r = ok(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.45', qty: '50' })));
    const u1 = e.onBook({ token_id: TOKEN, bids: [], asks: [[0.44, 30], [0.45, 10], [0.46, 100]] });
    expect(u1.fills).toEqual([
      { orderId: r.orderId, tradeId: `paper-${r.orderId}-1`, tokenId: TOKEN, side: 'BUY', price: m('0.45'), size: m('40'), usdc: m('18'), fee: 0n, liquidity: 'maker', bookSeq: 2 },
    ]);
    expect(u1.completed).toEqual([]);
    expect(e.restingOrder(r.orderId)?.remaining).toBe(m('10'));
    // The resting order took the cheap levels of this update: a taker finds them gone.
    expect(e.submit(order({ side: 'BUY', orderType: 'FAK', px: '0.45', qty: '1' }))).toMatchObject({ ok: false, code: 'fak_no_match' });
    const u2 = e.onBook({ token_id: TOKEN, bids: [], asks: [[0.45, 100]] });
    expect(u2.fills.map((f) => [f.size, f.tradeId])).toEqual([[m('10'), `paper-${r.orderId}-2`]]);
    expect(u2.completed).toEqual([r.orderId]);
    expect(e.restingOrders()).toEqual([]);
  });

  it('share one update by price priority, then arrival', () => {
    const e = engine({ token_id: TOKEN, bids: [], asks: [[0.6, 10]] });
    const low = ok(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.46', qty: '30' })));
    const high = ok(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.47', qty: '30' })));
    const low2 = ok(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.46', qty: '30' })));
    const u = e.onBook({ token_id: TOKEN, bids: [], asks: [[0.45, 45]] });
    expect(u.fills.map((f) => [f.orderId, f.size, f.price])).toEqual([
      [high.orderId, m('30'), m('0.47')],
      [low.orderId, m('15'), m('0.46')],
    ]);
    expect(e.restingOrder(low2.orderId)?.remaining).toBe(m('30'));
  });

  it('sells rest and fill against bids the same way', () => {
    const e = engine();
    const s = ok(e.submit(order({ side: 'SELL', orderType: 'GTC', px: '0.49', qty: '20' })));
    expect(s.status).toBe('live');
    const u = e.onBook({ token_id: TOKEN, bids: [[0.5, 5], [0.49, 10], [0.48, 100]], asks: [] });
    expect(u.fills.map((f) => [f.side, f.price, f.size, f.usdc])).toEqual([['SELL', m('0.49'), m('15'), m('7.35')]]);
    expect(e.onBook({ token_id: 'other', bids: [[0.9, 100]], asks: [] }).fills).toEqual([]);
  });

  it('cancel and GTD expiry remove resting orders', () => {
    const e = engine();
    const gtd = ok(e.submit(order({ side: 'BUY', orderType: 'GTD', px: '0.4', qty: '10', expiresAtMs: 1_000 })));
    const gtc = ok(e.submit(order({ side: 'BUY', orderType: 'GTC', px: '0.4', qty: '10', expiresAtMs: 5 })));
    expect(e.expire(999)).toEqual([]);
    expect(e.expire(1_000).map((o) => o.id)).toEqual([gtd.orderId]);
    expect(e.cancel(gtc.orderId)?.remaining).toBe(m('10'));
    expect(e.cancel(gtc.orderId)).toBeUndefined();
    expect(e.onBook({ token_id: TOKEN, bids: [], asks: [[0.3, 100]] }).fills).toEqual([]);
  });
});

describe('paper engine: book conversion', () => {
  it('reads wire numbers through their decimal form, sorts best first, merges and drops junk', () => {
    const asks: WireLevel[] = [
      [0.52, 10.129],
      [0.5, 3],
      [0.1 + 0.2, 1],
      [0.5, 2],
      [0.6, 0],
      [1, 5],
      ['0.55', '7.5'],
    ];
    expect(levelsFromWire(asks, 'asks')).toEqual([
      { price: m('0.3'), size: m('1') },
      { price: m('0.5'), size: m('5') },
      { price: m('0.52'), size: m('10.129') },
      { price: m('0.55'), size: m('7.5') },
    ]);
    expect(levelsFromWire(asks, 'bids').map((l) => l.price)).toEqual([m('0.55'), m('0.52'), m('0.5'), m('0.3')]);
    expect(levelsFromWire([[0.5, 1e-7]], 'bids')).toEqual([]);
  });
});

describe('paper engine: feeding the order and inventory modules', () => {
  it('the submit result is a POST answer the order state machine understands', () => {
    const fak = ok(engine().submit(order({ side: 'BUY', orderType: 'FAK', px: '0.55', qty: '300' })));
    const s1 = applyOrderInput(newOrderState({ orderType: 'FAK', size: m('300') }), { kind: 'post', outcome: 'accepted', status: fak.status, matched: fak.matched });
    expect(s1.state).toMatchObject({ status: 'canceled', matched: m('250') });
    const gtc = ok(engine().submit(order({ side: 'BUY', orderType: 'GTC', px: '0.5', qty: '130' })));
    const s2 = applyOrderInput(newOrderState({ orderType: 'GTC', size: m('130') }), { kind: 'post', outcome: 'accepted', status: gtc.status, matched: gtc.matched });
    expect(s2.state).toMatchObject({ status: 'partially_filled', matched: m('100') });
    const inv = new Inventory();
    for (const f of [...fak.fills, ...gtc.fills]) inv.addFill({ tradeId: f.tradeId, side: f.side, size: f.size, usdc: f.usdc, fee: f.fee }, 'confirmed');
    expect(inv.view()).toMatchObject({ size: m('350'), cost: m('179.5'), settled: m('350') });
  });
});

// ------------------------------------------------------------------ properties

/** A side of a book on the cent grid with 2-decimal sizes, as the venue publishes. */
const sideArb = fc.uniqueArray(fc.tuple(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 50_000 })), { selector: (l) => l[0], maxLength: 12 });
const toWire = (levels: [number, number][]): WireLevel[] => levels.map(([c, cs]) => [c / 100, cs / 100]);

interface OrderGen {
  side: Side;
  type: 'GTC' | 'FOK' | 'FAK';
  cents: number;
  centiShares: number;
  byAmount: boolean;
}
const orderGenArb: fc.Arbitrary<OrderGen> = fc.record({
  side: fc.constantFrom<Side>('BUY', 'SELL'),
  type: fc.constantFrom('GTC' as const, 'FOK' as const, 'FAK' as const),
  cents: fc.integer({ min: 1, max: 99 }),
  centiShares: fc.integer({ min: 1, max: 80_000 }),
  byAmount: fc.boolean(),
});

function toOrder(g: OrderGen, i: number): PaperOrder {
  const market = g.type !== 'GTC';
  const amount = g.byAmount && market && g.side === 'BUY';
  return {
    id: `p${i}`,
    tokenId: TOKEN,
    side: g.side,
    orderType: g.type,
    price: BigInt(g.cents) * 10_000n,
    ...(amount ? { amount: BigInt(g.centiShares) * 10_000n } : { size: BigInt(g.centiShares) * 10_000n }),
  };
}

describe('paper engine: properties', () => {
  it('walking depth is exact, limits hold, FOK/FAK/GTC behave, and no liquidity is used twice', () => {
    fc.assert(
      fc.property(sideArb, sideArb, fc.array(orderGenArb, { maxLength: 12 }), (bids, asks, gens) => {
        const book = { token_id: TOKEN, bids: toWire(bids), asks: toWire(asks) };
        const e = new PaperEngine();
        e.onBook(book);
        const shown = { bids: levelsFromWire(book.bids, 'bids'), asks: levelsFromWire(book.asks, 'asks') };
        const taken = new Map<string, bigint>();
        gens.forEach((g, i) => {
          const o = toOrder(g, i);
          const depth = e.depth(TOKEN) ?? { bids: [], asks: [] };
          const opposite = o.side === 'BUY' ? depth.asks : depth.bids;
          const crossing = opposite.filter((l) => (o.side === 'BUY' ? l.price <= o.price : l.price >= o.price));
          const availShares = crossing.reduce((a, l) => a + l.size, 0n);
          // What buying each whole level costs, rounded up like every buyer's micro.
          const availCost = crossing.reduce((a, l) => a + (l.price * l.size + 999_999n) / 1_000_000n, 0n);
          const r = e.submit(o);
          const want = o.amount ?? (o.size as bigint);
          const avail = o.amount !== undefined ? availCost : availShares;
          if (!r.ok) {
            if (r.code === 'fok_not_filled') expect(avail < want).toBe(true);
            else expect(r.code).toBe('fak_no_match');
            expect(e.depth(TOKEN)).toEqual(depth);
            return;
          }
          const sumSize = r.fills.reduce((a, f) => a + f.size, 0n);
          const sumUsdc = r.fills.reduce((a, f) => a + f.usdc, 0n);
          expect(sumSize).toBe(r.matched);
          expect(sumUsdc).toBe(r.usdc);
          for (const f of r.fills) {
            expect(o.side === 'BUY' ? f.price <= o.price : f.price >= o.price).toBe(true);
            taken.set(`${f.side}:${f.price}`, (taken.get(`${f.side}:${f.price}`) ?? 0n) + f.size);
          }
          if (o.amount === undefined) {
            for (const f of r.fills) {
              // Buyers pay the rounded-up micro, sellers get the rounded-down one …
              const exact = f.price * f.size;
              expect(f.side === 'BUY' ? f.usdc === (exact + 999_999n) / 1_000_000n : f.usdc === exact / 1_000_000n).toBe(true);
              // … and on the cent grid with 2-decimal sizes there is nothing to round.
              if (f.size % 10_000n === 0n) expect(f.usdc * 1_000_000n).toBe(exact);
            }
            const filled = avail >= want ? want : avail;
            expect(r.matched).toBe(filled);
            if (g.type === 'GTC') expect(r.resting?.remaining ?? 0n).toBe(want - filled);
            else expect(r.killed).toBe(want - filled);
          } else {
            expect(r.usdc).toBe(avail >= want ? want : avail);
            expect(r.killed).toBe(want - r.usdc);
          }
          if (g.type === 'FOK') expect(o.amount === undefined ? r.matched : r.usdc).toBe(want);
        });
        // Per level, everything taken in this update is at most what was shown.
        for (const [side, levels] of [['BUY', shown.asks], ['SELL', shown.bids]] as const) {
          for (const l of levels) expect((taken.get(`${side}:${l.price}`) ?? 0n) <= l.size).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('resting orders take from a new book at most what it shows, at their own prices', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ side: fc.constantFrom<Side>('BUY', 'SELL'), cents: fc.integer({ min: 1, max: 99 }), centiShares: fc.integer({ min: 1, max: 20_000 }) }), { maxLength: 10 }),
        sideArb,
        sideArb,
        (rest, bids, asks) => {
          const e = new PaperEngine();
          rest.forEach((r, i) => e.submit({ id: `r${i}`, tokenId: TOKEN, side: r.side, orderType: 'GTC', price: BigInt(r.cents) * 10_000n, size: BigInt(r.centiShares) * 10_000n }));
          const book = { token_id: TOKEN, bids: toWire(bids), asks: toWire(asks) };
          const u = e.onBook(book);
          const shown = { bids: levelsFromWire(book.bids, 'bids'), asks: levelsFromWire(book.asks, 'asks') };
          const left = e.depth(TOKEN) as { bids: { price: bigint; size: bigint }[]; asks: { price: bigint; size: bigint }[] };
          const total = (ls: { size: bigint }[]) => ls.reduce((a, l) => a + l.size, 0n);
          const sum = (side: Side) => u.fills.filter((f) => f.side === side).reduce((a, f) => a + f.size, 0n);
          expect(total(shown.asks) - total(left.asks)).toBe(sum('BUY'));
          expect(total(shown.bids) - total(left.bids)).toBe(sum('SELL'));
          for (const f of u.fills) {
            const r = rest[Number(f.orderId.slice(1))] as { cents: number };
            expect(f.price).toBe(BigInt(r.cents) * 10_000n);
            expect(f.liquidity).toBe('maker');
          }
          for (const o of e.restingOrders()) expect(o.remaining > 0n).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is deterministic: the same books and orders give the same results', () => {
    fc.assert(
      fc.property(sideArb, sideArb, fc.array(orderGenArb, { maxLength: 8 }), sideArb, (bids, asks, gens, asks2) => {
        const run = () => {
          const e = new PaperEngine();
          e.onBook({ token_id: TOKEN, bids: toWire(bids), asks: toWire(asks) });
          const out: unknown[] = gens.map((g, i) => e.submit(toOrder(g, i)));
          out.push(e.onBook({ token_id: TOKEN, bids: toWire(bids), asks: toWire(asks2) }));
          return out;
        };
        expect(run()).toEqual(run());
      }),
      { numRuns: 200 },
    );
  });

  it('walkBook by amount lands exactly on the amount whenever the depth allows', () => {
    fc.assert(
      fc.property(sideArb, fc.integer({ min: 1, max: 10_000_000_000 }), (asks, amountMicros) => {
        const levels = levelsFromWire(toWire(asks), 'asks');
        const w = walkBook(levels, 'BUY', m('0.99'), { amount: BigInt(amountMicros) });
        const depthCost = levels.filter((l) => l.price <= m('0.99')).reduce((a, l) => a + (l.price * l.size + 999_999n) / 1_000_000n, 0n);
        expect(w.usdc).toBe(depthCost >= BigInt(amountMicros) ? BigInt(amountMicros) : depthCost);
        expect(w.takes.reduce((a, t) => a + t.size, 0n)).toBe(w.shares);
        for (const t of w.takes) expect(t.size <= (levels[t.level] as { size: bigint }).size).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
