#!/usr/bin/env node
// Bus benchmark: two processes over ipc:// in a temp dir, through the real wrappers.
//   - throughput: 200,000 price messages BusPublisher (child) → BusSubscriber (this process), each
//     one decoded and validated against its schema, as every service does;
//   - latency: 20,000 price messages paced at 10,000/s (a blast measures queueing, not the hop);
//   - REQ/REP: 5,000 sequential `ping` calls BusRequester (this process) ↔ BusReplier (child).
// Timestamps use process.hrtime (CLOCK_MONOTONIC, shared by all processes of the machine).
// Runs against the built dist of @polybot/bus and @polybot/protocol (`pnpm bench:bus` builds first).
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BusPublisher, BusReplier, BusRequester, BusSubscriber } from '@polybot/bus';
import { topics } from '@polybot/protocol';

const N_BLAST = Number(process.env.BENCH_BUS_MSGS ?? 200_000);
const N_PACED = Number(process.env.BENCH_BUS_PACED ?? 20_000);
const PACED_RATE = 10_000;
const N_RPC = Number(process.env.BENCH_BUS_RPC ?? 5_000);
const MARKET = `0x${'ab'.repeat(32)}`;

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function priceMsg(token, i) {
  const bid = 0.01 * (1 + (i % 97));
  return {
    type: 'price',
    token_id: token,
    market: MARKET,
    outcome: 'Yes',
    bid: Math.round(bid * 100) / 100,
    ask: Math.round((bid + 0.01) * 100) / 100,
    mid: Math.round((bid + 0.005) * 1000) / 1000,
    bid_size: 100 + (i % 500),
    ask_size: 120 + (i % 300),
    venue_ts: nowMs(),
  };
}

// ---------------------------------------------------------------- child: publisher + replier
async function child(dir) {
  const pub = new BusPublisher({
    endpoint: `ipc://${join(dir, 'prices')}`,
    mode: 'bind',
    src: 'bench-pub',
    // Large enough that the blast measures delivery, not drops at the high-water mark.
    sendHighWaterMark: 1_000_000,
  });
  const rep = new BusReplier({ endpoint: `ipc://${join(dir, 'rep')}`, src: 'bench-rep', handlers: {} });
  await pub.start();
  await rep.start();
  let warming = true;
  process.on('message', async (m) => {
    if (m.cmd === 'blast') {
      warming = false;
      const t0 = nowMs();
      for (let i = 0; i < N_BLAST; i++) {
        pub.publish(topics.price('blast'), priceMsg('blast', i));
        // Let the send queue drain instead of holding 200k encoded frames at once.
        if (pub.stats.queued > 20_000) while (pub.stats.queued > 5_000) await tick();
      }
      while (pub.stats.queued > 0) await tick();
      process.send({ evt: 'blasted', t0, t1: nowMs(), stats: pub.stats });
    } else if (m.cmd === 'paced') {
      const t0 = nowMs();
      let i = 0;
      while (i < N_PACED) {
        const due = Math.min(N_PACED, Math.floor(((nowMs() - t0) * PACED_RATE) / 1000) + 1);
        for (; i < due; i++) pub.publish(topics.price('paced'), priceMsg('paced', i));
        // setImmediate, not a 1 ms timer: a timer tick releases ~10 messages at once and the
        // figure would measure that burst's queueing instead of one hop.
        await tick();
      }
      while (pub.stats.queued > 0) await tick();
      process.send({ evt: 'paced', stats: pub.stats });
    } else if (m.cmd === 'exit') {
      await pub.close(1000);
      await rep.close?.();
      process.exit(0);
    }
  });
  // Slow joiner: publish until the subscriber has seen something (zguide ch. 1).
  process.send({ evt: 'ready' });
  for (let i = 0; warming; i++) {
    pub.publish(topics.price('warm'), priceMsg('warm', i));
    await sleep(20);
  }
}

// ---------------------------------------------------------------- parent: subscriber + requester
function pct(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'pbb-'));
  const kid = fork(fileURLToPath(import.meta.url), ['child', dir], { stdio: 'inherit' });
  const events = [];
  const waiters = [];
  kid.on('message', (m) => {
    events.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const waitEvt = async (evt, timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = events.findIndex((e) => e.evt === evt);
      if (i >= 0) return events.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`bench child did not report ${evt}`);
      await new Promise((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  const watchdog = setTimeout(() => {
    console.error('bus bench: no result after 5 minutes; giving up');
    kid.kill('SIGKILL');
    process.exit(1);
  }, 300_000);
  watchdog.unref();

  let warm = 0;
  let blast = 0;
  let blastLast = 0;
  const lat = [];
  const sub = new BusSubscriber({
    endpoints: [`ipc://${join(dir, 'prices')}`],
    topics: ['price.'],
    receiveHighWaterMark: 1_000_000,
    onMessage: (msg) => {
      const t = nowMs();
      if (msg.token_id === 'blast') {
        blast++;
        blastLast = t;
      } else if (msg.token_id === 'paced') {
        lat.push((t - msg.venue_ts) * 1000);
      } else warm++;
    },
  });
  await waitEvt('ready');
  sub.start();
  const joinDeadline = Date.now() + 30_000;
  while (warm === 0) {
    if (Date.now() > joinDeadline) throw new Error('subscriber never received the warm-up messages');
    await sleep(10);
  }
  const invalidBefore = sub.stats.invalid;

  // 1. Throughput
  kid.send({ cmd: 'blast' });
  const blasted = await waitEvt('blasted');
  const settle = Date.now() + 10_000;
  let seen = -1;
  while (blast < N_BLAST && Date.now() < settle) {
    if (blast === seen) await sleep(200);
    seen = blast;
    await sleep(50);
  }
  const msgsPerS = blast / ((blastLast - blasted.t0) / 1000);
  const pubRate = N_BLAST / ((blasted.t1 - blasted.t0) / 1000);

  // 2. Latency, paced
  kid.send({ cmd: 'paced' });
  await waitEvt('paced');
  const latDeadline = Date.now() + 10_000;
  while (lat.length < N_PACED && Date.now() < latDeadline) await sleep(20);
  lat.sort((a, b) => a - b);

  // 3. REQ/REP
  const req = new BusRequester({ endpoint: `ipc://${join(dir, 'rep')}`, src: 'bench-req', timeoutMs: 5000 });
  for (let i = 0; i < 200; i++) await req.request('ping', {});
  const rtt = [];
  const r0 = nowMs();
  for (let i = 0; i < N_RPC; i++) {
    const t = nowMs();
    await req.request('ping', {});
    rtt.push((nowMs() - t) * 1000);
  }
  const rpcPerS = N_RPC / ((nowMs() - r0) / 1000);
  rtt.sort((a, b) => a - b);

  kid.send({ cmd: 'exit' });
  await new Promise((r) => kid.once('exit', r));
  await req.close();
  const subStats = sub.stats;
  await sub.close();
  rmSync(dir, { recursive: true, force: true });

  const r = (x) => Math.round(x);
  console.log('bus benchmark (ipc, two processes, BusPublisher → BusSubscriber with decode + schema validation)');
  console.log(
    `  throughput: ${blast.toLocaleString('en')} of ${N_BLAST.toLocaleString('en')} price messages in ` +
      `${((blastLast - blasted.t0) / 1000).toFixed(2)} s = ${r(msgsPerS).toLocaleString('en')} msg/s delivered ` +
      `(publisher enqueued ${r(pubRate).toLocaleString('en')} msg/s; ${blasted.stats.dropped} dropped at the publisher, ` +
      `${subStats.gaps} lost by sequence check, ${subStats.invalid - invalidBefore} invalid)`,
  );
  console.log(
    `  latency at ${PACED_RATE.toLocaleString('en')} msg/s (${lat.length.toLocaleString('en')} messages): ` +
      `p50 ${r(pct(lat, 50))} µs, p90 ${r(pct(lat, 90))} µs, p99 ${r(pct(lat, 99))} µs, max ${r(lat[lat.length - 1] ?? 0)} µs`,
  );
  console.log(
    `  REQ/REP ping: ${N_RPC.toLocaleString('en')} sequential calls, ${r(rpcPerS).toLocaleString('en')} calls/s, ` +
      `round trip p50 ${r(pct(rtt, 50))} µs, p99 ${r(pct(rtt, 99))} µs`,
  );
  console.log(
    JSON.stringify({
      bench: 'bus',
      msgs_per_s: r(msgsPerS),
      p50_us: r(pct(lat, 50)),
      p99_us: r(pct(lat, 99)),
      rpc_per_s: r(rpcPerS),
      rpc_p50_us: r(pct(rtt, 50)),
      rpc_p99_us: r(pct(rtt, 99)),
      delivered: blast,
      sent: N_BLAST,
    }),
  );
  if (blast < N_BLAST) process.exitCode = 1;
}

if (process.argv[2] === 'child') {
  await child(process.argv[3]);
} else {
  await main();
}
