import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Codec, type BookStatusMessage, type BusMessage, type PriceMessage } from '@polybot/protocol';
import { BookKeeper, type TokenInfo } from '../src/books.js';
import type { NBook, NLevel, NPriceChange } from '../src/processors/market.js';

const T = 'tok1';
const M = '0xmarket';

function keeper() {
  const published: Array<{ topic: string; msg: BusMessage }> = [];
  const snapshots: string[] = [];
  const k = new BookKeeper({
    publish: (topic, msg) => {
      published.push({ topic, msg: msg as BusMessage });
      return true;
    },
    requestSnapshot: (id) => snapshots.push(id),
    bookIntervalMs: 0,
    log: { warn() {}, info() {} },
  });
  k.setTokens(new Map<string, TokenInfo>([[T, { conditionId: M, outcome: 'Yes', tickSize: '0.01' }]]));
  const statuses = () => published.filter((p) => p.topic.startsWith('book.status.')).map((p) => p.msg as BookStatusMessage);
  const prices = () => published.filter((p) => p.topic.startsWith('price.')).map((p) => p.msg as PriceMessage);
  return { k, published, snapshots, statuses, prices };
}

const book = (bids: NLevel[], asks: NLevel[], venueTs: number, origin: 'ws' | 'rest' = 'ws'): NBook => ({
  type: 'book',
  token: T,
  market: M,
  bids,
  asks,
  origin,
  venueTs,
  recvTs: venueTs,
});
const change = (side: 'BUY' | 'SELL', price: string, size: string, venueTs: number, top?: { bestBid: string; bestAsk: string }): NPriceChange => ({
  type: 'price_change',
  market: M,
  venueTs,
  recvTs: venueTs,
  changes: [{ token: T, side, price, size, ...(top ?? {}) }],
});

const levelsOf = (m: Map<string, string>): NLevel[] => [...m].map(([price, size]) => ({ price, size }));
const asNumbers = (m: Map<string, string>, desc: boolean) =>
  [...m].map(([p, s]) => [Number(p), Number(s)]).sort((a, b) => (desc ? b[0]! - a[0]! : a[0]! - b[0]!));

describe('BookKeeper', () => {
  it('random level updates then a re-snapshot equal the same updates applied to a reference book', () => {
    // Bids below 0.5 and asks above it: the reference never crosses, so every state is a real book.
    const bidPrice = fc.integer({ min: 1, max: 49 }).map((c) => (c / 100).toFixed(2));
    const askPrice = fc.integer({ min: 51, max: 99 }).map((c) => (c / 100).toFixed(2));
    const size = fc.constantFrom('0', '1', '2.5', '100', '0.000001', '12345.678901');
    const op = fc.oneof(
      fc.record({ side: fc.constant('BUY' as const), price: bidPrice, size }),
      fc.record({ side: fc.constant('SELL' as const), price: askPrice, size }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.integer({ min: 0, max: 80 }), (ops, resnapAt) => {
        const { k } = keeper();
        const ref = { BUY: new Map<string, string>(), SELL: new Map<string, string>() };
        let ts = 1_000;
        k.apply(book([], [], ts));
        ops.forEach((o, i) => {
          ts++;
          const key = Number(o.price).toFixed(2);
          if (Number(o.size) === 0) ref[o.side].delete(key);
          else ref[o.side].set(key, o.size);
          k.apply(change(o.side, o.price, o.size, ts));
          // A re-snapshot in the middle: the venue answers its book as of now.
          if (i === resnapAt) k.apply(book(levelsOf(ref.BUY), levelsOf(ref.SELL), ts, 'rest'));
        });
        const b = k.book(T)!;
        expect(b.trusted).toBe(true);
        expect(b.levels(1000)).toEqual({ bids: asNumbers(ref.BUY, true), asks: asNumbers(ref.SELL, false) });
        // And a final re-snapshot changes nothing.
        k.apply(book(levelsOf(ref.BUY), levelsOf(ref.SELL), ts + 1, 'rest'));
        expect(b.levels(1000)).toEqual({ bids: asNumbers(ref.BUY, true), asks: asNumbers(ref.SELL, false) });
        expect(k.counters.rest_mismatch).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('a crossing update marks the book untrusted, withholds its prices and asks for a snapshot', () => {
    const { k, snapshots, statuses, prices } = keeper();
    k.apply(book([{ price: '0.40', size: '10' }], [{ price: '0.45', size: '10' }], 10));
    const before = prices().length;
    k.apply(change('BUY', '0.46', '5', 11));
    expect(k.book(T)!.trusted).toBe(false);
    expect(snapshots).toEqual([T]);
    expect(statuses().map((s) => [s.trusted, s.reason])).toEqual([[false, 'crossed']]);
    expect(prices()).toHaveLength(before);
    k.apply(book([{ price: '0.40', size: '10' }], [{ price: '0.45', size: '10' }], 12, 'rest'));
    expect(statuses().map((s) => [s.trusted, s.reason])).toEqual([
      [false, 'crossed'],
      [true, 'snapshot'],
    ]);
    expect(k.counters.crossed).toBe(1);
  });

  it('an out-of-order update marks the book untrusted; one already inside a REST snapshot is skipped', () => {
    const { k, snapshots, statuses } = keeper();
    k.apply(book([{ price: '0.40', size: '10' }], [{ price: '0.60', size: '10' }], 100));
    k.apply(change('BUY', '0.41', '1', 101));
    k.apply(change('BUY', '0.42', '1', 99));
    expect(k.book(T)!.trusted).toBe(false);
    expect(statuses().at(-1)).toMatchObject({ trusted: false, reason: 'out_of_order' });
    expect(snapshots).toEqual([T]);
    k.apply(book([{ price: '0.41', size: '1' }], [{ price: '0.60', size: '10' }], 200, 'rest'));
    expect(k.book(T)!.trusted).toBe(true);
    // Sent before the REST answer was taken, so already part of it.
    k.apply(change('BUY', '0.43', '1', 150));
    expect(k.book(T)!.trusted).toBe(true);
    expect(k.book(T)!.top().bid).toBe(410_000);
    expect(k.counters).toMatchObject({ out_of_order: 1, stale_updates: 1 });
  });

  it('distrusts a book whose top disagrees with the venue, a tick size change, and a change without a size', () => {
    const { k, snapshots, statuses } = keeper();
    k.apply(book([{ price: '0.40', size: '10' }], [{ price: '0.60', size: '10' }], 100));
    k.apply(change('BUY', '0.41', '1', 101, { bestBid: '0.41', bestAsk: '0.6' }));
    expect(k.book(T)!.trusted).toBe(true);
    k.apply(change('BUY', '0.42', '1', 102, { bestBid: '0.43', bestAsk: '0.6' }));
    expect(statuses().at(-1)).toMatchObject({ trusted: false, reason: 'top_mismatch' });
    k.apply(book([{ price: '0.43', size: '1' }], [{ price: '0.60', size: '10' }], 103, 'rest'));
    k.apply({ type: 'tick_size_change', token: T, market: M, oldTickSize: '0.01', newTickSize: '0.001', venueTs: 104, recvTs: 104 });
    expect(statuses().at(-1)).toMatchObject({ trusted: false, reason: 'tick_size' });
    expect(k.tokens.get(T)!.tickSize).toBe('0.001');
    k.apply(book([{ price: '0.43', size: '1' }], [{ price: '0.60', size: '10' }], 105, 'rest'));
    k.apply({ type: 'price_change', market: M, venueTs: 106, recvTs: 106, changes: [{ token: T, side: 'SELL', price: '0.6' }] });
    expect(statuses().at(-1)).toMatchObject({ trusted: false, reason: 'incomplete' });
    expect(snapshots).toEqual([T, T, T]);
    expect(k.counters).toMatchObject({ top_mismatch: 1, tick_size_changes: 1, incomplete: 1 });
  });

  it('counts untrusted time from event times, and a disconnect drops the levels', () => {
    const { k, statuses } = keeper();
    k.apply(book([{ price: '0.40', size: '10' }], [{ price: '0.60', size: '10' }], 1_000));
    k.disconnected([T], 2_000);
    expect(k.book(T)!.hasSnapshot).toBe(false);
    expect(statuses().at(-1)).toMatchObject({ trusted: false, reason: 'disconnected' });
    k.apply(book([{ price: '0.40', size: '10' }], [{ price: '0.60', size: '10' }], 3_500));
    expect(k.untrustedMs()).toBe(1_500);
  });

  it('a checkpoint restores books and the last published top: an unchanged top is not re-published', () => {
    const a = keeper();
    a.k.apply(book([{ price: '0.4', size: '10' }], [{ price: '0.6', size: '5' }], 1_000));
    a.k.apply(change('BUY', '0.45', '3', 1_001));
    const cps = a.k.checkpoint();
    expect(cps).toHaveLength(1);
    expect(cps[0]!.lastTop).toBe('450000/3000000/600000/5000000');
    const b = keeper();
    b.k.restore(cps, 2_000);
    expect(b.k.book(T)!.levels(10)).toEqual(a.k.book(T)!.levels(10));
    // A change below the top leaves the top as the live run last published it: no price message.
    b.k.apply(change('BUY', '0.3', '1', 2_001));
    expect(b.prices()).toHaveLength(0);
    b.k.apply(change('SELL', '0.55', '2', 2_002));
    expect(b.prices().map((p) => [p.bid, p.ask])).toEqual([[0.45, 0.55]]);
    // An empty side round-trips as null.
    const c = keeper();
    c.k.apply(book([], [{ price: '0.6', size: '5' }], 1_000));
    expect(c.k.checkpoint()[0]!.lastTop).toBe('null/0/600000/5000000');
    const d = keeper();
    d.k.restore(c.k.checkpoint(), 2_000);
    d.k.apply(change('SELL', '0.7', '1', 2_001));
    expect(d.prices()).toHaveLength(0);
  });

  it('price and depth messages written from the book are byte for byte the message objects encoded', () => {
    const T2 = 'tok2';
    const infos = [
      { conditionId: M, outcome: 'Yes', tickSize: '0.01' },
      { conditionId: '0x' + 'ab'.repeat(32), outcome: '', tickSize: '0.001' },
      { conditionId: M, outcome: undefined as unknown as string, tickSize: '0.01' },
    ];
    const run = (written: boolean, ops: Array<{ tok: number; side: 'BUY' | 'SELL'; cents: number; size: string; hash?: string; info?: number }>) => {
      const codec = new Codec();
      const env = { v: 1, src: 'scanner', seq: 0, ts: 0 };
      const out: string[] = [];
      const emit = (topic: string, frames: [Buffer, Uint8Array]) => out.push(`${topic} ${Buffer.from(frames[1]).toString('hex')}`);
      const k = new BookKeeper({
        publish: (topic, msg) => {
          env.seq++;
          emit(topic, codec.encodeWith(topic, msg as Record<string, unknown>, env));
          return true;
        },
        ...(written
          ? {
              publishWritten: (topic: string, write: Parameters<Codec['encodeWritten']>[1]) => {
                env.seq++;
                emit(topic, codec.encodeWritten(topic, write, env));
                return true;
              },
            }
          : {}),
        requestSnapshot() {},
        bookIntervalMs: 0,
        depth: 3,
        log: { warn() {}, info() {} },
      });
      const setInfo = (i: number) => k.setTokens(new Map<string, TokenInfo>([[T, infos[i]!], [T2, infos[(i + 1) % infos.length]!]]));
      setInfo(0);
      let ts = 1_000;
      for (const tok of [T, T2]) k.apply({ ...book([{ price: '0.3', size: '1' }], [{ price: '0.7', size: '2' }], ts), token: tok });
      for (const o of ops) {
        ts++;
        if (o.info !== undefined) setInfo(o.info);
        const c = change(o.side, (o.cents / 100).toFixed(2), o.size, ts);
        c.changes[0]!.token = o.tok ? T2 : T;
        if (o.hash) (c.changes[0] as { hash?: string }).hash = o.hash;
        k.apply(c);
        k.flush(ts);
      }
      return out;
    };
    const op = fc.record(
      {
        tok: fc.integer({ min: 0, max: 1 }),
        side: fc.constantFrom('BUY' as const, 'SELL' as const),
        // Crossing prices too: untrusted books publish nothing, on both paths.
        cents: fc.integer({ min: 1, max: 99 }),
        size: fc.constantFrom('0', '1', '2.5', '100', '0.000001', '12345.678901', '4294967296'),
        hash: fc.option(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 40, maxLength: 40 }), { nil: undefined }),
        info: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined, freq: 10 }),
      },
      { requiredKeys: ['tok', 'side', 'cents', 'size'] },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const a = run(false, ops);
        const b = run(true, ops);
        expect(b).toEqual(a);
        expect(a.some((x) => x.startsWith('book.'))).toBe(true);
      }),
      { numRuns: 150 },
    );
  });
});
