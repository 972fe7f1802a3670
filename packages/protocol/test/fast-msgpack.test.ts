import { decode, Encoder } from '@msgpack/msgpack';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlatEncoder } from '../src/fast-msgpack.js';

const reference = new Encoder({ ignoreUndefined: true });
// Well-formed strings only: for lone surrogates the two encoders pick different replacements.
const str = fc.string({ unit: 'grapheme', maxLength: 300 });
const scalar = fc.oneof(
  str,
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
  fc.integer({ min: -300, max: 300 }),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
);
const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 20 }), fc.array(fc.tuple(fc.double(), fc.double()), { maxLength: 40 }));
// Keys start with a letter, as bus field names do (integer-like keys would be reordered by JS objects).
const flatMap = fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,30}$/), value, { maxKeys: 40 });

describe('FlatEncoder', () => {
  it('writes exactly what @msgpack/msgpack writes for flat bus maps', () => {
    const enc = new FlatEncoder();
    fc.assert(
      fc.property(flatMap, flatMap, (a, b) => {
        const got = enc.encode(a, b);
        const merged: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(a)) if (v !== undefined) merged[k] = v;
        for (const [k, v] of Object.entries(b)) if (v !== undefined && merged[k] === undefined) merged[k] = v;
        // Keys of `b` already set in `a` are skipped, keys only in `b` follow `a`'s: same as the merged object.
        expect(Buffer.from(got!)).toEqual(Buffer.from(reference.encode(merged)));
      }),
      { numRuns: 3000 },
    );
  });

  it('declines nested maps, binary and bigint so the caller falls back', () => {
    const enc = new FlatEncoder();
    expect(enc.encode({ a: { b: 1 } })).toBeUndefined();
    expect(enc.encode({ a: new Uint8Array(2) })).toBeUndefined();
    expect(enc.encode({ a: 1n })).toBeUndefined();
    expect(enc.encode({ a: [[[1]]] })).toBeUndefined();
  });

  it('leaves earlier results intact: payloads are never overwritten by later encodes', () => {
    const enc = new FlatEncoder();
    const kept: Array<[Uint8Array, Buffer]> = [];
    // Enough bytes to roll over the shared slab several times, with messages of varied sizes.
    for (let i = 0; i < 20_000; i++) {
      const msg = { type: 'price', seq: i, pad: 'x'.repeat(i % 300), levels: Array.from({ length: i % 25 }, (_, j) => [j / 100, i]) };
      const got = enc.encode(msg)!;
      if (i % 7 === 0) kept.push([got, Buffer.from(reference.encode(msg))]);
    }
    for (const [got, want] of kept) expect(Buffer.from(got)).toEqual(want);
  });

  it('a map written entry by entry (a pre-encoded head, then fields) is what @msgpack writes for the object', () => {
    const enc = new FlatEncoder();
    // What a writer writes: strings, numbers, nil, arrays of [number, number] (no booleans).
    const writable = fc.oneof(str, fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }), fc.double(), fc.constant(null), fc.constant(undefined));
    const scalarOrPairs = fc.oneof(writable, fc.array(fc.tuple(fc.double(), fc.double()), { maxLength: 30 }));
    const smallMap = fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,30}$/), scalarOrPairs, { maxKeys: 15 });
    fc.assert(
      fc.property(smallMap, smallMap, flatMap, (head, fields, tail) => {
        const entries = FlatEncoder.entries(head);
        const w = enc.begin().entries(entries);
        const merged: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(head)) if (v !== undefined) merged[k] = v;
        for (const [k, v] of Object.entries(fields)) {
          if (v === undefined || k in merged) continue;
          merged[k] = v;
          w.field(FlatEncoder.key(k));
          if (v === null) w.nil();
          else if (typeof v === 'number') w.number(v);
          else if (typeof v === 'string') w.string(v);
          else {
            w.array(v.length);
            for (const [p, q] of v) w.array(2).number(p).number(q);
          }
        }
        const rest: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(tail)) if (v !== undefined && !(k in merged)) rest[k] = merged[k] = v;
        expect(Buffer.from(w.end(rest)!)).toEqual(Buffer.from(reference.encode(merged)));
      }),
      { numRuns: 1000 },
    );
    expect(() => FlatEncoder.entries({ a: { nested: 1 } })).toThrow(TypeError);
    expect(() => FlatEncoder.entries(Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])))).toThrow(RangeError);
  });

  it('writes integer micros as the number they stand for', () => {
    const enc = new FlatEncoder();
    const key = FlatEncoder.key('x');
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 2_000_000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), (m) => {
        const a = Buffer.from(enc.begin().field(key).micros(m).end()!);
        const b = Buffer.from(enc.begin().field(key).number(m / 1_000_000).end()!);
        expect(a).toEqual(b);
        expect(a).toEqual(Buffer.from(reference.encode({ x: m / 1_000_000 })));
      }),
      { numRuns: 3000 },
    );
  });

  it('writes micros pairs as arrays of pairs, in either direction, across buffer growth', () => {
    const enc = new FlatEncoder();
    const key = FlatEncoder.key('levels');
    const micros = fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
    fc.assert(
      fc.property(fc.array(fc.tuple(micros, micros), { maxLength: 300 }), fc.boolean(), fc.nat(), (levels, descending, cut) => {
        const a = levels.map((l) => l[0]);
        const b = levels.map((l) => l[1]);
        const n = levels.length === 0 ? 0 : cut % (levels.length + 1);
        const start = descending ? levels.length - 1 : 0;
        const want = Array.from({ length: n }, (_, i) => {
          const j = descending ? start - i : start + i;
          return [a[j]! / 1_000_000, b[j]! / 1_000_000];
        });
        const got = Buffer.from(enc.begin().field(key).microsPairs(a, b, start, n, descending ? -1 : 1).end()!);
        expect(got).toEqual(Buffer.from(reference.encode({ levels: want })));
        expect(decode(got)).toEqual({ levels: want });
      }),
      { numRuns: 500 },
    );
  });
});
