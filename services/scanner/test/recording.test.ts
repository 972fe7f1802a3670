import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync } from 'node:zlib';
import { encode as msgpackEncode } from '@msgpack/msgpack';
import { Codec, type BookMessage } from '@polybot/protocol';
import { tempDataDir, waitFor } from '@polybot/testkit';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecordingRecord } from '../src/pipeline/types.js';
import { BLOCK_HEADER_BYTES, SEGMENT_HEADER_BYTES, assembleBlock, blockBytes, encodeBody, readBlockHeader, segmentHeader } from '../src/recording/format.js';
import {
  INDEX_FILE,
  RecordingReader,
  RecordingWriter,
  applyRetention,
  decodeBlock,
  encodeBlockSync,
  generateFrames,
  jsonLinesSize,
  scanSegment,
  splitFrame,
  syntheticBusEvents,
  syntheticMarkets,
  syntheticRecording,
  writeRecording,
} from '../src/recording/index.js';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDataDir('rec');
});
afterEach(() => tmp.cleanup());

const raw = (data: string, recvTs: number, conn = 0, source: 'market' | 'rest_book' | 'gamma' | 'rtds' | 'round' = 'market'): RecordingRecord => ({
  kind: 'raw',
  source,
  conn,
  recvTs,
  data,
});
const event = (topic: string, payload: Uint8Array, recvTs: number): RecordingRecord => ({ kind: 'event', recvTs, topic, payload });

/** Exact comparison: same strings, same numbers (Object.is), same payload bytes, same order. */
function expectSame(actual: RecordingRecord[], expected: RecordingRecord[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok =
      a.kind === e.kind &&
      Object.is(a.recvTs, e.recvTs) &&
      (a.kind === 'raw' && e.kind === 'raw'
        ? a.source === e.source && Object.is(a.conn, e.conn) && a.data === e.data
        : a.kind === 'event' && e.kind === 'event' && a.topic === e.topic && Buffer.compare(Buffer.from(a.payload), Buffer.from(e.payload)) === 0);
    if (!ok) expect({ index: i, record: a }).toEqual({ index: i, record: e });
  }
}

async function readAll(dir: string): Promise<{ records: RecordingRecord[]; reader: RecordingReader }> {
  const reader = await RecordingReader.open(dir);
  return { records: [...reader.records()], reader };
}

const segFiles = (dir: string) => readdirSync(dir).filter((f) => /^seg-\d+\.pbr$/.test(f)).sort();

/** Offsets of the blocks in a segment file. */
function blockOffsets(path: string): number[] {
  const buf = readFileSync(path);
  const out: number[] = [];
  let off = SEGMENT_HEADER_BYTES;
  while (off < buf.length) {
    const h = readBlockHeader(buf, off);
    if (!h) break;
    out.push(off);
    off += blockBytes(h);
  }
  return out;
}

const codec = new Codec();
const priceMsg = (token: string, seq: number, ts: number) =>
  codec.encodePayload({
    type: 'price',
    token_id: token,
    market: '0xabc',
    bid: 0.5,
    ask: 0.51,
    mid: 0.505,
    bid_size: 100,
    ask_size: 12.5,
    venue_ts: ts - 3,
    v: 1,
    src: 'scanner',
    seq,
    ts,
  });

function mixedRecords(): RecordingRecord[] {
  const frames = generateFrames({ seed: 7, markets: 4, events: 300 });
  const recs: RecordingRecord[] = [];
  let seq = 0;
  for (const f of frames) {
    recs.push({ kind: 'raw', ...f });
    if (seq % 3 === 0) recs.push(event(`price.${seq}`, priceMsg(String(seq), seq, f.recvTs), f.recvTs));
    seq++;
  }
  const t = frames[frames.length - 1]!.recvTs;
  recs.push(
    raw('PONG', t + 1),
    raw('', t + 2, 3, 'rtds'),
    raw('{"event_type":"new_market","question":"Will 🚀 reach €2? — «ja» 日本語","x":1.5e-7}', t + 3),
    raw('{ "spaced" : [1, 2, {"a": "b\\"c\\\\"}] }', t + 4, 1),
    raw('[{"event_type":"book","bids":[],"asks":[]}]', t + 5),
    raw('not json {"a":1}', t + 6),
    raw('{"lone":"\ud800 surrogate"}', t + 7),
    raw('{"ctl":"tab\there"}', t + 8),
    raw('{"n":-0.0,"big":123456789012345678901234567890,"z":"0.50","neg":"-1.5","lead":"007"}', t + 9),
    event('book.x', new Uint8Array(0), t + 10),
    event('weird topic ✓', Uint8Array.from([0xc1, 0x00, 0xff, 0x80]), t + 10),
    raw('{"a":"b"}', t + 10.5, 2.5, 'gamma'),
    raw('{"a":"b"}', -5, -1, 'round'),
  );
  return recs;
}

describe('recording format', () => {
  it('round-trips raw frames and bus events bit for bit across blocks and segments', async () => {
    const recs = mixedRecords();
    const dir = join(tmp.dir, 'recordings', 'mixed');
    const stats = await writeRecording(dir, recs, { blockBytes: 8 * 1024, maxSegmentBytes: 16 * 1024 });
    expect(stats.records).toBe(recs.length);
    expect(stats.rawFrames + stats.events).toBe(recs.length);
    expect(stats.dropped).toBe(0);
    expect(stats.segments).toBeGreaterThan(1);
    const { records, reader } = await readAll(dir);
    expectSame(records, recs);
    expect(reader.corruptBlocksSeen).toBe(0);
    const info = reader.info();
    expect(info).toMatchObject({ records: recs.length, rawFrames: stats.rawFrames, events: stats.events, corruptBlocks: 0, segments: stats.segments, bytes: stats.bytes });
    expect(info.firstTs).toBe(-5);
    expect(info.lastTs).toBe(Math.max(...recs.map((r) => r.recvTs)));
  });

  it('splits JSON text into a skeleton and values that rebuild it exactly', () => {
    for (const text of ['{"a":"x","b":[1,-2.5e3,"y"],"c":true,"d":""}', '[{"k":"\\"q\\"","n":0}]']) {
      const values: string[] = [];
      const skel = splitFrame(text, values);
      expect(skel).not.toBeNull();
      const parts = skel!.split('\x00');
      expect(parts.length).toBe(values.length + 1);
      expect(parts.map((p, i) => p + (values[i] ?? '')).join('')).toBe(text);
    }
    expect(splitFrame('{"a":"x\ny"}', [])).toBeNull();
    expect(splitFrame('{"a":"unterminated', [])).toBeNull();
  });

  it('round-trips arbitrary records (property)', () => {
    const num = fc.oneof(fc.integer({ min: -1e15, max: 1e15 }), fc.maxSafeInteger(), fc.double(), fc.constantFrom(-0, 0, NaN, Infinity, 1_767_225_600_123));
    // Any UTF-16 code units, lone surrogates included: JS strings can hold them and must survive.
    const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    const text = fc.oneof(
      fc.string({ unit: codeUnit, maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.json({ maxDepth: 3 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v, null, 1) ?? 'null'),
      fc.constantFrom('PONG', '', '{', '[]', '{"a":"0x' + 'ab'.repeat(20) + '"}'),
    );
    const rawArb = fc.record({
      kind: fc.constant('raw' as const),
      source: fc.constantFrom('market', 'rest_book', 'gamma', 'rtds', 'round') as fc.Arbitrary<'market'>,
      conn: num,
      recvTs: num,
      data: text,
    });
    const eventArb = fc.record({
      kind: fc.constant('event' as const),
      recvTs: num,
      topic: fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.string({ unit: codeUnit, maxLength: 30 })),
      payload: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.jsonValue({ maxDepth: 2 }).map((v) => msgpackEncode(v))),
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(rawArb, eventArb), { maxLength: 40 }), (recs) => {
        const back = decodeBlock(encodeBlockSync(recs));
        expect(back).not.toBeNull();
        expectSame(back!, recs);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips arbitrary JSON frames through a writer and reader (property)', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.json({ maxDepth: 4 }), { minLength: 1, maxLength: 30 }), async (texts) => {
        const recs = texts.map((t, i) => raw(t, 1000 + i));
        const dir = join(tmp.dir, `prop-${n++}`);
        await writeRecording(dir, recs, { blockBytes: 512 });
        expectSame((await readAll(dir)).records, recs);
      }),
      { numRuns: 25 },
    );
  });

  it('rotates segments by size and by receive time, and indexes them', async () => {
    const recs = syntheticRecording({ seed: 3, markets: 5, events: 1500, ratePerSec: 400 });
    const bySize = join(tmp.dir, 'size');
    await writeRecording(bySize, recs, { blockBytes: 4096, maxSegmentBytes: 20_000 });
    const sizeSegs = segFiles(bySize);
    expect(sizeSegs.length).toBeGreaterThan(2);
    // A segment is closed at the first block that takes it past the limit.
    for (const f of sizeSegs.slice(0, -1)) expect(statSync(join(bySize, f)).size).toBeGreaterThanOrEqual(20_000);

    const byTime = join(tmp.dir, 'time');
    const w = await RecordingWriter.open(byTime, { maxSegmentMs: 1000, flushMs: 3_600_000 });
    let second = Math.floor(recs[0]!.recvTs / 250);
    for (const r of recs) {
      // Blocks of a quarter second, as the flush timer would cut them live.
      if (Math.floor(r.recvTs / 250) !== second) {
        second = Math.floor(r.recvTs / 250);
        await w.flush();
      }
      w.append(r);
    }
    await w.close();
    const idx = JSON.parse(readFileSync(join(byTime, INDEX_FILE), 'utf8'));
    const span = recs[recs.length - 1]!.recvTs - recs[0]!.recvTs;
    expect(idx.segments.length).toBeGreaterThanOrEqual(Math.floor(span / 1000));
    for (const s of idx.segments) {
      expect(s.sealed).toBe(true);
      expect(s.lastTs - s.firstTs).toBeLessThan(1000 + 250);
    }
    expect(idx.segments.reduce((n: number, s: { records: number }) => n + s.records, 0)).toBe(recs.length);
    for (const dir of [bySize, byTime]) expectSame((await readAll(dir)).records, recs);
  });

  it('keeps an index that matches the files, and rebuilds it when missing or stale', async () => {
    const recs = syntheticRecording({ seed: 4, markets: 3, events: 800 });
    const dir = join(tmp.dir, 'idx');
    await writeRecording(dir, recs, { blockBytes: 8192, maxSegmentBytes: 30_000 });
    const before = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8'));
    expect(before.segments.map((s: { file: string }) => s.file)).toEqual(segFiles(dir));
    for (const s of before.segments) expect(scanSegment(join(dir, s.file))).toEqual({ ...s, sealed: false });
    const fresh = await RecordingReader.open(dir);
    expect(fresh.info().rescanned).toBe(false);
    const info = fresh.info();
    expect(info.records).toBe(recs.length);
    expect(info.firstTs).toBe(recs[0]!.recvTs);
    expect(info.lastTs).toBe(recs[recs.length - 1]!.recvTs);

    unlinkSync(join(dir, INDEX_FILE));
    const rebuilt = await RecordingReader.open(dir);
    expect(rebuilt.info()).toEqual({ ...info, rescanned: true });
    expect(JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8')).segments).toEqual(before.segments);

    // Stale: garbage appended to a sealed segment changes its size.
    const last = segFiles(dir).at(-1)!;
    writeFileSync(join(dir, last), Buffer.from('PBRB garbage after the last block'), { flag: 'a' });
    const stale = await RecordingReader.open(dir);
    expect(stale.info()).toMatchObject({ records: recs.length, corruptBlocks: 1, rescanned: true });
    expectSame([...stale.records()], recs);
    expect(stale.corruptBlocksSeen).toBe(1);
  });

  it('skips a torn tail at every byte offset of the last block and still reads the earlier ones', async () => {
    const recs = mixedRecords().slice(0, 60);
    const src = join(tmp.dir, 'torn-src');
    const w = await RecordingWriter.open(src, { flushMs: 3_600_000 });
    for (let i = 0; i < recs.length; i++) {
      w.append(recs[i]!);
      if (i % 15 === 14) await w.flush();
    }
    await w.close();
    const seg = segFiles(src)[0]!;
    const offsets = blockOffsets(join(src, seg));
    expect(offsets.length).toBe(4);
    const lastStart = offsets[3]!;
    const end = statSync(join(src, seg)).size;
    const dir = join(tmp.dir, 'torn');
    mkdirSync(dir);
    for (let cut = lastStart; cut < end; cut++) {
      copyFileSync(join(src, seg), join(dir, seg));
      truncateSync(join(dir, seg), cut);
      const reader = await RecordingReader.open(dir);
      const got = [...reader.records()];
      expectSame(got, recs.slice(0, 45));
      const corrupt = cut === lastStart ? 0 : 1;
      expect(reader.corruptBlocksSeen).toBe(corrupt);
      expect(reader.info()).toMatchObject({ records: 45, corruptBlocks: corrupt });
    }
    // Torn inside the segment header itself.
    for (const cut of [0, 1, SEGMENT_HEADER_BYTES - 1]) {
      copyFileSync(join(src, seg), join(dir, seg));
      truncateSync(join(dir, seg), cut);
      const reader = await RecordingReader.open(dir);
      expect([...reader.records()]).toEqual([]);
      expect(reader.info().corruptBlocks).toBe(cut === 0 ? 0 : 1);
    }
  });

  it('detects a flipped byte by CRC and skips only what it cannot decode', async () => {
    const recs = syntheticRecording({ seed: 5, markets: 3, events: 400 });
    for (const chainBytes of [0, 8 * 1024 * 1024]) {
      const dir = join(tmp.dir, `flip-${chainBytes}`);
      const w = await RecordingWriter.open(dir, { flushMs: 3_600_000, chainBytes });
      const cuts: number[] = [];
      for (let i = 0; i < recs.length; i++) {
        w.append(recs[i]!);
        if (i % 200 === 199) {
          await w.flush();
          cuts.push(i + 1);
        }
      }
      await w.close();
      if (cuts.at(-1) !== recs.length) cuts.push(recs.length);
      const seg = join(dir, segFiles(dir)[0]!);
      const offsets = blockOffsets(seg);
      expect(offsets.length).toBe(cuts.length);
      const k = 2;
      const buf = readFileSync(seg);
      buf[offsets[k]! + BLOCK_HEADER_BYTES + 5]! ^= 0x40;
      writeFileSync(seg, buf);
      const reader = await RecordingReader.open(dir);
      const got = [...reader.records()];
      if (chainBytes === 0) {
        // Independent blocks: only block k is lost.
        expectSame(got, [...recs.slice(0, cuts[k - 1]), ...recs.slice(cuts[k])]);
        expect(reader.corruptBlocksSeen).toBe(1);
      } else {
        // One compression chain: block k and the rest of its chain are lost.
        expectSame(got, recs.slice(0, cuts[k - 1]));
        expect(reader.corruptBlocksSeen).toBe(cuts.length - k);
      }
      // Same size, so the index still vouches for the file: totals are as written, reading finds the damage.
      expect(reader.info()).toMatchObject({ records: recs.length, corruptBlocks: 0, rescanned: false });

      // A damaged header is skipped by resynchronising on the next block.
      buf[offsets[k]! + BLOCK_HEADER_BYTES + 5]! ^= 0x40;
      buf[offsets[1]! + 9]! ^= 0x01;
      writeFileSync(seg, buf);
      const r2 = await RecordingReader.open(dir);
      const got2 = [...r2.records()];
      if (chainBytes === 0) expectSame(got2, [...recs.slice(0, cuts[0]), ...recs.slice(cuts[1])]);
      else expectSame(got2, recs.slice(0, cuts[0]));
    }
  });

  it('writes on its own every flushMs and reports write errors instead of throwing on append', async () => {
    const dir = join(tmp.dir, 'timer');
    const w = await RecordingWriter.open(dir, { flushMs: 20 });
    w.append(raw('{"a":"1"}', 1));
    w.append(event('price.1', priceMsg('1', 0, 2), 2));
    await waitFor(() => w.stats().blocks === 1 && w.stats().pendingRecords === 0, { what: 'a timed flush' });
    // A reader sees the block while the writer is still open.
    expectSame((await readAll(dir)).records, [raw('{"a":"1"}', 1), event('price.1', priceMsg('1', 0, 2), 2)]);
    await w.close();
    w.append(raw('late', 3));
    expect(w.stats()).toMatchObject({ records: 2, rawFrames: 1, events: 1, dropped: 1, error: null });

    const gone = join(tmp.dir, 'gone');
    const w2 = await RecordingWriter.open(gone, { flushMs: 3_600_000 });
    rmSync(gone, { recursive: true, force: true });
    w2.append(raw('x', 1));
    await expect(w2.flush()).rejects.toThrow(/recording .*gone: .*ENOENT/);
    w2.append(raw('y', 2));
    expect(w2.stats()).toMatchObject({ records: 0, dropped: 2 });
    expect(w2.stats().error).toMatch(/ENOENT/);
    await expect(w2.close()).rejects.toThrow(/ENOENT/);

    const small = join(tmp.dir, 'small');
    const w3 = await RecordingWriter.open(small, { flushMs: 3_600_000, maxPendingBytes: 1000 });
    for (let i = 0; i < 100; i++) w3.append(raw('{"some":"frame text of a few dozen bytes"}', i));
    expect(w3.stats().dropped).toBeGreaterThan(0);
    await w3.close();
    expect((await readAll(small)).records.length).toBe(100 - w3.stats().dropped);
  });

  it('a block that passes its checksum but breaks part way: records() gives the records before the break, blocks() none; both count it', async () => {
    const dir = join(tmp.dir, 'breaks');
    mkdirSync(dir);
    const recs = [raw('{"a":1}', 10), raw('{"a":2}', 11), raw('{"a":3}', 12)];
    // The body claims one record more than it holds: decoding fails after the three real ones.
    const enc = encodeBody(recs);
    expect(enc.body[0]).toBe(3);
    enc.body[0] = 4;
    const block = assembleBlock(enc, brotliCompressSync(enc.body), 0);
    writeFileSync(join(dir, 'seg-000001.pbr'), Buffer.concat([segmentHeader(1), block]));
    const reader = await RecordingReader.open(dir);
    expectSame([...reader.records()], recs);
    expect(reader.corruptBlocksSeen).toBe(1);
    expect([...reader.blocks()]).toEqual([]);
    expect(reader.corruptBlocksSeen).toBe(2);
  });

  it('never throws on garbage and explains a path that is not a recording', async () => {
    const dir = join(tmp.dir, 'garbage');
    mkdirSync(dir);
    const junk = Buffer.alloc(70_000);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
    junk.write('PBRB', 1000, 'latin1');
    writeFileSync(join(dir, 'seg-000001.pbr'), junk);
    writeFileSync(join(dir, INDEX_FILE), '{ not json');
    const reader = await RecordingReader.open(dir);
    expect([...reader.records()]).toEqual([]);
    expect(reader.info()).toMatchObject({ records: 0, corruptBlocks: 1 });

    const empty = join(tmp.dir, 'empty');
    mkdirSync(empty);
    await expect(RecordingReader.open(empty)).rejects.toThrow(/not a recording: .*empty has no index\.json and no seg-NNNNNN\.pbr/);
    await expect(RecordingReader.open(join(tmp.dir, 'nope'))).rejects.toThrow(/recording not found/);
  });

  it('reopens a recording after a crash: keeps the torn segment as it is and appends a new one', async () => {
    const recs = syntheticRecording({ seed: 6, markets: 3, events: 600 });
    const first = recs.slice(0, 400);
    const second = recs.slice(400);
    const live = join(tmp.dir, 'live');
    const w = await RecordingWriter.open(live, { flushMs: 3_600_000 });
    for (let i = 0; i < first.length; i++) {
      w.append(first[i]!);
      if (i % 100 === 99) await w.flush();
    }
    // A second writer on a recording being written is refused.
    await expect(RecordingWriter.open(live)).rejects.toThrow(/being written by process/);

    // The crash: what is on disk while the writer runs, with its last block torn and no lock owner.
    const crashed = join(tmp.dir, 'crashed');
    cpSync(live, crashed, { recursive: true });
    unlinkSync(join(crashed, 'writer.lock'));
    const seg = join(crashed, segFiles(crashed)[0]!);
    const offsets = blockOffsets(seg);
    truncateSync(seg, offsets[3]! + 100);
    const segBytes = statSync(seg).size;
    await w.close();

    const w2 = await RecordingWriter.open(crashed, { flushMs: 3_600_000 });
    for (const r of second) w2.append(r);
    await w2.close();
    expect(statSync(seg).size).toBe(segBytes);
    expect(segFiles(crashed)).toEqual(['seg-000001.pbr', 'seg-000002.pbr']);
    const { records, reader } = await readAll(crashed);
    expectSame(records, [...first.slice(0, 300), ...second]);
    expect(reader.info()).toMatchObject({ records: 300 + second.length, corruptBlocks: 1, segments: 2, rescanned: false });

    // A clean reopen appends too.
    const w3 = await RecordingWriter.open(live);
    w3.append(raw('PONG', recs.at(-1)!.recvTs + 1));
    await w3.close();
    expectSame((await readAll(live)).records, [...first, raw('PONG', recs.at(-1)!.recvTs + 1)]);
    expect(segFiles(live).length).toBe(2);
  });

  it('reads a time range without decoding the rest', async () => {
    const recs = syntheticRecording({ seed: 8, markets: 3, events: 2000, ratePerSec: 500 });
    const dir = join(tmp.dir, 'range');
    await writeRecording(dir, recs, { blockBytes: 16 * 1024, chainBytes: 64 * 1024 });
    const from = recs[0]!.recvTs + 1000;
    const to = from + 1500;
    const reader = await RecordingReader.open(dir);
    expectSame([...reader.records({ fromTs: from, toTs: to })], recs.filter((r) => r.recvTs >= from && r.recvTs <= to));
    const async: RecordingRecord[] = [];
    for await (const r of reader.recordsAsync({ fromTs: from })) async.push(r);
    expectSame(async, recs.filter((r) => r.recvTs >= from));
    // Block by block with the next chain decompressed ahead (what a replay reads), over many chains.
    for (const range of [{}, { fromTs: from, toTs: to }, { toTs: to }]) {
      const blocks: RecordingRecord[] = [];
      for await (const block of reader.blockRecords(range)) for (const r of block) blocks.push(r);
      expectSame(blocks, [...reader.records(range)]);
    }
    expect((await readAll(dir)).records.length).toBe(recs.length);
    expect(reader.corruptBlocksSeen).toBe(0);
    // A replay stopped part way closes the segment it was reading.
    const openFds = () => readdirSync('/proc/self/fd').length;
    const before = openFds();
    for await (const block of reader.blockRecords()) {
      for (const r of block) void r;
      expect(openFds()).toBeGreaterThan(before);
      break;
    }
    expect(openFds()).toBe(before);
  });

  it('is at least ten times smaller than JSON lines on synthetic market data', async () => {
    const recs = syntheticRecording({ seed: 1, markets: 50, events: 6000 });
    const raws = recs.filter((r) => r.kind === 'raw');
    const dirAll = join(tmp.dir, 'ratio-all');
    const dirRaw = join(tmp.dir, 'ratio-raw');
    const all = await writeRecording(dirAll, recs);
    const rawOnly = await writeRecording(dirRaw, raws);
    const ratio = all.bytes / jsonLinesSize(recs);
    const rawRatio = rawOnly.bytes / jsonLinesSize(raws);
    expect(ratio).toBeLessThanOrEqual(0.1);
    expect(rawRatio).toBeLessThanOrEqual(0.1);
    expectSame((await readAll(dirAll)).records, recs);
  });

  it('applies retention by age and by size without touching the recording being written', async () => {
    const root = join(tmp.dir, 'recordings');
    const day = 86_400_000;
    const now = 1_767_225_600_000 + 10 * day;
    const make = async (name: string, startTs: number) => {
      const recs = syntheticRecording({ seed: 9, markets: 2, events: 300, startTs });
      await writeRecording(join(root, name), recs, { blockBytes: 4096, maxSegmentBytes: 8_000 });
      // Age is time on disk: make the files as old as what they hold.
      for (const f of segFiles(join(root, name))) utimesSync(join(root, name, f), new Date(startTs), new Date(startTs));
      return segFiles(join(root, name)).length;
    };
    await make('old', now - 5 * day);
    const midSegs = await make('mid', now - 2 * day);
    await make('new', now - 1000);
    // The active recording: old data, but its writer is alive; its older segments may go.
    const active = await RecordingWriter.open(join(root, 'active'), { blockBytes: 4096, maxSegmentBytes: 4000 });
    for (const r of syntheticRecording({ seed: 9, markets: 2, events: 150, startTs: now - 9 * day })) active.append(r);
    await active.flush();
    const activeSegs = segFiles(join(root, 'active'));
    for (const f of activeSegs) utimesSync(join(root, 'active', f), new Date(now - 9 * day), new Date(now - 9 * day));
    expect(activeSegs.length).toBeGreaterThan(1);
    mkdirSync(join(root, 'not-a-recording'));
    // A segment unknown to the index is judged by its file time.
    copyFileSync(join(root, 'mid', 'seg-000001.pbr'), join(root, 'mid', 'seg-000900.pbr'));
    utimesSync(join(root, 'mid', 'seg-000900.pbr'), new Date(now - 4 * day), new Date(now - 4 * day));

    const byAge = applyRetention(root, { maxAgeMs: 3 * day, now, keep: active.activePaths() });
    expect(byAge.removedRecordings).toEqual([join(root, 'old')]);
    expect(byAge.deleted.every((d) => d.reason === 'age')).toBe(true);
    expect(byAge.deleted.map((d) => d.path)).toContain(join(root, 'mid', 'seg-000900.pbr'));
    expect(existsSync(join(root, 'old'))).toBe(false);
    expect(segFiles(join(root, 'mid')).length).toBe(midSegs);
    expect(segFiles(join(root, 'active'))).toEqual([activeSegs.at(-1)]);
    expect(active.activePaths()).toEqual([join(root, 'active', activeSegs.at(-1)!)]);
    expect(existsSync(join(root, 'not-a-recording'))).toBe(true);

    const newBytes = segFiles(join(root, 'new')).reduce((n, f) => n + statSync(join(root, 'new', f)).size, 0);
    const activeBytes = statSync(join(root, 'active', segFiles(join(root, 'active'))[0]!)).size;
    const bySize = applyRetention(root, { maxBytes: newBytes + activeBytes, now });
    expect(bySize.deleted.every((d) => d.reason === 'bytes')).toBe(true);
    expect(bySize.removedRecordings).toEqual([join(root, 'mid')]);
    expect(bySize.remainingBytes).toBeLessThanOrEqual(newBytes + activeBytes);
    // The live writer's segment stays even without a keep list.
    expect(segFiles(join(root, 'active')).length).toBe(1);
    expect((await readAll(join(root, 'new'))).records.length).toBeGreaterThan(0);

    await active.close();
    const idx = JSON.parse(readFileSync(join(root, 'active', INDEX_FILE), 'utf8'));
    expect(idx.segments.map((x: { file: string }) => x.file)).toEqual([activeSegs.at(-1)]);
    const left = await RecordingReader.open(join(root, 'active'));
    expect(left.info()).toMatchObject({ rescanned: false, records: idx.segments[0].records });
    expect([...left.records()].length).toBe(idx.segments[0].records);
  });
});

describe('synthetic market data', () => {
  it('is deterministic, in the current venue formats, with consistent uncrossed books', () => {
    const a = generateFrames({ seed: 11, markets: 6, events: 3000 });
    const b = generateFrames({ seed: 11, markets: 6, events: 3000 });
    expect(a).toEqual(b);
    expect(generateFrames({ seed: 12, markets: 6, events: 50 })).not.toEqual(a.slice(0, 51));
    const markets = syntheticMarkets({ seed: 11, markets: 6 });
    for (const m of markets) {
      expect(m.conditionId).toMatch(/^0x[0-9a-f]{64}$/);
      expect(m.yesToken).toMatch(/^[1-9][0-9]{76}$/);
      expect(m.noToken).toMatch(/^[1-9][0-9]{76}$/);
    }
    const tokenOf = new Map(markets.flatMap((m) => [[m.yesToken, m], [m.noToken, m]] as const));
    const books = new Map<string, { bids: Map<number, string>; asks: Map<number, string> }>();
    const best = (side: Map<number, string>, high: boolean) => (side.size ? (high ? Math.max(...side.keys()) : Math.min(...side.keys())) : null);
    const seen = new Set<string>();
    let prevTs = 0;
    for (const f of a) {
      expect(f.recvTs).toBeGreaterThanOrEqual(prevTs);
      prevTs = f.recvTs;
      if (f.data === 'PONG') continue;
      const parsed = JSON.parse(f.data);
      for (const ev of Array.isArray(parsed) ? parsed : [parsed]) {
        seen.add(ev.event_type);
        expect(Number(ev.timestamp)).toBeLessThanOrEqual(f.recvTs);
        if (ev.event_type === 'book') {
          expect(Object.keys(ev)).toEqual(['asks', 'asset_id', 'bids', 'event_type', 'hash', 'last_trade_price', 'market', 'min_order_size', 'neg_risk', 'tick_size', 'timestamp']);
          expect(ev.hash).toMatch(/^[0-9a-f]{40}$/);
          const bids = ev.bids.map((l: any) => Number(l.price));
          const asks = ev.asks.map((l: any) => Number(l.price));
          expect(bids).toEqual([...bids].sort((x, y) => x - y));
          expect(asks).toEqual([...asks].sort((x, y) => y - x));
          expect(bids.at(-1)).toBeLessThan(asks.at(-1));
          for (const l of [...ev.bids, ...ev.asks]) {
            expect(l.price).toMatch(/^0\.\d{1,2}$/);
            expect(l.size).toMatch(/^\d+(\.\d+)?$/);
          }
          books.set(ev.asset_id, {
            bids: new Map(ev.bids.map((l: any) => [Number(l.price), l.size])),
            asks: new Map(ev.asks.map((l: any) => [Number(l.price), l.size])),
          });
        } else if (ev.event_type === 'price_change') {
          expect(Object.keys(ev)).toEqual(['market', 'price_changes', 'timestamp', 'event_type']);
          const assets = new Set(ev.price_changes.map((c: any) => c.asset_id));
          expect(assets.size).toBe(2);
          for (const c of ev.price_changes) {
            expect(Object.keys(c)).toEqual(['asset_id', 'price', 'size', 'side', 'hash', 'best_bid', 'best_ask']);
            expect(tokenOf.get(c.asset_id)!.conditionId).toBe(ev.market);
            expect(c.hash).toMatch(/^[0-9a-f]{40}$/);
            const book = books.get(c.asset_id)!;
            const side = c.side === 'BUY' ? book.bids : book.asks;
            if (c.size === '0') side.delete(Number(c.price));
            else side.set(Number(c.price), c.size);
            expect(Number(c.best_bid)).toBe(best(book.bids, true));
            expect(Number(c.best_ask)).toBe(best(book.asks, false));
            expect(Number(c.best_bid)).toBeLessThan(Number(c.best_ask));
          }
        } else if (ev.event_type === 'last_trade_price') {
          expect(ev).toMatchObject({ fee_rate_bps: '0' });
          expect(ev.transaction_hash).toMatch(/^0x[0-9a-f]{64}$/);
          expect(['BUY', 'SELL']).toContain(ev.side);
        } else {
          expect(ev.event_type).toBe('tick_size_change');
        }
      }
    }
    expect(seen.has('last_trade_price') && seen.has('price_change') && seen.has('book')).toBe(true);
    // Thousands of events per second by default.
    const span = (a.at(-1)!.recvTs - a[0]!.recvTs) / 1000;
    expect(a.length / span).toBeGreaterThan(1000);
  });

  it('produces the bus messages a scanner publishes, valid against the protocol schemas', () => {
    const frames = generateFrames({ seed: 2, markets: 3, events: 200 });
    const events = syntheticBusEvents(frames);
    expect(events.length).toBeGreaterThan(frames.length);
    const types = new Set<string>();
    for (const e of events) {
      if (e.kind !== 'event') throw new Error('not an event');
      const res = codec.decodePayload(e.payload, e.topic);
      if (!res.ok) throw new Error(`${e.topic}: ${res.reason}`);
      types.add(res.msg.type);
      expect(e.topic.startsWith(`${res.msg.type}.`)).toBe(true);
      if (res.msg.type === 'book') expect((res.msg as BookMessage).bids.length).toBeLessThanOrEqual(20);
    }
    expect([...types].sort()).toEqual(['book', 'price', 'trade']);
  });
});
