#!/usr/bin/env node
// Scanner benchmark, one process, on a generated recording of venue-like market-channel frames
// (current formats, random 40-hex hashes, both tokens of a market per price_change):
//   (a) processing: frames fed straight into the scanner's pipeline (processors + books + publish on
//       a real ZeroMQ PUB socket, one subscriber attached) — normalized venue events per second;
//   (b) replay at max speed: the same frames written as a recording, replayed through `replay.start`
//       over scanner.rep (read + decompress + the same pipeline) — events per second;
//   (c) size: the recording (raw frames + the bus events a scanner publishes for them) against the
//       same records as JSON lines.
// Runs against the built dist (`pnpm bench:scanner` builds first). BENCH_SCANNER_EVENTS sets the
// stream length (default 300,000), BENCH_SCANNER_MARKETS the markets (default 100).
import { rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { BusRequester, resolveEndpoints } from '@polybot/bus';
import { loadConfig, ServiceRunner } from '@polybot/core';
import { tempDataDir } from '@polybot/testkit';
import {
  createScannerService,
  RecordingReader,
  ScannerConfig,
  syntheticFrames,
  syntheticGammaFrame,
  writeRecording,
} from '@polybot/scanner';
import { jsonLinesSize, syntheticRecording } from '../dist/recording/index.js';

const EVENTS = Number(process.env.BENCH_SCANNER_EVENTS ?? 300_000);
const MARKETS = Number(process.env.BENCH_SCANNER_MARKETS ?? 100);
const gen = { seed: 42, markets: MARKETS, events: EVENTS, ratePerSec: 5000 };

const tmp = tempDataDir('pbbench-scanner');
let runner;
let sub;
let req;
try {
  const frames = [syntheticGammaFrame(gen), ...syntheticFrames(gen)];
  // Level updates (one per price_changes entry, one per book) for those who count book deltas.
  let levelUpdates = 0;
  for (const f of frames) {
    if (f.source !== 'market' || f.data === 'PONG') continue;
    const v = JSON.parse(f.data);
    for (const e of Array.isArray(v) ? v : [v]) levelUpdates += Array.isArray(e.price_changes) ? e.price_changes.length : 1;
  }
  console.log(
    `generated ${frames.length.toLocaleString()} frames for ${MARKETS} markets (${EVENTS.toLocaleString()} stream events, ${levelUpdates.toLocaleString()} per-token updates)`,
  );

  const config = loadConfig(ScannerConfig, {
    env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_LOG_LEVEL: 'warn', POLYBOT_SCANNER_SOURCE: 'replay' },
    envFile: false,
  });
  let scanner;
  runner = new ServiceRunner({ name: 'scanner', config, env: {}, create: (ctx) => (scanner = createScannerService(ctx)) });
  await runner.start();
  const eps = resolveEndpoints(tmp.dir, {});
  // The subscriber runs on its own thread (as another process would): it proves the messages flow
  // without taking the scanner's event loop.
  let received = 0;
  sub = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import('@polybot/bus').then(({ BusSubscriber }) => {
       let n = 0;
       const s = new BusSubscriber({ endpoints: [workerData.endpoint], topics: ['price.', 'book.', 'trade.'], onMessage: () => void n++ });
       s.start();
       setInterval(() => parentPort.postMessage(n), 100);
       parentPort.on('message', async () => { await s.close(); process.exit(0); });
     });`,
    { eval: true, workerData: { endpoint: eps['prices.pub'] } },
  );
  sub.on('message', (n) => (received = n));
  await new Promise((r) => setTimeout(r, 500));

  // (a) processing in one process
  const events0 = scanner.metrics().events;
  const t0 = process.hrtime.bigint();
  await scanner.ingestFrames(frames);
  await scanner.drained(30_000);
  const secsA = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = scanner.metrics();
  const eventsA = m.events - events0;
  const procRate = Math.round(eventsA / secsA);
  console.log(
    `(a) processors + books + publish: ${eventsA.toLocaleString()} venue events in ${secsA.toFixed(2)} s = ${procRate.toLocaleString()} events/s ` +
      `(${Math.round(levelUpdates / secsA).toLocaleString()} per-token updates/s) ` +
      `(${m.published_prices.toLocaleString()} price and ${m.published_books.toLocaleString()} book messages published, ${m.invalid_frames} invalid frames)`,
  );

  // (b) replay at max speed from a recording on disk
  const recDir = join(tmp.dir, 'recordings', 'bench');
  await writeRecording(recDir, frames.map((f) => ({ kind: 'raw', ...f })));
  const info = (await RecordingReader.open(recDir)).info();
  req = new BusRequester({ endpoint: eps['scanner.rep'], src: 'bench', timeoutMs: 10_000 });
  // BENCH_SCANNER_PROFILE=<file> writes a CPU profile of the replay phase alone.
  const profiler = process.env.BENCH_SCANNER_PROFILE ? new Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  const events1 = scanner.metrics().events;
  const t1 = process.hrtime.bigint();
  await req.call('replay.start', { recording: 'bench', speed: 0 });
  let st;
  do {
    await new Promise((r) => setTimeout(r, 50));
    st = await req.call('replay.status', {});
  } while (st.state === 'running');
  const secsB = Number(process.hrtime.bigint() - t1) / 1e9;
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(process.env.BENCH_SCANNER_PROFILE, JSON.stringify(profile));
    profiler.disconnect();
  }
  if (st.state !== 'done') throw new Error(`replay ended ${st.state}: ${st.error ?? ''}`);
  const eventsB = scanner.metrics().events - events1;
  const replayRate = Math.round(eventsB / secsB);
  console.log(
    `(b) replay at max speed: ${info.records.toLocaleString()} records (${eventsB.toLocaleString()} venue events) in ${secsB.toFixed(2)} s = ` +
      `${replayRate.toLocaleString()} events/s (${Math.round(levelUpdates / secsB).toLocaleString()} per-token updates/s)`,
  );

  // (c) size against JSON lines: raw frames plus the bus events a scanner publishes for them
  const recs = syntheticRecording({ ...gen, events: Math.min(EVENTS, 100_000) });
  const sizeDir = join(tmp.dir, 'recordings', 'size');
  const w = await writeRecording(sizeDir, recs);
  const jsonl = jsonLinesSize(recs);
  const rawOnly = recs.filter((r) => r.kind === 'raw');
  const rawDir = join(tmp.dir, 'recordings', 'size-raw');
  const wRaw = await writeRecording(rawDir, rawOnly);
  const ratio = w.bytes / jsonl;
  const ratioRaw = wRaw.bytes / jsonLinesSize(rawOnly);
  console.log(
    `(c) recording of ${recs.length.toLocaleString()} records: ${(w.bytes / 1e6).toFixed(2)} MB vs ${(jsonl / 1e6).toFixed(2)} MB as JSON lines = ` +
      `1/${(1 / ratio).toFixed(1)} (raw venue frames alone: 1/${(1 / ratioRaw).toFixed(1)}); ${(w.bytes / recs.length).toFixed(1)} bytes per record`,
  );
  console.log(`targets: processing >= 50,000 events/s, replay >= 100,000 events/s, size <= 1/10 of JSON lines`);
  console.log(
    JSON.stringify({
      bench: 'scanner',
      process_events_per_s: procRate,
      replay_events_per_s: replayRate,
      replay_records_per_s: Math.round(info.records / secsB),
      process_updates_per_s: Math.round(levelUpdates / secsA),
      replay_updates_per_s: Math.round(levelUpdates / secsB),
      size_ratio: Number(ratio.toFixed(4)),
      size_ratio_raw: Number(ratioRaw.toFixed(4)),
      events: eventsA,
      subscriber_received: received,
      published: m.published_prices + m.published_books + m.trades,
    }),
  );
} finally {
  await req?.close();
  if (sub) {
    await new Promise((r) => setTimeout(r, 300));
    sub.postMessage('stop');
    await new Promise((r) => sub.once('exit', r));
  }
  await runner?.stop();
  tmp.cleanup();
  rmSync(tmp.dir, { recursive: true, force: true });
}
