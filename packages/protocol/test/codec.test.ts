import { encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Codec, PROTOCOL_VERSION, topics, type BusMessage, type PriceMessage, type SignalMessage } from '../src/index.js';

const env = { v: PROTOCOL_VERSION, src: 'test', seq: 1, ts: 1_700_000_000_000 };
const price: PriceMessage = {
  type: 'price', token_id: '71321045679252212594626385532706912750332728571942532289631379312455583992563',
  market: '0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1', outcome: 'Yes',
  bid: 0.48, ask: 0.5, mid: 0.49, bid_size: 30, ask_size: 25, venue_ts: 1_757_908_892_351, ...env,
};

describe('codec', () => {
  it('round-trips every message kind as a plain msgpack map', () => {
    const codec = new Codec();
    const signal: SignalMessage = {
      type: 'signal', id: 'sig-0001-abcd', strategy: 'threshold', token_id: '1', market: '0x1', side: 'BUY', price: 0.34, size: 10, order_type: 'FAK', ...env,
    };
    const msgs: Array<[string, BusMessage]> = [
      [topics.price(price.token_id), price],
      [topics.signal(), signal],
      [topics.event('order', 'threshold'), {
        type: 'event', kind: 'order', strategy: 'threshold', signal_id: 's', order_id: 'o', venue_order_id: null, token_id: '1', market: '0x1',
        side: 'BUY', order_type: 'FAK', price: '0.34', size: '10', filled: '0', status: 'pending', ...env,
      }],
      [topics.status('scanner'), { type: 'status', service: 'scanner', state: 'running', since: 1, pid: 2, interval_ms: 2000, metrics: { events: 3, note: 'x' }, ...env }],
    ];
    for (const [topic, msg] of msgs) {
      const frames = codec.encode(topic, msg);
      const res = codec.decode(frames);
      expect(res).toEqual({ ok: true, topic, msg });
    }
  });

  it('rejects oversized, malformed and hostile frames with a reason code', () => {
    const codec = new Codec({ maxPayloadBytes: 4096 });
    const t = Buffer.from('price.1');
    const cases: Array<[Uint8Array[], string]> = [
      [[t], 'frame_count'],
      [[Buffer.alloc(0), encode(price)], 'topic_invalid'],
      [[t, new Uint8Array(5000)], 'too_large'],
      [[t, new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xf0, 0x41])], 'msgpack'],
      [[t, encode('just a string')], 'not_map'],
      [[t, encode({ ...price, extra: { constructor: { polluted: true } } })], 'forbidden_key'],
      [[t, encode({ ...price, type: 'mystery' })], 'unknown_type'],
      [[t, encode({ ...price, v: PROTOCOL_VERSION + 1 })], 'version'],
      [[t, encode({ ...price, bid: 1.5 })], 'schema'],
      [[t, encode({ ...price, seq: -1 })], 'schema'],
      [[Buffer.from('book.1'), encode(price)], 'topic_mismatch'],
      [[Buffer.from('prices.1'), encode(price)], 'topic_mismatch'],
      [[Buffer.from('pric'), encode(price)], 'topic_mismatch'],
    ];
    for (const [frames, code] of cases) {
      const res = codec.decode(frames);
      expect(res.ok, code).toBe(false);
      if (!res.ok) expect(res.code).toBe(code);
    }
    // The root may stand alone or lead dotted segments.
    expect(codec.decode([Buffer.from('price'), encode(price)]).ok).toBe(true);
    expect(codec.decode([Buffer.from('price.a.b'), encode(price)]).ok).toBe(true);
    // @msgpack/msgpack refuses __proto__ keys itself; either way the frame is rejected.
    const proto = codec.decode([t, encode({ ...price, extra: { ['__proto__']: { polluted: true } } })]);
    expect(proto.ok).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('never throws on arbitrary bytes (property)', () => {
    const codec = new Codec();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.string({ maxLength: 40 }), (bytes, topic) => {
        const res = codec.decode([Buffer.from(topic), bytes]);
        expect(typeof res.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutated valid messages and accepts only schema-valid ones (property)', () => {
    const codec = new Codec();
    const valid = encode(price);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (edits) => {
        const bytes = valid.slice();
        for (const [i, b] of edits) bytes[i] = b;
        const res = codec.decode([Buffer.from(`price.${price.token_id}`), bytes]);
        if (res.ok) expect(codec.check(res.msg)).toBeNull();
      }),
      { numRuns: 2000 },
    );
  });
});
