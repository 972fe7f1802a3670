#!/usr/bin/env node
// Scanner benchmark, one process, on a generated recording of venue-like market-channel frames
// (current formats, random 40-hex hashes, both tokens of a market per price_change):
//   (a) processing: frames fed straight into the scanner's pipeline (processors + books + publish on
//       a real ZeroMQ PUB socket, one subscriber attached) — normalized venue events per second;
//   (b) replay at max speed: the same frames written as a recording, replayed through `replay.start`
//       over scanner.rep (read + decompress + the same pipeline) — events per second;
//   (c) size: the recording (raw frames + the bus events a scanner publishes for them) against the
//       same records as JSON lines;
//   (d) where an event's time goes on one thread, stage by stage (read, processors, books, msgpack
//       encode, ZeroMQ send), and the single-thread ceiling those stages set.
// Runs against the built dist (`pnpm bench:scanner` builds first). BENCH_SCANNER_EVENTS sets the
// stream length (default 300,000), BENCH_SCANNER_MARKETS the markets (default 100),
// BENCH_SCANNER_ROUNDS how often (a) and (b) run (default 3; the best run is reported),
// BENCH_SCANNER_SUBSCRIBE what the subscriber follows (default one market's tokens, as a strategy
// does; one more (a) and (b) then run with a subscriber on every price, book and trade message).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { BusPublisher, BusRequester, resolveEndpoints } from '@polybot/bus';
import { loadConfig, ServiceRunner } from '@polybot/core';
import { Codec } from '@polybot/protocol';
import { tempDataDir } from '@polybot/testkit';
import {
  BookKeeper,
  createScannerService,
  processMarketFrame,
  processMarketValue,
  RecordingReader,
  ScannerConfig,
  syntheticFrames,
  syntheticGammaFrame,
  writeRecording,
} from '@polybot/scanner';
import { processGammaFrame } from '../dist/processors/gamma.js';
import { jsonLinesSize, syntheticRecording } from '../dist/recording/index.js';

const EVENTS = Number(process.env.BENCH_SCANNER_EVENTS ?? 300_000);
const ROUNDS = Math.max(1, Number(process.env.BENCH_SCANNER_ROUNDS ?? 3));
const MARKETS = Number(process.env.BENCH_SCANNER_MARKETS ?? 100);
/**
 * What the subscriber of the main runs follows: `market` (default: both tokens of one market, as a
 * strategy subscribes), `all` (every price, book and trade message), or comma-separated prefixes.
 */
const SUBSCRIBE = (process.env.BENCH_SCANNER_SUBSCRIBE ?? 'market').split(',').filter(Boolean);
const ALL_TOPICS = ['price.', 'book.', 'trade.'];
const gen = { seed: 42, markets: MARKETS, events: EVENTS, ratePerSec: 5000 };
/** Clock ticks per second of /proc CPU times. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
/**
 * CPU time of this process's main thread (where the scanner runs), ms, from /proc: unlike wall
 * time it does not grow while other tenants of the machine hold the core. Null where /proc is absent.
 */
function mainThreadCpuMs() {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}
/**
 * CPU time (ms) of every thread of this process by id, with its name: the scanner's main thread,
 * the subscriber's worker, ZeroMQ's I/O threads and V8's helpers (GC, compiler) share two cores.
 */
function threadCpuMs() {
  const out = new Map();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ms: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK });
    }
  } catch {
    return null;
  }
  return out;
}
/** Per-event CPU (µs) between two threadCpuMs() readings, by role. */
function cpuByRole(before, after, events, subTid) {
  if (!before || !after) return null;
  const roles = { scanner: 0, subscriber: 0, zmq_io: 0, other: 0 };
  for (const [tid, a] of after) {
    const d = a.ms - (before.get(tid)?.ms ?? 0);
    const role = tid === process.pid ? 'scanner' : tid === subTid ? 'subscriber' : a.name.startsWith('ZMQbg') ? 'zmq_io' : 'other';
    roles[role] += (d * 1000) / events;
  }
  return Object.fromEntries(Object.entries(roles).map(([k, v]) => [k, Number(v.toFixed(1))]));
}
/** Events per pass in the stage breakdown (d). */
const STAGE_EVENTS = 100_000;

const tmp = tempDataDir('pbbench-scanner');
let runner;
let sub;
let req;
let stagePub;
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
  let subTid;
  sub = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     try { parentPort.postMessage({ tid: Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()) }); } catch {}
     import('@polybot/bus').then(({ BusSubscriber }) => {
       let n = 0;
       const s = new BusSubscriber({ endpoints: [workerData.endpoint], topics: [], onMessage: () => void n++ });
       s.start();
       let topics = [];
       setInterval(() => parentPort.postMessage(n), 100);
       parentPort.on('message', async (m) => {
         if (m.topics) {
           s.unsubscribe(...topics);
           s.subscribe(...(topics = m.topics));
           return;
         }
         await s.close();
         process.exit(0);
       });
     });`,
    { eval: true, workerData: { endpoint: eps['prices.pub'] } },
  );
  sub.on('message', (n) => (typeof n === 'number' ? (received = n) : (subTid = n.tid)));
  await new Promise((r) => setTimeout(r, 500));

  // (a) and (b) run ROUNDS times each, alternating (a replay ends by clearing the scanner's books,
  // so each (a) starts from empty books as the first did). The best run is the figure: on a
  // shared machine other tenants only ever add time. The median is printed beside it.
  const recDir = join(tmp.dir, 'recordings', 'bench');
  await writeRecording(recDir, frames.map((f) => ({ kind: 'raw', ...f })));
  const info = (await RecordingReader.open(recDir)).info();
  req = new BusRequester({ endpoint: eps['scanner.rep'], src: 'bench', timeoutMs: 10_000 });
  /** Subscriber topics of the main runs: one market's tokens, as a strategy follows them, unless set. */
  const oneMarket = processGammaFrame(frames[0].data)[0].tokens.flatMap((t) => ['price.', 'book.', 'trade.'].map((r) => r + t.tokenId));
  const mainTopics = SUBSCRIBE[0] === 'market' ? oneMarket : SUBSCRIBE[0] === 'all' ? ALL_TOPICS : SUBSCRIBE;
  async function follow(topics) {
    sub.postMessage({ topics });
    // Subscriptions reach the PUB socket asynchronously.
    await new Promise((r) => setTimeout(r, 500));
  }
  let firstA;
  /** `rounds` runs of (a) then (b), with the subscriber on `label`'s topics. */
  async function runs(rounds, label) {
    const out = { a: [], b: [], cpuA: [], cpuB: [], rolesB: [], receivedB: [] };
    for (let round = 1; round <= rounds; round++) {
      // (a) processing in one process
      const m0 = scanner.metrics();
      const c0 = mainThreadCpuMs();
      const t0 = process.hrtime.bigint();
      await scanner.ingestFrames(frames);
      await scanner.drained(30_000);
      const secsA = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpuA = c0 === null ? null : mainThreadCpuMs() - c0;
      const m = scanner.metrics();
      const eventsA = m.events - m0.events;
      firstA ??= { events: eventsA, prices: m.published_prices - m0.published_prices, books: m.published_books - m0.published_books, trades: m.trades - m0.trades, invalid: m.invalid_frames - m0.invalid_frames };
      out.a.push(Math.round(eventsA / secsA));
      if (cpuA !== null) out.cpuA.push((cpuA * 1000) / eventsA);
      console.log(
        `(a) ${label} run ${round}/${rounds}, processors + books + publish: ${eventsA.toLocaleString()} venue events in ${secsA.toFixed(2)} s = ${out.a.at(-1).toLocaleString()} events/s ` +
          `(${Math.round(levelUpdates / secsA).toLocaleString()} per-token updates/s) ` +
          `(${(m.published_prices - m0.published_prices).toLocaleString()} price and ${(m.published_books - m0.published_books).toLocaleString()} book messages published, ${m.invalid_frames - m0.invalid_frames} invalid frames)` +
          (cpuA === null ? '' : `; scanner thread CPU ${((cpuA * 1000) / eventsA).toFixed(1)} µs per event`),
      );

      // (b) replay at max speed from a recording on disk.
      // BENCH_SCANNER_PROFILE=<file> writes a CPU profile of the first replay alone.
      const profiler = process.env.BENCH_SCANNER_PROFILE && round === 1 && label === 'main' ? new Session() : undefined;
      if (profiler) {
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.start');
      }
      const events1 = scanner.metrics().events;
      const received1 = received;
      const th1 = threadCpuMs();
      const c1 = mainThreadCpuMs();
      const t1 = process.hrtime.bigint();
      await req.call('replay.start', { recording: 'bench', speed: 0 });
      let st;
      do {
        await new Promise((r) => setTimeout(r, 50));
        st = await req.call('replay.status', {});
      } while (st.state === 'running');
      // Sent, not just processed (the publisher hands messages over as they are published).
      await scanner.drained(30_000);
      const secsB = Number(process.hrtime.bigint() - t1) / 1e9;
      const cpuB = c1 === null ? null : mainThreadCpuMs() - c1;
      const th2 = threadCpuMs();
      if (profiler) {
        const { profile } = await profiler.post('Profiler.stop');
        writeFileSync(process.env.BENCH_SCANNER_PROFILE, JSON.stringify(profile));
        profiler.disconnect();
      }
      if (st.state !== 'done') throw new Error(`replay ended ${st.state}: ${st.error ?? ''}`);
      const eventsB = scanner.metrics().events - events1;
      if (eventsB !== eventsA) throw new Error(`replay applied ${eventsB} venue events, processing ${eventsA}`);
      out.b.push(Math.round(eventsB / secsB));
      if (cpuB !== null) out.cpuB.push((cpuB * 1000) / eventsB);
      const roles = cpuByRole(th1, th2, eventsB, subTid);
      out.rolesB.push(roles);
      // The subscriber's count trails by up to its 100 ms report.
      await new Promise((r) => setTimeout(r, 250));
      out.receivedB.push(received - received1);
      console.log(
        `(b) ${label} run ${round}/${rounds}, replay at max speed: ${info.records.toLocaleString()} records (${eventsB.toLocaleString()} venue events) in ${secsB.toFixed(2)} s = ` +
          `${out.b.at(-1).toLocaleString()} events/s (${Math.round(levelUpdates / secsB).toLocaleString()} per-token updates/s), subscriber received ${out.receivedB.at(-1).toLocaleString()} messages` +
          (cpuB === null ? '' : `; scanner thread CPU ${((cpuB * 1000) / eventsB).toFixed(1)} µs per event`) +
          (roles ? ` (CPU µs per event by thread: ${Object.entries(roles).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''),
      );
    }
    return out;
  }
  const best = (xs) => Math.max(...xs);
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const sum = (roles) => Object.values(roles).reduce((x, y) => x + y, 0);
  /** Prints a configuration's summary lines and returns its figures. */
  function summarize(r, what) {
    const procRate = best(r.a);
    const replayRate = best(r.b);
    const roles = r.rolesB[r.b.indexOf(replayRate)] ?? null;
    console.log(
      `${what}: (a) processing best ${procRate.toLocaleString()} events/s, median ${median(r.a).toLocaleString()}; ` +
        `(b) replay best ${replayRate.toLocaleString()} events/s, median ${median(r.b).toLocaleString()} (${r.a.length} runs each)`,
    );
    if (roles) {
      console.log(
        `  CPU per venue event over the whole process in the best replay run (µs): ${Object.entries(roles).map(([k, v]) => `${k} ${v}`).join(', ')} = ${sum(roles).toFixed(1)}: ` +
          `two cores doing nothing else would replay at most ${Math.round(2e6 / sum(roles)).toLocaleString()} events/s`,
      );
    }
    return { procRate, replayRate, roles };
  }

  await follow(mainTopics);
  const main = await runs(ROUNDS, 'main');
  // The same with a subscriber taking every message: on two cores its receiving competes with the scanner.
  const everything = mainTopics === ALL_TOPICS ? undefined : (await follow(ALL_TOPICS), await runs(1, 'all-topics'));
  const mainSum = summarize(main, `subscriber on ${mainTopics === oneMarket ? "one market's topics" : mainTopics.join(',')}`);
  const allSum = everything ? summarize(everything, 'subscriber on every price, book and trade message') : undefined;
  const procRate = mainSum.procRate;
  const replayRate = mainSum.replayRate;
  const cpuPerEventA = main.cpuA.length ? Math.min(...main.cpuA) : null;
  const cpuPerEventB = main.cpuB.length ? Math.min(...main.cpuB) : null;
  if (cpuPerEventB !== null) {
    console.log(
      `scanner thread CPU per venue event (least of the runs): (a) ${cpuPerEventA.toFixed(1)} µs, (b) ${cpuPerEventB.toFixed(1)} µs — ` +
        `with a core to itself the thread would do ${Math.round(1e6 / cpuPerEventA).toLocaleString()} and ${Math.round(1e6 / cpuPerEventB).toLocaleString()} events/s`,
    );
  }

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
  // (d) stage by stage on this thread: passes over the recording that each add one stage (read,
  // which for template frames includes building their JSON values; + processors, with JSON.parse
  // for the frames read as text; + books; + msgpack encode; + ZeroMQ send on a PUB socket of its
  // own with nobody attached), streaming as a replay does. A stage's cost is its pass minus the one
  // before; their sum is one event's cost and 1e6 / sum the one-thread ceiling.
  stagePub = new BusPublisher({ endpoint: `ipc://${join(tmp.dir, 'stage.sock')}`, mode: 'bind', src: 'stage', validate: false });
  await stagePub.start();
  const tokens = new Map();
  for (const mk of processGammaFrame(frames[0].data)) for (const tk of mk.tokens) tokens.set(tk.tokenId, { conditionId: mk.conditionId, outcome: tk.outcome, tickSize: mk.tickSize });
  const codec = new Codec();
  const env = { v: 1, src: 'stage', seq: 0, ts: 0 };
  const publishers = [
    () => true,
    (topic, msg) => {
      env.seq++;
      return codec.encodeWith(topic, msg, env).length > 0;
    },
    (topic, msg) => stagePub.publish(topic, msg),
  ];
  // Price and depth messages are written straight from the books, as the scanner does.
  const writers = [
    () => true,
    (topic, write) => {
      env.seq++;
      return codec.encodeWritten(topic, write, env)[1].length > 0;
    },
    (topic, write) => stagePub.publishWritten(topic, write),
  ];
  async function pass(level) {
    const keeper = new BookKeeper({
      publish: publishers[Math.max(0, level - 2)],
      publishWritten: writers[Math.max(0, level - 2)],
      requestSnapshot() {},
      bookIntervalMs: config.POLYBOT_SCANNER_BOOK_INTERVAL_MS,
      depth: config.POLYBOT_SCANNER_BOOK_DEPTH,
      log: { warn() {}, info() {} },
    });
    keeper.setTokens(tokens);
    const reader = await RecordingReader.open(recDir);
    let n = 0;
    const t = process.hrtime.bigint();
    for (const r of reader.records({ parsed: true })) {
      if (r.kind !== 'raw' || r.source !== 'market') continue;
      if (++n > STAGE_EVENTS) break;
      if (level >= 1) {
        const res = r.parsed !== undefined ? processMarketValue(r.parsed, r.recvTs) : processMarketFrame(r.data, r.recvTs);
        if (level >= 2) {
          for (const ev of res.events) keeper.apply(ev);
          keeper.flush(r.recvTs);
        }
      }
      // Let the send queue drain as a replay's yields do.
      if (level === 4 && n % 2000 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    if (level === 4) await stagePub.drain(60_000);
    return Number(process.hrtime.bigint() - t) / 1e3 / Math.min(n, STAGE_EVENTS);
  }
  // A warm-up pass, then each level twice (best of two: the machine's noise only adds time).
  await pass(4);
  const names = ['read', 'processors', 'books', 'encode', 'send'];
  const cum = names.map(() => Infinity);
  for (let round = 0; round < 2; round++) for (let level = 0; level < names.length; level++) cum[level] = Math.min(cum[level], await pass(level));
  // Each pass includes the ones before, so a noisy later pass cannot fall below an earlier one.
  for (let level = 1; level < names.length; level++) cum[level] = Math.max(cum[level], cum[level - 1]);
  const stages = Object.fromEntries(names.map((k, i) => [k, Math.max(0, cum[i] - (i ? cum[i - 1] : 0))]));
  const total = cum[names.length - 1];
  const fmt = (x) => x.toFixed(1);
  console.log(
    `(d) one event on one thread (µs): read ${fmt(stages.read)}, processors ${fmt(stages.processors)}, ` +
      `books ${fmt(stages.books)}, encode ${fmt(stages.encode)}, send ${fmt(stages.send)} = ${fmt(total)} µs: ` +
      `at most ${Math.round(1e6 / total).toLocaleString()} events/s replayed on one thread`,
  );
  const published = scanner.metrics();
  console.log(`targets: processing >= 50,000 events/s, replay >= 100,000 events/s, size <= 1/10 of JSON lines`);
  console.log(
    JSON.stringify({
      bench: 'scanner',
      process_events_per_s: procRate,
      replay_events_per_s: replayRate,
      process_events_per_s_median: median(main.a),
      replay_events_per_s_median: median(main.b),
      process_runs: main.a,
      replay_runs: main.b,
      subscribed: mainTopics === oneMarket ? 'one market' : mainTopics,
      process_events_per_s_all_subscribed: allSum?.procRate ?? procRate,
      replay_events_per_s_all_subscribed: allSum?.replayRate ?? replayRate,
      process_cpu_us_per_event: cpuPerEventA === null ? null : Number(cpuPerEventA.toFixed(2)),
      replay_cpu_us_per_event: cpuPerEventB === null ? null : Number(cpuPerEventB.toFixed(2)),
      replay_cpu_us_by_thread: mainSum.roles,
      replay_cpu_us_by_thread_all_subscribed: allSum?.roles ?? mainSum.roles,
      replay_records_per_s: Math.round((replayRate * info.records) / firstA.events),
      process_updates_per_s: Math.round((procRate * levelUpdates) / firstA.events),
      replay_updates_per_s: Math.round((replayRate * levelUpdates) / firstA.events),
      size_ratio: Number(ratio.toFixed(4)),
      size_ratio_raw: Number(ratioRaw.toFixed(4)),
      events: firstA.events,
      published_per_pass: firstA.prices + firstA.books + firstA.trades,
      published_total: published.published_prices + published.published_books + published.trades,
      subscriber_received_per_replay: main.receivedB[0],
      subscriber_received_per_replay_all_subscribed: everything?.receivedB[0] ?? main.receivedB[0],
      stage_us: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Number(v.toFixed(2))])),
      single_thread_ceiling_events_per_s: Math.round(1e6 / total),
    }),
  );
} finally {
  await req?.close();
  await stagePub?.close();
  if (sub) {
    await new Promise((r) => setTimeout(r, 300));
    sub.postMessage('stop');
    await new Promise((r) => sub.once('exit', r));
  }
  await runner?.stop();
  tmp.cleanup();
  rmSync(tmp.dir, { recursive: true, force: true });
}
