import { Decoder, Encoder } from '@msgpack/msgpack';
import { strictSame as same } from '@polybot/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Codec } from '../src/codec.js';
import { BAIL, FlatDecoder } from '../src/fast-decode.js';

const LIMITS = { maxStrLength: 64 * 1024, maxBinLength: 256 * 1024, maxArrayLength: 10_000, maxMapLength: 512 };
const reference = new Decoder({ ...LIMITS, maxExtLength: 0 });

/** The flat reader either bails or gives exactly what the general decoder gives. */
function agrees(flat: FlatDecoder, bytes: Uint8Array): 'bail' | 'same' {
  const got = flat.decode(bytes);
  if (got === BAIL) return 'bail';
  let want: unknown;
  try {
    want = reference.decode(bytes);
  } catch (err) {
    throw new Error(`flat reader accepted what the general decoder refuses: ${Buffer.from(bytes).toString('hex')}`, { cause: err });
  }
  if (!same(got, want)) throw new Error(`values differ for ${Buffer.from(bytes).toString('hex')}`);
  return 'same';
}

const keyArb = fc.oneof(
  fc.stringMatching(/^[a-z_][a-z0-9_]{0,30}$/),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('constructor', 'prototype', '1', '0', '10', 'type', 'token_id', 'x'.repeat(30)),
);
const scalar = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
  fc.integer({ min: -300, max: 300 }),
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 40 }),
);
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('arr'), tie('map')),
  arr: fc.array(tie('tree'), { maxLength: 8 }),
  map: fc.dictionary(keyArb, tie('tree'), { maxKeys: 12 }),
}));

describe('FlatDecoder', () => {
  it('gives what @msgpack/msgpack gives, for any value it does not leave to it', () => {
    const flat = new FlatDecoder(LIMITS);
    const enc = new Encoder();
    const enc32 = new Encoder({ forceFloat32: true });
    let decided = 0;
    fc.assert(
      fc.property(tree, fc.boolean(), (v, f32) => {
        const bytes = (f32 ? enc32 : enc).encode(v);
        // The same bytes again: the second read goes through cached keys and built shapes.
        for (let i = 0; i < 6; i++) if (agrees(flat, bytes) === 'same') decided++;
      }),
      { numRuns: 2000 },
    );
    // A good share is read here (random text is often non-ASCII, which goes the general way).
    expect(decided).toBeGreaterThan(3000);
  });

  it('never accepts damaged bytes the general decoder refuses, nor reads them differently', () => {
    const flat = new FlatDecoder(LIMITS);
    const enc = new Encoder();
    fc.assert(
      fc.property(tree, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (v, flips, cut) => {
        const bytes = Uint8Array.from(enc.encode(v));
        for (const [at, b] of flips) bytes[at % bytes.length] = b;
        agrees(flat, bytes);
        agrees(flat, bytes.subarray(0, cut % (bytes.length + 1)));
        agrees(flat, Uint8Array.from([...bytes, cut & 0xff]));
      }),
      { numRuns: 3000 },
    );
  });

  it('builds maps with duplicate and integer-like keys as assignment does, before and after a shape is compiled', () => {
    const flat = new FlatDecoder(LIMITS);
    // {"b":1,"1":2,"a":3,"b":4} written by hand (an encoder cannot repeat a key).
    const bytes = Uint8Array.from([0x84, 0xa1, 0x62, 0x01, 0xa1, 0x31, 0x02, 0xa1, 0x61, 0x03, 0xa1, 0x62, 0x04]);
    for (let i = 0; i < 10; i++) {
      expect(agrees(flat, bytes)).toBe('same');
      const v = flat.decode(bytes) as Record<string, number>;
      expect(Object.keys(v)).toEqual(['1', 'b', 'a']);
      expect(v.b).toBe(4);
    }
  });

  it('still reads maps exactly once its store of key sequences is full', () => {
    const flat = new FlatDecoder(LIMITS);
    const enc = new Encoder();
    // 600 maps of 10 distinct keys each: more key-sequence nodes than the reader keeps.
    for (let m = 0; m < 600; m++) {
      const v: Record<string, number> = {};
      for (let k = 0; k < 10; k++) v[`k${m}_${k}`] = m * 10 + k;
      expect(agrees(flat, enc.encode(v))).toBe('same');
    }
    // A new shape once the store is full is built key by key, still exactly.
    const late = enc.encode({ type: 'price', bid: 0.5 });
    for (let i = 0; i < 6; i++) expect(agrees(flat, late)).toBe('same');
  });

  it('leaves extensions, numeric keys, non-ASCII text, __proto__ and crossed limits to the general decoder', () => {
    const flat = new FlatDecoder({ ...LIMITS, maxStrLength: 8, maxArrayLength: 3 });
    const enc = new Encoder();
    const cases: Uint8Array[] = [
      Uint8Array.from([0xd4, 0x01, 0x00]), // fixext
      Uint8Array.from([0x81, 0x01, 0x02]), // {1: 2}
      enc.encode('héllo'),
      enc.encode({ ok: 'naïve' }),
      Uint8Array.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01]),
      enc.encode('123456789'),
      enc.encode([1, 2, 3, 4]),
      Uint8Array.from([0xc1]),
      Uint8Array.from([0x91]),
      Uint8Array.from([0x01, 0x02]),
    ];
    for (const c of cases) expect(flat.decode(c)).toBe(BAIL);
  });

  it('reads 64-bit integers and float32 as the general decoder does', () => {
    const flat = new FlatDecoder(LIMITS);
    const u64 = Uint8Array.from([0xcf, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]);
    const i64 = Uint8Array.from([0xd3, 0xff, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]);
    const big = Uint8Array.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const f32 = Uint8Array.from([0xca, 0x3f, 0x00, 0x00, 0x01]);
    for (const b of [u64, i64, big, f32]) expect(agrees(flat, b)).toBe('same');
  });

  it('flags prototype-like keys so the codec need not walk the value again', () => {
    const flat = new FlatDecoder(LIMITS, new Set(['constructor', 'prototype']));
    const enc = new Encoder();
    const flagged = enc.encode({ a: [{ b: 1, constructor: 2 }] });
    const clean = enc.encode({ a: [{ b: 1, c: 2 }] });
    for (let i = 0; i < 3; i++) {
      flat.decode(flagged);
      expect(flat.flagged).toBe(true);
      flat.decode(clean);
      expect(flat.flagged).toBe(false);
    }
    const codec = new Codec();
    const res = codec.decodePayload(flagged);
    expect(res.ok).toBe(false);
    expect(res.ok ? '' : res.code).toBe('forbidden_key');
  });

  it('keeps the codec verdict for every bus message the general decoder gave before', () => {
    const codec = new Codec();
    const msg = {
      type: 'price',
      token_id: '71321045679252212594626385532706912750332728571942532289631379312455583992563',
      market: `0x${'ab'.repeat(32)}`,
      outcome: 'Up',
      bid: 0.52,
      ask: 0.53,
      mid: 0.525,
      bid_size: 100.5,
      ask_size: 20,
      venue_ts: 1767225600123,
      recv_ts: 1767225600150,
    };
    const [topic, payload] = codec.encodeWith('price.1', msg, { v: 1, src: 'scanner', seq: 7, ts: 1767225600150 });
    for (let i = 0; i < 6; i++) {
      const res = codec.decode([topic, payload]);
      expect(res.ok).toBe(true);
      expect(res.ok && res.msg).toEqual({ ...msg, v: 1, src: 'scanner', seq: 7, ts: 1767225600150 });
    }
    // Non-ASCII text goes the general way and still decodes.
    const [t2, p2] = codec.encodeWith('price.1', { ...msg, outcome: 'Oui ✓' }, { v: 1, src: 'scanner', seq: 8, ts: 1 });
    const res = codec.decode([t2, p2]);
    expect(res.ok && res.msg).toMatchObject({ outcome: 'Oui ✓' });
  });
});
