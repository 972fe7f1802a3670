#!/usr/bin/env node
// Round-start benchmark (`pnpm bench:rounds`): how late does `round.started` reach a bus subscriber
// after its window opens?
//   - one `node services/sim/dist/main.js` child on a temp data dir and a free port, with up/down rounds
//     of BENCH_ROUNDS_SECONDS (60) for BTC, ETH, SOL and XRP (its default makers and traders keep running);
//   - the round watchers in-process (services/scanner/dist/rounds.js), looking the rounds up on the sim's
//     Gamma and publishing on a real ZeroMQ BusPublisher (ipc, temp dir);
//   - a BusSubscriber on `round.` measuring, for every `round.started` of a window that opened after the
//     watchers started, arrival time − window start; until BENCH_ROUNDS_MIN (20) starts were seen.
// Needs the built dist of the scanner, bus and sim (`npx tsc -b services/scanner services/sim`).
// The child is stopped by its pid at the end, whatever happens. Target: p99 < 100 ms.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BusPublisher, BusSubscriber } from '@polybot/bus';
import { freePort, startChild } from '../../../scripts/bench-lib.mjs';

const ROUND_SECONDS = Number(process.env.BENCH_ROUNDS_SECONDS ?? 60);
const MIN_ROUNDS = Number(process.env.BENCH_ROUNDS_MIN ?? 20);
const ASSETS = (process.env.BENCH_ROUNDS_ASSETS ?? 'BTC,ETH,SOL,XRP').split(',').map((a) => a.trim().toUpperCase()).filter(Boolean);
const TARGET_P99_MS = 100;

const here = dirname(fileURLToPath(import.meta.url));
const simMain = resolve(here, '../../sim/dist/main.js');
const roundsJs = resolve(here, '../dist/rounds.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank quantile: with 20 samples p99 is the largest, as it should be. */
function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
const r2 = (x) => Math.round(x * 100) / 100;

async function waitReady(base, child, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`simulator exited early (code ${child.exitCode})`);
    try {
      const res = await fetch(`${base}/ok`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error('simulator did not answer /ok in time');
}

async function main() {
  for (const f of [simMain, roundsJs]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: build first (npx tsc -b services/scanner services/sim)`);
  }
  if (!Number.isInteger(ROUND_SECONDS) || ROUND_SECONDS < 10) throw new Error('BENCH_ROUNDS_SECONDS must be an integer ≥ 10 (the simulator minimum)');
  const { createRoundWatchers, createGammaRoundLookup } = await import(pathToFileURL(roundsJs).href);

  const dataDir = mkdtempSync(join(tmpdir(), 'pb-bench-rounds-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // Registered first, so an interrupted run also removes its data dir.
  const cleanupOnSignal = () => rmSync(dataDir, { recursive: true, force: true });
  process.once('SIGINT', cleanupOnSignal);
  process.once('SIGTERM', cleanupOnSignal);
  const { child, tail, stop: stopChild } = startChild(simMain, {
    ...process.env,
    POLYBOT_DATA_DIR: dataDir,
    POLYBOT_HOST: '127.0.0.1',
    POLYBOT_SIM_PORT: String(port),
    POLYBOT_SIM_ROUND_SECONDS: String(ROUND_SECONDS),
    POLYBOT_SIM_ROUND_ASSETS: ASSETS.join(','),
    POLYBOT_SIM_ROUNDS_AHEAD: '2',
    POLYBOT_SIM_PERSIST: 'false',
    POLYBOT_LOG_LEVEL: 'warn',
  });

  let pub, sub, watchers;
  const delays = [];
  const publishDelays = [];
  const trackLeads = [];
  let ending = 0;
  let resolved = 0;
  try {
    await waitReady(base, child, 30_000);
    const endpoint = `ipc://${join(dataDir, 'ipc', 'rounds.pub')}`;
    pub = new BusPublisher({ endpoint, mode: 'bind', src: 'bench-rounds' });
    await pub.start();
    let t0 = Infinity;
    let done;
    const enough = new Promise((r) => (done = r));
    sub = new BusSubscriber({
      endpoints: [endpoint],
      topics: ['round.'],
      onMessage: (msg) => {
        const at = Date.now();
        if (msg.type !== 'round') return;
        if (msg.event === 'ending') ending++;
        if (msg.event === 'resolved') resolved++;
        if (msg.event !== 'started' || msg.start_ts < t0 || delays.length >= MIN_ROUNDS) return;
        const d = at - msg.start_ts;
        delays.push(d);
        publishDelays.push(msg.ts - msg.start_ts);
        console.log(`round.started ${msg.asset.padEnd(4)} ${msg.slug}: arrived ${d} ms after the window start (published after ${msg.ts - msg.start_ts} ms) [${delays.length}/${MIN_ROUNDS}]`);
        if (delays.length >= MIN_ROUNDS) done();
      },
    });
    sub.start();
    // ZeroMQ subscriptions take a moment to reach the publisher.
    await sleep(500);

    const L = ROUND_SECONDS * 1000;
    watchers = createRoundWatchers(
      {
        assets: ASSETS,
        roundSeconds: ROUND_SECONDS,
        prefetchMs: Math.min(30_000, Math.floor(L / 3)),
        endingLeadMs: Math.min(60_000, Math.floor(L / 6)),
        resolvePollMs: 2_000,
        // Only windows opened on schedule are measured; a window already running is not a start.
        includeCurrent: false,
      },
      {
        gamma: createGammaRoundLookup(base, { timeoutMs: 10_000 }),
        publish: (topic, msg) => pub.publish(topic, msg),
        track: (m) => {
          const start = Number(m.slug.split('-').pop()) * 1000;
          trackLeads.push(start - Date.now());
        },
        untrack: () => {},
      },
    );
    t0 = Date.now();
    watchers.start();
    const firstStart = Math.ceil(t0 / L) * L;
    const windows = Math.ceil(MIN_ROUNDS / ASSETS.length);
    console.log(
      `simulator on :${port} with ${ROUND_SECONDS}-s rounds for ${ASSETS.join(', ')}; first window opens in ${((firstStart - t0) / 1000).toFixed(1)} s; ` +
        `waiting for ${MIN_ROUNDS} round starts (~${windows} windows, ~${Math.ceil((firstStart - t0 + (windows - 1) * L) / 1000)} s)`,
    );
    const deadlineMs = firstStart - t0 + (windows + 2) * L + 30_000;
    const timedOut = await Promise.race([enough.then(() => false), sleep(deadlineMs).then(() => true)]);
    if (timedOut) throw new Error(`only ${delays.length} of ${MIN_ROUNDS} round starts arrived within ${Math.round(deadlineMs / 1000)} s: ${JSON.stringify(watchers.stats())}`);

    const stats = watchers.stats();
    const sum = (k) => Object.values(stats).reduce((a, s) => a + s[k], 0);
    const sorted = [...delays].sort((a, b) => a - b);
    const pubSorted = [...publishDelays].sort((a, b) => a - b);
    const p50 = quantile(sorted, 0.5);
    const p99 = quantile(sorted, 0.99);
    const max = sorted[sorted.length - 1];
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    const minLead = trackLeads.length ? Math.min(...trackLeads) : NaN;
    console.log('');
    console.log(
      `${delays.length} round starts (${ASSETS.length} assets, ${ROUND_SECONDS}-s rounds) reached a ZeroMQ subscriber ` +
        `p50 ${p50} ms, p99 ${p99} ms, max ${max} ms, mean ${r2(mean)} ms after their window opened ` +
        `(publish side alone: p50 ${quantile(pubSorted, 0.5)} ms, max ${pubSorted[pubSorted.length - 1]} ms) — ` +
        `${p99 < TARGET_P99_MS ? 'within' : 'OVER'} the ${TARGET_P99_MS} ms p99 target.`,
    );
    console.log(
      `Markets were looked up and tracked ahead of their window (shortest lead ${Number.isFinite(minLead) ? (minLead / 1000).toFixed(1) : 'n/a'} s); ` +
        `${sum('lookups')} Gamma lookups, ${sum('lookup_errors')} failed, ${sum('late_starts')} late starts; ` +
        `meanwhile ${ending} round.ending and ${resolved} round.resolved arrived. ` +
        `Machine: ${availableParallelism()} cores, load ${loadavg()[0].toFixed(2)}.`,
    );
    console.log(JSON.stringify({ bench: 'rounds', rounds: delays.length, p50_ms: p50, p99_ms: p99, max_ms: max, mean_ms: r2(mean), round_seconds: ROUND_SECONDS }));
  } catch (err) {
    if (tail.length) console.error(`simulator output (last lines):\n${tail.join('\n')}`);
    throw err;
  } finally {
    await watchers?.stop().catch(() => {});
    await sub?.close().catch(() => {});
    await pub?.close(0).catch(() => {});
    await stopChild();
    process.off('SIGINT', cleanupOnSignal);
    process.off('SIGTERM', cleanupOnSignal);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench rounds failed: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
