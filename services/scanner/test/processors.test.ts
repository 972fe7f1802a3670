import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isPrice,
  isSize,
  isToken,
  PRICE_RE,
  processMarketFrame,
  processRestBook,
  SIZE_RE,
  TOKEN_RE,
  venueTimestamp,
  type NormalizedEvent,
} from '../src/processors/market.js';

const samplesDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/polymarket/samples');
const raw = (p: string) => readFileSync(resolve(samplesDir, p), 'utf8');
const json = (p: string) => JSON.parse(raw(p)) as Record<string, any>;
const RECV = 1_800_000_000_000;

function one(p: string): NormalizedEvent {
  const r = processMarketFrame(raw(p), RECV);
  expect(r.invalid, p).toEqual([]);
  expect(r.unknown, p).toEqual([]);
  expect(r.events, p).toHaveLength(1);
  return r.events[0]!;
}

describe('market-channel processors on every recorded sample', () => {
  it('book (2024 recording): levels kept as the venue sent them, ms times, origin ws', () => {
    const s = json('ws_market/book_recorded_2024.json');
    expect(one('ws_market/book_recorded_2024.json')).toEqual({
      type: 'book',
      token: s.asset_id,
      market: s.market,
      bids: s.bids,
      asks: s.asks,
      hash: '655a38d4977427b086c25b985993691b753ed166',
      origin: 'ws',
      venueTs: 1728799418260,
      recvTs: RECV,
    });
  });

  it('book (docs example with ".48" prices and newer fields; synthetic best-first book)', () => {
    const docs = one('docs_examples/book.json');
    expect(docs).toMatchObject({ type: 'book', origin: 'ws', recvTs: RECV, venueTs: 123456789000 });
    const synth = one('ws_market/book_synthetic.json');
    expect(synth).toMatchObject({ type: 'book', venueTs: 1703875200000, bids: json('ws_market/book_synthetic.json').bids });
  });

  it('price_change in all three formats: current price_changes[], legacy changes[], oldest flat', () => {
    const cur = json('ws_market/price_change_array_v2_nautilus.json');
    expect(one('ws_market/price_change_array_v2_nautilus.json')).toEqual({
      type: 'price_change',
      market: cur.market,
      venueTs: Number(cur.timestamp),
      recvTs: RECV,
      changes: cur.price_changes.map((c: any) => ({ token: c.asset_id, side: c.side, price: c.price, size: c.size, hash: c.hash, bestBid: c.best_bid, bestAsk: c.best_ask })),
    });
    expect(one('docs_examples/price_change_legacy_changes_array_pre_2025-09-15.json')).toEqual({
      type: 'price_change',
      market: '0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1',
      venueTs: 1729084877448,
      recvTs: RECV,
      changes: [
        {
          token: '71321045679252212594626385532706912750332728571942532289631379312455583992563',
          side: 'SELL',
          price: '0.4',
          size: '3300',
          hash: '3cd4d61e042c81560c9037ece0c61f3b1a8fbbdd',
        },
      ],
    });
    const flat = json('ws_market/price_change_legacy_flat_2024.json');
    expect(one('ws_market/price_change_legacy_flat_2024.json')).toEqual({
      type: 'price_change',
      market: flat.market,
      venueTs: 1723967931411,
      recvTs: RECV,
      changes: [{ token: flat.asset_id, side: 'SELL', price: '0.514', size: '21574.08', hash: flat.hash }],
    });
    expect(one('docs_examples/price_change_current.json')).toMatchObject({ type: 'price_change' });
    expect(one('ws_market/price_change_array_synthetic.json')).toMatchObject({ type: 'price_change', changes: [{ bestBid: '0.51', bestAsk: '0.52' }] });
    // event_type omitted: the shape is unambiguous.
    const two = one('ws_market/price_change_two_assets_synthetic.json') as Extract<NormalizedEvent, { type: 'price_change' }>;
    expect(two.changes.map((c) => c.side)).toEqual(['BUY', 'SELL']);
    // Optional size: kept absent (the book must not guess it), seconds scaled to ms.
    const opt = one('ws_market/rs_price_change_optional_fields.json') as Extract<NormalizedEvent, { type: 'price_change' }>;
    expect(opt.venueTs).toBe(1_234_567_890_000);
    expect(opt.changes[0]).toEqual({ token: 'asset_a', side: 'BUY', price: '0.10', hash: 'abc', bestBid: '0.11', bestAsk: '0.12' });
    expect(opt.changes[1]).toEqual({ token: 'asset_b', side: 'SELL', price: '0.90', size: '5' });
  });

  it('last_trade_price, tick_size_change, best_bid_ask', () => {
    expect(one('ws_market/last_trade_price_recorded_2024.json')).toEqual({
      type: 'last_trade_price',
      token: '21742633143463906290569050155826241533067272736897614950488156847949938836455',
      market: '0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917',
      price: '0.491',
      size: '85.36',
      side: 'SELL',
      feeRateBps: '0',
      venueTs: 1724564136087,
      recvTs: RECV,
    });
    expect(one('ws_market/rs_last_trade_price_2025.json')).toMatchObject({ type: 'last_trade_price', side: 'BUY', size: '219.217767', venueTs: 1750428146322 });
    expect(one('ws_market/tick_size_change_recorded_2025.json')).toEqual({
      type: 'tick_size_change',
      token: '115474063863764126958837769719736461272619491980773624567012766320777398670353',
      market: '0xbacdf04bf7f22a670dc4fb408878ec56b76f9934599829455b9371693ba84b8b',
      oldTickSize: '0.01',
      newTickSize: '0.001',
      venueTs: 1739068041853,
      recvTs: RECV,
    });
    for (const p of ['ws_market/best_bid_ask.json', 'ws_market/rs_best_bid_ask.json']) {
      expect(one(p)).toEqual({
        type: 'best_bid_ask',
        token: '85354956062430465315924116860125388538595433819574542752031640332592237464430',
        market: '0x0005c0d312de0be897668695bae9f32b624b4a1ae8b140c49f08447fcc74f442',
        bestBid: '0.73',
        bestAsk: '0.77',
        spread: '0.04',
        venueTs: 1766789469958,
        recvTs: RECV,
      });
    }
  });

  it('new_market and market_resolved (custom feature)', () => {
    const tokens = [
      '76043073756653678226373981964075571318267289248134717369284518995922789326425',
      '31690934263385727664202099278545688007799199447969475608906331829650099442770',
    ];
    const market = '0x311d0c4b6671ab54af4970c06fcf58662516f5168997bdda209ec3db5aa6b0c1';
    for (const p of ['ws_market/new_market.json', 'ws_market/rs_new_market.json']) {
      expect(one(p)).toEqual({
        type: 'new_market',
        market,
        id: '1031769',
        slug: 'nvda-above-240-on-january-30-2026',
        question: 'Will NVIDIA (NVDA) close above $240 end of January?',
        tokens,
        outcomes: ['Yes', 'No'],
        venueTs: 1766790415550,
        recvTs: RECV,
        ...(p.endsWith('/new_market.json') ? { tickSize: '0.01' } : {}),
      });
    }
    for (const p of ['ws_market/market_resolved.json', 'ws_market/rs_market_resolved.json']) {
      expect(one(p)).toMatchObject({ type: 'market_resolved', market, id: '1031769', tokens, winningToken: tokens[0], winningOutcome: 'Yes', venueTs: 1766790415550 });
    }
  });

  it('an array frame yields each of its events', () => {
    const r = processMarketFrame(raw('ws_market/rs_batch_array_frame.json'), RECV);
    expect(r.events.map((e) => e.type)).toEqual(['book', 'price_change', 'last_trade_price']);
    expect(r.invalid).toEqual([]);
  });

  it('every line of the recorded stream is either an event or counted, never thrown', () => {
    let events = 0;
    for (const line of raw('ws_market_messages.jsonl').split('\n').filter((l) => l.trim())) {
      const r = processMarketFrame(line, RECV);
      events += r.events.length;
      expect(r.events.length + r.invalid.length + r.unknown.length).toBeGreaterThan(0);
    }
    expect(events).toBeGreaterThanOrEqual(15);
  });

  it('a REST /book answer becomes a rest-origin snapshot', () => {
    const r = processRestBook(raw('rest/clob_book_recorded_2024.json'), RECV);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ type: 'book', origin: 'rest' });
  });
});

describe('bad input is counted with a reason, never thrown', () => {
  const bad = (text: string) => {
    const r = processMarketFrame(text, RECV);
    expect(r.events).toEqual([]);
    return [...r.invalid.map((i) => `${i.type}:${i.reason}`), ...r.unknown.map((u) => `unknown:${u}`)];
  };
  const book = json('ws_market/book_recorded_2024.json');
  const change = json('ws_market/price_change_array_v2_nautilus.json');

  it('garbage, truncated JSON and wrong shapes', () => {
    expect(bad('garbage')).toEqual(['frame:json']);
    expect(bad(raw('ws_market/book_recorded_2024.json').slice(0, 500))).toEqual(['frame:json']);
    expect(bad('null')).toEqual(['frame:not an object']);
    expect(bad('[1,"x"]')).toEqual(['frame:not an object', 'frame:not an object']);
    expect(bad('{"event_type":"book"}')).toEqual(['book:schema']);
    expect(bad('{"event_type":"mystery"}')).toEqual(['unknown:mystery']);
    expect(bad('{}')).toEqual(['unknown:(none)']);
    expect(bad('\u0000\u0001')).toEqual(['frame:json']);
  });

  it('absurd values: prices outside 0..1, huge or negative sizes, bad timestamps, bad token ids', () => {
    expect(bad(JSON.stringify({ ...book, bids: [{ price: '1.5', size: '1' }] }))).toEqual(['book:level']);
    expect(bad(JSON.stringify({ ...book, asks: [{ price: '0.5', size: '1e30' }] }))).toEqual(['book:level']);
    expect(bad(JSON.stringify({ ...book, asks: [{ price: '0.5', size: '1000000000000000000000' }] }))).toEqual(['book:level']);
    expect(bad(JSON.stringify({ ...book, asks: [{ price: '0.5', size: '-3' }] }))).toEqual(['book:level']);
    expect(bad(JSON.stringify({ ...book, timestamp: '99999999999999999' }))).toEqual(['book:timestamp']);
    expect(bad(JSON.stringify({ ...book, timestamp: 'yesterday' }))).toEqual(['book:timestamp']);
    expect(bad(JSON.stringify({ ...book, asset_id: 'a b' }))).toEqual(['book:token']);
    const p0 = change.price_changes[0];
    expect(bad(JSON.stringify({ ...change, price_changes: [{ ...p0, price: '-0.1' }] }))).toEqual(['price_change:level']);
    expect(bad(JSON.stringify({ ...change, price_changes: [{ ...p0, price: '7' }] }))).toEqual(['price_change:level']);
    expect(bad(JSON.stringify({ ...change, price_changes: [{ ...p0, best_ask: '2' }] }))).toEqual(['price_change:best_price']);
  });

  it('venueTimestamp accepts ms and seconds, rejects the rest', () => {
    expect(venueTimestamp('1728799418260')).toBe(1728799418260);
    expect(venueTimestamp('1728799418')).toBe(1728799418000);
    expect(venueTimestamp('0')).toBeUndefined();
    expect(venueTimestamp('-5')).toBeUndefined();
    expect(venueTimestamp('1e12')).toBeUndefined();
    expect(venueTimestamp('')).toBeUndefined();
  });
});

describe('value checks', () => {
  it('accept exactly what their regular expressions accept', () => {
    // Mostly the characters that matter (digits, dots, token letters), with anything else mixed in.
    const near = fc.string({ unit: fc.constantFrom(...'0011.9_-aZ'), maxLength: 14 });
    const any = fc.string({ unit: fc.oneof(fc.constantFrom(...'0123456789.'), fc.string({ minLength: 1, maxLength: 1 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 120 });
    const cases: Array<[string, (s: string) => boolean, RegExp]> = [
      ['isPrice', isPrice, PRICE_RE],
      ['isSize', isSize, SIZE_RE],
      ['isToken', isToken, TOKEN_RE],
    ];
    for (const [name, check, re] of cases) {
      fc.assert(
        fc.property(fc.oneof(near, any), (s) => {
          if (check(s) !== re.test(s)) throw new Error(`${name}(${JSON.stringify(s)}) = ${check(s)}, ${re} says ${re.test(s)}`);
        }),
        { numRuns: 5000 },
      );
    }
    for (const s of ['0', '1', '0.', '1.', '.5', '0.48', '1.000', '.', '00.5', '1.5', '01', '']) expect(isPrice(s)).toBe(PRICE_RE.test(s));
    for (const s of ['0', '.5', '123456789', '1234567890', '12.', '12.5', '.', '1..2', '']) expect(isSize(s)).toBe(SIZE_RE.test(s));
    for (const s of ['1'.repeat(100), '1'.repeat(101), 'a-b_C9', 'a b', '']) expect(isToken(s)).toBe(TOKEN_RE.test(s));
  });
});
