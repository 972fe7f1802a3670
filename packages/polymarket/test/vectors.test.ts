/**
 * Known-answer tests on the official vectors in ../shared/polymarket/vectors, read from the files
 * themselves (never copied or edited): price/tick validity, the market-order book walk, the book hash,
 * legacy V1 order digests/signatures/domain separators and POST bodies, the V2 body shape note, and
 * every amount case of order_amounts.json (order.test.ts holds an inline copy; this re-runs the file).
 * L1/L2 auth and the V2/V3 EIP-712 cases are covered by auth.test.ts / order.test.ts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet, verifyTypedData, type TypedDataDomain } from 'ethers';
import { describe, expect, it } from 'vitest';
import { bookHashInput, bookHashMatches, orderBookHash, type HashableBook } from '../src/book-hash.js';
import { MarketPriceError, marketOrderPrice, type BookLevel } from '../src/market-price.js';
import { buildSignedOrder, limitOrderAmounts, marketOrderAmounts, OrderBuildError, priceValid } from '../src/order.js';
import { domainSeparatorV1, ORDER_V1_TYPES, orderHashV1, orderToJsonV1, signOrderV1, type OrderV1 } from '../src/order-v1.js';
import { PostOrderBody } from '../src/schemas.js';
import { isTickSizeSmaller } from '../src/tick-size.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const vectors = (name: string): any => JSON.parse(readFileSync(resolve(repoRoot, '../shared/polymarket/vectors', name), 'utf8'));

const TEST_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const TEST_ADDRESS = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';

// ---------------------------------------------------------------- price_tick_validity.json

describe('price_tick_validity.json', () => {
  const v = vectors('price_tick_validity.json');
  const pv: Array<{ price: string; tickSize: string; expected: boolean }> = v.priceValid;
  const ts: Array<{ a: string; b: string; expected: boolean }> = v.isTickSizeSmaller;

  it('has the 40 priceValid and 16 isTickSizeSmaller rows', () => {
    expect(pv).toHaveLength(40);
    expect(ts).toHaveLength(16);
  });

  it.each(pv)('priceValid($price, $tickSize) = $expected', ({ price, tickSize, expected }) => {
    expect(priceValid(price, tickSize)).toBe(expected);
    // The same as JS numbers (how the official client is called).
    expect(priceValid(Number(price), Number(tickSize))).toBe(expected);
  });

  it.each(ts)('isTickSizeSmaller($a, $b) = $expected', ({ a, b, expected }) => {
    expect(isTickSizeSmaller(a, b)).toBe(expected);
    expect(isTickSizeSmaller(Number(a), Number(b))).toBe(expected);
  });

  it('isTickSizeSmaller covers the newer ticks and rejects garbage', () => {
    expect(isTickSizeSmaller('0.005', '0.01')).toBe(true);
    expect(isTickSizeSmaller('0.0025', '0.001')).toBe(false);
    expect(isTickSizeSmaller('0.0010', '0.001')).toBe(false);
    expect(() => isTickSizeSmaller('abc', '0.01')).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------- market_price_walk.json

describe('market_price_walk.json', () => {
  const v = vectors('market_price_walk.json');
  type Case = { orderType: 'FOK' | 'FAK'; levels: BookLevel[]; amountToMatch: string; expectedPrice: string | null; expectedError: string | null };
  const cases: Array<['BUY' | 'SELL', number, Case]> = [
    ...(v.buy as Case[]).map((c, i) => ['BUY', i, c] as ['BUY', number, Case]),
    ...(v.sell as Case[]).map((c, i) => ['SELL', i, c] as ['SELL', number, Case]),
  ];

  it('has all 25 cases (13 buy, 12 sell)', () => {
    expect(v.buy).toHaveLength(13);
    expect(v.sell).toHaveLength(12);
  });

  it.each(cases)('%s #%i', (side, _i, c) => {
    const run = () => marketOrderPrice(side, c.levels, c.amountToMatch, c.orderType);
    if (c.expectedError !== null) {
      expect(c.expectedPrice).toBeNull();
      expect(run).toThrow(MarketPriceError);
      expect(run).toThrow(c.expectedError);
      try {
        run();
      } catch (err) {
        expect((err as MarketPriceError).code).toBe('no_match');
      }
    } else {
      expect(run()).toBe(c.expectedPrice);
    }
  });

  it('sums exactly where floats would not: 0.7 shares at 0.1 are worth 0.07', () => {
    // In floats 0.7 × 0.1 = 0.06999999999999999 < 0.07, and the official walk would go on to the 0.2 level.
    expect(marketOrderPrice('BUY', [{ price: '0.2', size: '100' }, { price: '0.1', size: '0.7' }], '0.07', 'FOK')).toBe('0.1');
    expect(marketOrderPrice('BUY', [{ price: '0.2', size: '100' }, { price: '0.1', size: '0.7' }], '0.0701', 'FOK')).toBe('0.2');
    expect(marketOrderPrice('SELL', [{ price: '0.4', size: '0.1' }, { price: '0.5', size: '0.2' }], '0.3', 'FOK')).toBe('0.4');
    expect(() => marketOrderPrice('SELL', [{ price: '0.4', size: '0.1' }, { price: '0.5', size: '0.2' }], '0.3000001', 'FOK')).toThrow('no match');
    expect(marketOrderPrice('SELL', [{ price: '0.4', size: '0.1' }, { price: '0.5', size: '0.2' }], 0.3000001, 'FAK')).toBe('0.4');
  });

  it('rejects a non-positive amount and malformed levels', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as MarketPriceError).code;
      }
      return undefined;
    };
    expect(code(() => marketOrderPrice('BUY', [{ price: '0.5', size: '1' }], '0', 'FAK'))).toBe('invalid_amount');
    expect(code(() => marketOrderPrice('BUY', [{ price: '0.5', size: '1' }], '-1', 'FAK'))).toBe('invalid_amount');
    expect(code(() => marketOrderPrice('SELL', [{ price: 'x', size: '1' }], '1', 'FOK'))).toBe('invalid_level');
  });
});

// ---------------------------------------------------------------- orderbook_hash.json

describe('orderbook_hash.json', () => {
  const v = vectors('orderbook_hash.json');
  type Case = { name: string; serializedInput: string; expectedSha1: string; source: { repo: string } };
  const cases: Case[] = v.cases;
  // clob-client (old TS) hashes the object's insertion order; py-clob-client-v2 the documented server order.
  const modeOf = (c: Case) => (c.source.repo === 'Polymarket/py-clob-client-v2' ? 'server' : 'insertion');

  it('has 4 cases: 3 insertion-order, 1 server-order', () => {
    expect(cases.map(modeOf)).toEqual(['insertion', 'insertion', 'insertion', 'server']);
  });

  it.each(cases)('$name', (c) => {
    const mode = modeOf(c);
    expect(createHash('sha1').update(c.serializedInput).digest('hex')).toBe(c.expectedSha1);
    const parsed = JSON.parse(c.serializedInput) as HashableBook;
    expect(bookHashInput(parsed, mode)).toBe(c.serializedInput);
    expect(orderBookHash(parsed, mode)).toBe(c.expectedSha1);
    // The book as received carries its hash (0x-prefixed in some fixtures): it is blanked in place.
    expect(bookHashMatches({ ...parsed, hash: `0x${c.expectedSha1}` }, mode)).toBe(true);
    expect(bookHashMatches({ ...parsed, hash: c.expectedSha1.replace(/.$/, (d) => (d === '0' ? '1' : '0')) }, mode)).toBe(false);
    if (mode === 'insertion') {
      // No hash key at all: clob-client's `orderbook.hash = ""` appends it last.
      const { hash: _drop, ...rest } = parsed;
      expect(orderBookHash(rest as HashableBook, 'insertion')).toBe(c.expectedSha1);
    } else {
      // Any input key order, extra keys and extra level fields give the documented serialization.
      const shuffled = Object.fromEntries(Object.entries(parsed).reverse()) as unknown as HashableBook;
      const noisy = { event_type: 'book', ...shuffled, hash: 'stale', bids: parsed.bids.map((l) => ({ size: l.size, price: l.price, extra: 1 })) } as HashableBook;
      expect(bookHashInput(noisy, 'server')).toBe(c.serializedInput);
      expect(orderBookHash(noisy)).toBe(c.expectedSha1);
    }
  });

  it('the two key orders disagree on the same book (why the mode must be chosen)', () => {
    const book = JSON.parse(cases[0]!.serializedInput) as HashableBook;
    expect(orderBookHash(book, 'server')).not.toBe(orderBookHash(book, 'insertion'));
  });
});

// ---------------------------------------------------------------- eip712_order_v1.json (legacy)

describe('eip712_order_v1.json (legacy V1, checked with order-v1.ts)', () => {
  const v = vectors('eip712_order_v1.json');

  it('our V1 types are the file\'s types and type string', () => {
    expect(ORDER_V1_TYPES.Order).toEqual(v.types);
    expect(`Order(${(ORDER_V1_TYPES.Order ?? []).map((f) => `${f.type} ${f.name}`).join(',')})`).toBe(v.orderType);
  });

  type Case = { name: string; privateKey?: string; domain: TypedDataDomain; message: OrderV1; expectedOrderHash: string; expectedSignature?: string };
  const cases: Case[] = v.cases;

  it('has 3 order cases (2 signed) and 4 domain separators', () => {
    expect(cases).toHaveLength(3);
    expect(cases.filter((c) => c.expectedSignature)).toHaveLength(2);
    expect(v.domainSeparators).toHaveLength(4);
  });

  it.each(cases)('$name', (c) => {
    expect(orderHashV1(c.message, c.domain)).toBe(c.expectedOrderHash);
    if (c.expectedSignature) {
      const wallet = new Wallet(c.privateKey!);
      expect(wallet.address).toBe(TEST_ADDRESS);
      expect(signOrderV1(wallet, c.message, c.domain)).toBe(c.expectedSignature);
      expect(verifyTypedData(c.domain, ORDER_V1_TYPES, c.message, c.expectedSignature)).toBe(TEST_ADDRESS);
    }
  });

  type Sep = { name: string; version: string; chainId: number; verifyingContract: string | null; expected: string };
  it.each(v.domainSeparators as Sep[])('domain separator chain $chainId, verifyingContract $verifyingContract', (d) => {
    const domain: TypedDataDomain = { name: d.name, version: d.version, chainId: d.chainId, ...(d.verifyingContract === null ? {} : { verifyingContract: d.verifyingContract }) };
    expect(domainSeparatorV1(domain)).toBe(d.expected);
  });
});

// ---------------------------------------------------------------- post_order_body_v1.json

describe('post_order_body_v1.json', () => {
  const v = vectors('post_order_body_v1.json');
  type Body = { order: Record<string, unknown> & { salt: number; side: 'BUY' | 'SELL' }; owner: string; orderType: string; deferExec: boolean; postOnly?: boolean };
  const cases: Array<{ name: string; expectedBody: Body }> = v.cases;

  it('has 6 cases', () => {
    expect(cases).toHaveLength(6);
  });

  it.each(cases)('V1 body, $name: byte-identical JSON', ({ expectedBody }) => {
    const o = expectedBody.order;
    // The signed V1 order as the old client holds it: salt a decimal string, side 0/1.
    const signed = { ...(o as unknown as OrderV1 & { signature: string }), salt: String(o.salt), side: o.side === 'BUY' ? 0 : 1 } as OrderV1 & { signature: string };
    const body = orderToJsonV1(signed, expectedBody.owner, expectedBody.orderType);
    expect(JSON.stringify(body)).toBe(JSON.stringify(expectedBody));
  });

  it('V1 body carries postOnly only when given', () => {
    const o = cases[0]!.expectedBody.order;
    const signed = { ...(o as unknown as OrderV1 & { signature: string }), salt: String(o.salt), side: 0 } as OrderV1 & { signature: string };
    expect(orderToJsonV1(signed, 'k', 'GTC', true)).toMatchObject({ postOnly: true });
    expect('postOnly' in orderToJsonV1(signed, 'k', 'GTC')).toBe(false);
  });

  it('our V2 order and body follow the v2ShapeNote', () => {
    const note: string = v.v2ShapeNote;
    const keysOf = (s: string) => s.split(',').map((p) => p.trim().split(':')[0]!.trim());
    const orderKeys = keysOf(/order object is \{([^}]*)\}/.exec(note)![1]!);
    const envelopeKeys = keysOf(/envelope is \{([^}]*)\}/.exec(note)![1]!);
    expect(orderKeys).toEqual(['salt', 'maker', 'signer', 'tokenId', 'makerAmount', 'takerAmount', 'side', 'signatureType', 'timestamp', 'expiration', 'metadata', 'builder', 'signature']);
    expect(envelopeKeys).toEqual(['order', 'owner', 'orderType', 'deferExec', 'postOnly']);

    const wallet = new Wallet(TEST_KEY);
    const gtd = buildSignedOrder({ wallet, tokenId: '1234', side: 'SELL', price: '0.42', size: '10', orderType: 'GTD', tickSize: '0.01', negRisk: false, salt: 1000, timestampMs: 1_767_225_600_123, expiration: 1_767_229_200 });
    const fok = buildSignedOrder({ wallet, tokenId: '1234', side: 'BUY', price: '0.42', size: '10', orderType: 'FOK', tickSize: '0.01', negRisk: true, salt: 1001, timestampMs: 1_767_225_600_124 });
    for (const order of [gtd, fok]) {
      expect(Object.keys(order).sort()).toEqual([...orderKeys].sort());
      for (const gone of ['taker', 'nonce', 'feeRateBps']) expect(order).not.toHaveProperty(gone);
      expect(typeof order.salt).toBe('number');
      expect(['BUY', 'SELL']).toContain(order.side);
      expect(typeof order.signatureType).toBe('number');
      expect(order.metadata).toMatch(/^0x[0-9a-f]{64}$/);
      expect(order.builder).toMatch(/^0x[0-9a-f]{64}$/);
    }
    expect(gtd.timestamp).toBe('1767225600123'); // milliseconds
    expect(gtd.expiration).toBe('1767229200'); // unix seconds
    expect(fok.expiration).toBe('0');
    // The envelope schema the executor sends has exactly the note's keys.
    expect(Object.keys(PostOrderBody.properties).sort()).toEqual([...envelopeKeys].sort());
    const body: PostOrderBody = { order: gtd, owner: 'aaaa-bbbb-cccc-dddd', orderType: 'GTD', deferExec: false, postOnly: false };
    const wire = JSON.parse(JSON.stringify(body)) as { order: Record<string, unknown> };
    expect(wire.order.salt).toBe(1000);
  });
});

// ---------------------------------------------------------------- order_amounts.json, from the file

describe('order_amounts.json (every case, read from the file)', () => {
  const v = vectors('order_amounts.json');
  type Amt = { kind: 'limit' | 'market'; tickSize: string; side: 'BUY' | 'SELL'; price: string; size?: string; amount?: string; expected: { makerAmount: string; takerAmount: string } };
  const all: Amt[] = [...v.limitOrders, ...v.marketOrders];

  it('has 49 limit + 35 market cases', () => {
    expect(v.limitOrders).toHaveLength(49);
    expect(v.marketOrders).toHaveLength(35);
  });

  it.each(all)('$kind $side tick $tickSize price $price size/amount $size$amount', (c) => {
    const got = c.kind === 'limit' ? limitOrderAmounts(c.side, c.price, c.size!, c.tickSize) : marketOrderAmounts(c.side, c.price, c.amount!, c.tickSize);
    expect(got).toEqual(c.expected);
  });

  it('rs-clob-client validation cases: we reject what the venue would, and round sizes like the TS/Python clients', () => {
    const rust: Array<{ test: string; tickSize: string; side: 'BUY' | 'SELL'; price: string; size: string }> = v.validationErrors_rust;
    expect(rust).toHaveLength(6);
    const wallet = new Wallet(TEST_KEY);
    const build = (c: (typeof rust)[number], extra: { expiration?: number } = {}) =>
      buildSignedOrder({ wallet, tokenId: '1', side: c.side, price: c.price, size: c.size, orderType: 'GTC', tickSize: c.tickSize, negRisk: false, salt: 1, timestampMs: 1, ...extra });
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return err instanceof OrderBuildError ? err.code : String(err);
      }
      return 'ok';
    };
    for (const c of rust) {
      if (c.test.includes('expiration')) expect(codeOf(() => build(c, { expiration: 1_900_000_000 }))).toBe('invalid_expiration');
      else if (c.test.includes('granular_of_a_price') || c.test.includes('negative')) expect(codeOf(() => build(c))).toBe('invalid_price');
      else if (c.test.includes('missing_fields')) expect(codeOf(() => build(c))).toBe('ok'); // a Rust builder-API case; nothing can be missing here
      else {
        // Size 12.8205: rs-clob-client refuses it, the TS/Python clients (and we) round down to 12.82.
        const o = build(c);
        expect(c.side === 'BUY' ? o.takerAmount : o.makerAmount).toBe('12820000');
      }
    }
  });
});
