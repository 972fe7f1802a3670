#!/usr/bin/env node
// Simulator benchmark: one `node services/sim/dist/main.js` child on a temp data dir and a free port,
// with a maker event rate in the thousands (2,000/s; the live default is 20) and venue auth on.
//   (a) market data: 50 WebSocket clients on /ws/market, each subscribed to every token; counts the
//       market-data events they receive (an array frame counts its elements) over ~10 s;
//   (b) signed orders: an API key made with L1 auth (createOrDeriveApiKey), N orders pre-signed (EIP-712
//       V2 GTC BUYs priced through the ask, which match; BENCH_SIM_CROSS_SHARE < 1 mixes in post-only
//       BUYs far below, which rest), then
//       posted with L2 (HMAC) headers over keep-alive HTTP, 16 in flight; orders/s accepted and matched,
//       request latency p50/p99.
// Runs against the built dist of @polybot/polymarket and the sim (`pnpm bench:sim` builds first).
// The child is stopped by its pid at the end, whatever happens. A harsher venue for comparison:
// BENCH_SIM_EVENT_RATE=6000 (measured here: ~1,000 orders/s with ~120,000 market-data events/s).
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { buildL2Headers, buildSignedOrder, createOrDeriveApiKey } from '@polybot/polymarket';
import { Wallet } from 'ethers';
import { cpuSecondsOf, freePort, startChild } from '../../../scripts/bench-lib.mjs';
import WebSocket from 'ws';

const EVENT_RATE = Number(process.env.BENCH_SIM_EVENT_RATE ?? 2000);
const MARKETS = Number(process.env.BENCH_SIM_MARKETS ?? 50);
const WS_CLIENTS = Number(process.env.BENCH_SIM_WS_CLIENTS ?? 50);
const WS_WARMUP_MS = 2_000;
const WS_MEASURE_MS = Number(process.env.BENCH_SIM_WS_MS ?? 10_000);
const N_ORDERS = Number(process.env.BENCH_SIM_ORDERS ?? 6_000);
const N_WARMUP_ORDERS = 200;
const IN_FLIGHT = Number(process.env.BENCH_SIM_IN_FLIGHT ?? 16);
/** Share of the orders that cross the spread (GTC BUY through the ask); the rest rest (post-only). */
const CROSS_SHARE = Number(process.env.BENCH_SIM_CROSS_SHARE ?? 1);
/** Wallets signing the orders, round robin (the first is the public Hardhat/Anvil test key #0). */
const N_WALLETS = Math.max(1, Number(process.env.BENCH_SIM_WALLETS ?? 2));
const SIGNERS = Math.max(1, Number(process.env.BENCH_SIM_SIGN_THREADS ?? 2));
// Publicly known test key (never funded anywhere real); further wallets are random.
const TEST_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const ORDER_SIZE = '5';

const here = dirname(fileURLToPath(import.meta.url));
const simMain = resolve(here, '../dist/main.js');
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const clientCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const cpuShare = (a, b, secs) => (a === undefined || b === undefined ? 'n/a' : `${Math.round(((b - a) / secs) * 100)}%`);

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const r1 = (x) => Math.round(x * 10) / 10;
const r2 = (x) => Math.round(x * 100) / 100;

async function getJson(base, path) {
  const res = await fetch(`${base}${path}`);
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return res.json();
}

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

// ---------------------------------------------------------------- (a) market-data fan-out
async function wsPhase(wsBase, tokens, simPid) {
  const counts = new Array(WS_CLIENTS).fill(0);
  let counting = false;
  let frames = 0;
  const sockets = await Promise.all(
    Array.from(
      { length: WS_CLIENTS },
      (_, i) =>
        new Promise((res, rej) => {
          const ws = new WebSocket(`${wsBase}/ws/market`, { perMessageDeflate: false });
          ws.on('open', () => {
            ws.send(JSON.stringify({ assets_ids: tokens, type: 'market' }));
            res(ws);
          });
          ws.on('error', rej);
          ws.on('message', (data, isBinary) => {
            if (!counting) return;
            frames++;
            const text = isBinary ? data.toString('utf8') : data.toString();
            if (text === 'PONG') return;
            // One event per object frame; an array frame (book snapshots) carries several.
            counts[i] += text.charCodeAt(0) === 91 /* [ */ ? JSON.parse(text).length : 1;
          });
        }),
    ),
  );
  const ping = setInterval(() => {
    for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send('PING');
  }, 5_000);
  await sleep(WS_WARMUP_MS);
  counting = true;
  const t0 = nowMs();
  const cpu0 = [cpuSecondsOf(simPid), clientCpuSeconds()];
  await sleep(WS_MEASURE_MS);
  counting = false;
  const secs = (nowMs() - t0) / 1000;
  const cpu = { sim: cpuShare(cpu0[0], cpuSecondsOf(simPid), secs), client: cpuShare(cpu0[1], clientCpuSeconds(), secs) };
  clearInterval(ping);
  const open = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise((res) => {
          if (ws.readyState === WebSocket.CLOSED) return res();
          ws.once('close', res);
          ws.close();
          setTimeout(() => {
            ws.terminate();
            res();
          }, 2_000).unref();
        }),
    ),
  );
  const total = counts.reduce((a, b) => a + b, 0);
  return { total, secs, frames, open, cpu, min: Math.min(...counts), max: Math.max(...counts) };
}

// ---------------------------------------------------------------- (b) signed orders
async function presign(wallets, specs) {
  // Split per wallet, then into SIGNERS chunks; workers sign in parallel (2 ms an order with ethers).
  const jobs = [];
  for (const [w, wallet] of wallets.entries()) {
    const mine = specs.filter((s) => s.wallet === w);
    const per = Math.ceil(mine.length / SIGNERS);
    for (let k = 0; k < SIGNERS; k++) {
      const part = mine.slice(k * per, (k + 1) * per);
      if (part.length > 0) jobs.push({ key: wallet.privateKey, specs: part });
    }
  }
  const running = new Set();
  const results = [];
  let next = 0;
  await new Promise((res, rej) => {
    const launch = () => {
      while (running.size < SIGNERS && next < jobs.length) {
        const job = jobs[next++];
        const w = new Worker(fileURLToPath(import.meta.url), { workerData: job });
        running.add(w);
        w.once('message', (out) => results.push(...out));
        w.once('error', rej);
        w.once('exit', (code) => {
          running.delete(w);
          if (code !== 0) return rej(new Error(`signing worker exited ${code}`));
          if (next >= jobs.length && running.size === 0) res();
          else launch();
        });
      }
    };
    launch();
  });
  // Back in spec order, interleaving wallets and kinds (workers return per-wallet chunks).
  return results.sort((a, b) => a.seq - b.seq);
}

function postOrder(agent, port, body, headers) {
  return new Promise((res, rej) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/order', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } },
      (resp) => {
        let text = '';
        resp.setEncoding('utf8');
        resp.on('data', (c) => (text += c));
        resp.on('end', () => res({ status: resp.statusCode, text }));
      },
    );
    req.on('error', rej);
    req.end(body);
  });
}

async function postAll(port, orders, accounts) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const lat = [];
  const stats = { accepted: 0, matched: 0, live: 0, rejected: 0, httpErrors: 0, errors: new Map() };
  let next = 0;
  const t0 = nowMs();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < orders.length) {
        const o = orders[next++];
        const acct = accounts[o.wallet];
        const headers = buildL2Headers(acct.creds, acct.address, { method: 'POST', requestPath: '/order', body: o.body });
        const s = nowMs();
        const { status, text } = await postOrder(agent, port, o.body, headers);
        lat.push(nowMs() - s);
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        if (status === 200 && json?.success) {
          stats.accepted++;
          if (json.status === 'matched') stats.matched++;
          else if (json.status === 'live') stats.live++;
        } else {
          if (status !== 200) stats.httpErrors++;
          else stats.rejected++;
          const why = `${status} ${json?.errorMsg ?? json?.error ?? text.slice(0, 80)}`;
          stats.errors.set(why, (stats.errors.get(why) ?? 0) + 1);
        }
      }
    }),
  );
  const secs = (nowMs() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { ...stats, secs, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), n: orders.length };
}

async function ordersPhase(base, port, markets, simPid) {
  const wallets = [new Wallet(TEST_KEY), ...Array.from({ length: N_WALLETS - 1 }, () => Wallet.createRandom())];
  // L1 auth: the first key of a wallet opens its account with the start balance.
  const accounts = [];
  for (const w of wallets) accounts.push({ address: w.address, creds: await createOrDeriveApiKey(base, w) });

  // Prices from the current books, on tokens quoted between 0.10 and 0.88: crossing BUYs go 10 ticks
  // through the best ask (they fill at the resting prices), resting ones post-only at 0.01.
  const books = [];
  for (const m of markets) {
    const book = await getJson(base, `/book?token_id=${m.token}`);
    const bestAsk = book.asks.length > 0 ? Number(book.asks[book.asks.length - 1].price) : undefined;
    if (bestAsk !== undefined && bestAsk >= 0.1 && bestAsk <= 0.88) books.push({ ...m, crossPrice: (Math.round(bestAsk * 100) + 10) / 100 });
  }
  if (books.length === 0) throw new Error('no book with asks to cross');
  const total = N_ORDERS + N_WARMUP_ORDERS;
  const specs = [];
  for (let i = 0; i < total; i++) {
    const b = books[i % books.length];
    const wallet = i % wallets.length;
    // Spread evenly: order i crosses when floor((i+1)·share) steps up.
    const postOnly = Math.floor((i + 1) * CROSS_SHARE) === Math.floor(i * CROSS_SHARE);
    specs.push({ seq: i, wallet, owner: accounts[wallet].creds.apiKey, tokenId: b.token, negRisk: b.negRisk, price: postOnly ? '0.01' : b.crossPrice.toFixed(2), postOnly, salt: 1 + i });
  }
  const tSign = nowMs();
  const signed = await presign(wallets, specs);
  const signSecs = (nowMs() - tSign) / 1000;

  const warm = await postAll(port, signed.slice(0, N_WARMUP_ORDERS), accounts);
  const cpu0 = [cpuSecondsOf(simPid), clientCpuSeconds()];
  const run = await postAll(port, signed.slice(N_WARMUP_ORDERS), accounts);
  run.cpu = { sim: cpuShare(cpu0[0], cpuSecondsOf(simPid), run.secs), client: cpuShare(cpu0[1], clientCpuSeconds(), run.secs) };
  return { run, warm, signSecs, books: books.length, wallets: wallets.length };
}

// ---------------------------------------------------------------- main
async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'polybot-bench-sim-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // BENCH_SIM_NODE_ARGS: extra node flags for the simulator, e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`.
  const nodeArgs = (process.env.BENCH_SIM_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const { child, tail, stop: stopChild } = startChild(
    simMain,
    {
      ...process.env,
      POLYBOT_DATA_DIR: dataDir,
      POLYBOT_HOST: '127.0.0.1',
      POLYBOT_SIM_PORT: String(port),
      POLYBOT_SIM_EVENT_RATE: String(EVENT_RATE),
      POLYBOT_SIM_MARKETS: String(MARKETS),
      POLYBOT_SIM_REQUIRE_AUTH: 'true',
      // Enough collateral that N crossing BUYs never run a wallet dry.
      POLYBOT_SIM_START_BALANCE: '10000000',
      POLYBOT_LOG_LEVEL: 'warn',
    },
    nodeArgs,
  );

  let ws, orders;
  try {
    await waitReady(base, child, 20_000);
    const gamma = await getJson(base, `/markets?limit=1000`);
    const markets = gamma.map((m) => ({ token: JSON.parse(m.clobTokenIds)[0], tokens: JSON.parse(m.clobTokenIds), negRisk: m.negRisk === true }));
    const tokens = markets.flatMap((m) => m.tokens);
    console.log(`machine: ${availableParallelism()} CPUs, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`simulator pid ${child.pid} on port ${port}: ${markets.length} markets (${tokens.length} tokens), maker events ${EVENT_RATE}/s, auth on`);

    ws = await wsPhase(`ws://127.0.0.1:${port}`, tokens, child.pid);
    console.log(
      `market WS: ${WS_CLIENTS} subscribers × ${tokens.length} tokens received ${ws.total} events in ${ws.secs.toFixed(1)} s = ${Math.round(ws.total / ws.secs)} events/s in all ` +
        `(${Math.round(ws.total / ws.secs / WS_CLIENTS)}/s each, fewest ${ws.min}, most ${ws.max}; ${ws.open}/${WS_CLIENTS} still open at the end; ` +
        `CPU of one core: simulator ${ws.cpu.sim}, bench client ${ws.cpu.client})`,
    );

    orders = await ordersPhase(base, port, markets, child.pid);
    const r = orders.run;
    console.log(`pre-signed ${N_ORDERS + N_WARMUP_ORDERS} EIP-712 orders for ${orders.wallets} wallets in ${orders.signSecs.toFixed(1)} s (${SIGNERS} threads), across ${orders.books} tokens; ${N_WARMUP_ORDERS} posted as warm-up`);
    console.log(
      `orders: ${r.n} signed POST /order with L2 headers, ${IN_FLIGHT} in flight, in ${r.secs.toFixed(2)} s: ${r.accepted} accepted (${r.matched} matched, ${r.live} resting), ` +
        `${r.rejected} rejected, ${r.httpErrors} HTTP errors = ${Math.round(r.accepted / r.secs)} accepted/s, ${Math.round(r.matched / r.secs)} matched/s; latency p50 ${r2(r.p50)} ms, p99 ${r2(r.p99)} ms; ` +
        `CPU of one core: simulator ${r.cpu.sim}, bench client ${r.cpu.client}`,
    );
    for (const [why, n] of [...r.errors, ...orders.warm.errors]) console.log(`  rejected ×${n}: ${why}`);
  } catch (err) {
    console.error(`bench sim failed: ${err?.stack ?? err}`);
    if (tail.length > 0) console.error(`simulator output (last lines):\n${tail.join('\n')}`);
    await stopChild();
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(1);
  }
  await stopChild();
  rmSync(dataDir, { recursive: true, force: true });
  const r = orders.run;
  console.log(
    JSON.stringify({
      bench: 'sim',
      ws_events_per_s: Math.round(ws.total / ws.secs),
      ws_subscribers: WS_CLIENTS,
      orders_per_s: r1(r.accepted / r.secs),
      orders_matched_per_s: r1(r.matched / r.secs),
      order_p50_ms: r2(r.p50),
      order_p99_ms: r2(r.p99),
    }),
  );
}

// ---------------------------------------------------------------- worker: pre-signing
if (!isMainThread) {
  const { key, specs } = workerData;
  const wallet = new Wallet(key);
  const out = specs.map((s) => {
    const order = buildSignedOrder({ wallet, tokenId: s.tokenId, side: 'BUY', price: s.price, size: ORDER_SIZE, orderType: 'GTC', tickSize: '0.01', negRisk: s.negRisk, salt: s.salt });
    return { seq: s.seq, body: JSON.stringify({ order, owner: s.owner, orderType: 'GTC', ...(s.postOnly ? { postOnly: true } : {}) }), wallet: s.wallet, cross: !s.postOnly };
  });
  parentPort.postMessage(out);
} else {
  await main();
}
