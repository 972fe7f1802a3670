#!/usr/bin/env node
// Recording format measurements (not part of `pnpm bench`): size against JSON lines, writer cost on
// the main thread, write and read throughput. Uses the built dist: `npx tsc -b services/scanner` first.
//   node services/scanner/bench/_recording-measure.mjs [events=50000] [rate=3000]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RecordingReader, RecordingWriter, jsonLinesSize, syntheticRecording } from '../dist/recording/index.js';

const EVENTS = Number(process.argv[2] ?? 50_000);
const RATE = Number(process.argv[3] ?? 3000);
const SAMPLES = fileURLToPath(new URL('../../../../shared/polymarket/samples/ws_market_messages.jsonl', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'pbrec-'));

/**
 * Writes `records`; `liveMs` > 0 seals a block whenever receive time crosses that period, as the
 * writer's flush timer would live (the input here arrives far faster than real time).
 */
async function write(name, records, liveMs = 0) {
  const dir = join(root, name);
  const w = await RecordingWriter.open(dir, { flushMs: 3_600_000 });
  let mainNs = 0n;
  let periodStart = records[0]?.recvTs ?? 0;
  let n = 0;
  const t0 = process.hrtime.bigint();
  for (const r of records) {
    if (liveMs > 0 && r.recvTs - periodStart >= liveMs) {
      periodStart = r.recvTs;
      const a = process.hrtime.bigint();
      const p = w.flush();
      mainNs += process.hrtime.bigint() - a;
      await p;
    }
    const a = process.hrtime.bigint();
    w.append(r);
    mainNs += process.hrtime.bigint() - a;
    // A live process turns its event loop all the time, which lets compression and writes proceed.
    if (++n % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    // Keep memory bounded without counting the wait as main-thread work.
    if (w.stats().pendingBytes > 64 * 1024 * 1024) await w.flush();
  }
  await w.close();
  const wallNs = process.hrtime.bigint() - t0;
  const s = w.stats();
  if (s.records !== records.length || s.dropped) throw new Error(`wrote ${s.records} of ${records.length}, dropped ${s.dropped}`);
  return { dir, bytes: s.bytes, blocks: s.blocks, mainUsPerRecord: Number(mainNs) / 1000 / records.length, wallPerSec: records.length / (Number(wallNs) / 1e9) };
}

async function read(dir, expected) {
  const reader = await RecordingReader.open(dir);
  let best = 0;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = process.hrtime.bigint();
    let n = 0;
    for (const r of reader.records()) if (r.recvTs >= 0) n++;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (n !== expected) throw new Error(`read ${n} of ${expected}`);
    best = Math.max(best, n / secs);
  }
  return best;
}

function check(a, b) {
  if (a.length !== b.length) throw new Error('length differs');
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    const same =
      x.kind === y.kind &&
      x.recvTs === y.recvTs &&
      (x.kind === 'raw' ? x.source === y.source && x.conn === y.conn && x.data === y.data : x.topic === y.topic && Buffer.compare(x.payload, y.payload) === 0);
    if (!same) throw new Error(`record ${i} differs`);
  }
}

const recs = syntheticRecording({ events: EVENTS, ratePerSec: RATE });
const raws = recs.filter((r) => r.kind === 'raw');
const evs = recs.filter((r) => r.kind === 'event');
const jl = jsonLinesSize(recs);
const jlRaw = jsonLinesSize(raws);
const jlEv = jsonLinesSize(evs);

const all = await write('all', recs);
const reader = await RecordingReader.open(all.dir);
check([...reader.records()], recs);
const readPerSec = await read(all.dir, recs.length);
const t0 = process.hrtime.bigint();
let blockRecs = 0;
for (const b of reader.blocks()) blockRecs += b.length;
const blocksPerSec = blockRecs / (Number(process.hrtime.bigint() - t0) / 1e9);

const live = await write('live', recs, 1000);
const rawOnly = await write('raw', raws);
const rawLive = await write('rawlive', raws, 1000);
const evOnly = await write('ev', evs);
const slow = syntheticRecording({ events: Math.min(EVENTS, 10_000), ratePerSec: 200 });
const slowLive = await write('slow', slow, 1000);
const slowJl = jsonLinesSize(slow);

const lines = readFileSync(SAMPLES, 'utf8').split('\n').filter((l) => l.length > 0);
const sampleRecs = lines.map((data, i) => ({ kind: 'raw', source: 'market', conn: 0, recvTs: 1_767_225_600_000 + i * 7, data }));
const sample = await write('samples', sampleRecs);
const sampleJl = jsonLinesSize(sampleRecs);
const sampleReader = await RecordingReader.open(sample.dir);
check([...sampleReader.records()], sampleRecs);

rmSync(root, { recursive: true, force: true });

const r4 = (x) => Math.round(x * 10_000) / 10_000;
const out = {
  bench: 'recording',
  records: recs.length,
  raw_frames: raws.length,
  events: evs.length,
  ratio: r4(all.bytes / jl),
  ratio_live_1s: r4(live.bytes / jl),
  ratio_raw: r4(rawOnly.bytes / jlRaw),
  ratio_raw_live_1s: r4(rawLive.bytes / jlRaw),
  ratio_events: r4(evOnly.bytes / jlEv),
  ratio_200_per_s_live_1s: r4(slowLive.bytes / slowJl),
  ratio_samples: r4(sample.bytes / sampleJl),
  bytes_per_record: Math.round((all.bytes / recs.length) * 10) / 10,
  bytes_per_raw_frame: Math.round((rawOnly.bytes / raws.length) * 10) / 10,
  bytes_per_event: Math.round((evOnly.bytes / evs.length) * 10) / 10,
  write_main_us_per_record: Math.round(all.mainUsPerRecord * 100) / 100,
  write_main_us_per_raw_frame: Math.round(rawOnly.mainUsPerRecord * 100) / 100,
  write_main_us_per_event: Math.round(evOnly.mainUsPerRecord * 100) / 100,
  write_records_per_s: Math.round(all.wallPerSec),
  read_records_per_s: Math.round(readPerSec),
  read_blocks_records_per_s: Math.round(blocksPerSec),
};
console.log(`synthetic: ${recs.length} records (${raws.length} raw frames, ${evs.length} bus events), ${(jl / 1e6).toFixed(1)} MB as JSON lines`);
console.log(`size vs JSON lines: ${out.ratio} (blocks by size), ${out.ratio_live_1s} (1 s blocks as live); raw frames only ${out.ratio_raw} / ${out.ratio_raw_live_1s}; events only ${out.ratio_events}`);
console.log(`at 200 events/s with 1 s blocks: ${out.ratio_200_per_s_live_1s}; samples/ws_market_messages.jsonl (${lines.length} frames, ${sampleJl} B): ${out.ratio_samples}`);
console.log(`bytes/record ${out.bytes_per_record} (raw frame ${out.bytes_per_raw_frame}, event ${out.bytes_per_event})`);
console.log(`writer main thread: ${out.write_main_us_per_record} us/record (raw frame ${out.write_main_us_per_raw_frame}, event ${out.write_main_us_per_event}); end to end ${out.write_records_per_s} records/s`);
console.log(`reader: ${out.read_records_per_s} records/s (records()), ${out.read_blocks_records_per_s} records/s (blocks())`);
console.log(JSON.stringify(out));
