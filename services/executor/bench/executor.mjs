#!/usr/bin/env node
// Executor benchmark (`pnpm bench:executor`), against the built dist of the services and packages.
//   (1) signing throughput, in this process, nothing else running: orders built and EIP-712 (CTF
//       Exchange V2) signed per second by our `buildSignedOrder` (ethers v6 Wallet) and by the official
//       @polymarket/clob-client-v2 order builder (`OrderBuilder.buildOrder`, what `ClobClient.createOrder`
//       ends in, with an ethers v5 Wallet as in services/sim/test/conformance.test.ts), same key
//       (the public Hardhat/Anvil test key #0), same fields (token, side, price, size, tick, neg risk),
//       in alternating rounds. A sample is checked: with the official client's salt and timestamp pinned
//       (Math.random / Date.now held fixed for that one call) and the same salt and timestamp given to
//       ours, both produce the same fields and the same signature, and both recover to the test address;
//       signatures from the timed loops are spot-checked by recovery.
//   (2) signal → order acknowledged: `node services/{sim,bus,scanner,executor}/dist/main.js` as child
//       processes on a temp data dir (POLYBOT_DATA_DIR) and free ports, the env of test/e2e/stack.ts
//       (venue URLs derive from POLYBOT_SIM_PORT; sim auth on, the executor derives an L2 API key), generous
//       risk limits. The scanner runs because the executor looks every token up in the scanner's market
//       registry (polybot.db `markets`/`market_tokens`); without it every signal is denied `unknown_market`.
//       N signals (GTC BUYs of 5 shares on the sim's open non-round markets: half priced through the
//       best ask, which match, half resting at 0.01) are pushed at a steady pace with a BusPusher to
//       `signals.push`; this process subscribes to `events.pub`. Latency = push → the first
//       `event.order.<strategy>` for the signal whose status is the venue's answer (anything after
//       `pending`: live / filled / partially_filled / canceled, or rejected with the venue's reason).
//       `unknown` (ambiguous: timeout, 5xx) and `rejected` "not sent: …" are not acknowledgements.
//       Also reported: push → `pending` (intake, risk, sign, persist) and `pending` → answer (POST + settle).
// Every child is stopped by its pid (SIGTERM, SIGKILL after 12 s) whatever happens; the temp dir is deleted.
// Knobs: BENCH_EXECUTOR_SIGN_ORDERS (3000 each), BENCH_EXECUTOR_SIGN_ROUNDS (6), BENCH_EXECUTOR_SIGNALS (500),
// BENCH_EXECUTOR_RATE (50 signals/s), BENCH_EXECUTOR_WARMUP (20), BENCH_EXECUTOR_CROSS_SHARE (0.5),
// BENCH_EXECUTOR_LOG_LEVEL (info, the services' default), BENCH_EXECUTOR_SKIP_SIGN / _SKIP_LATENCY=1,
// BENCH_EXECUTOR_DUMP=<file> (one JSON line per measured signal).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BusPusher, BusSubscriber, resolveEndpoints } from '@polybot/bus';
import { cpuSecondsOf, freePort } from '../../../scripts/bench-lib.mjs';
import { buildSignedOrder, orderTypedData } from '@polybot/polymarket';
import { Wallet, verifyTypedData } from 'ethers';

const SIGN_ORDERS = Number(process.env.BENCH_EXECUTOR_SIGN_ORDERS ?? 3000);
const SIGN_ROUNDS = Math.max(1, Number(process.env.BENCH_EXECUTOR_SIGN_ROUNDS ?? 6));
const SIGN_WARMUP = 300;
const SAMPLE = 24;
const N_SIGNALS = Number(process.env.BENCH_EXECUTOR_SIGNALS ?? 500);
const RATE = Number(process.env.BENCH_EXECUTOR_RATE ?? 50);
const N_WARMUP = Number(process.env.BENCH_EXECUTOR_WARMUP ?? 20);
const CROSS_SHARE = Number(process.env.BENCH_EXECUTOR_CROSS_SHARE ?? 0.5);
const LOG_LEVEL = process.env.BENCH_EXECUTOR_LOG_LEVEL ?? 'info';
const SKIP_SIGN = process.env.BENCH_EXECUTOR_SKIP_SIGN === '1';
const SKIP_LATENCY = process.env.BENCH_EXECUTOR_SKIP_LATENCY === '1';
const ORDER_TIMEOUT_MS = 5000;
const STRATEGY = 'bench';
const ORDER_SIZE = 5;
// Publicly known test key (Hardhat/Anvil #0, used by Polymarket's own tests); never funded anywhere real.
const TEST_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const TEST_ADDRESS = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, '../../..');
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const r2 = (x) => Math.round(x * 100) / 100;
const fmt = (x) => Math.round(x).toLocaleString('en');

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// ================================================================ (1) signing throughput

/** The official client and its ethers v5 wallet, resolved where they are installed (services/sim devDependencies). */
function loadOfficial() {
  const req = createRequire(join(REPO, 'services/sim/package.json'));
  const clob = req('@polymarket/clob-client-v2');
  const { Wallet: WalletV5 } = req('@ethersproject/wallet');
  const version = JSON.parse(readFileSync(join(dirname(req.resolve('@polymarket/clob-client-v2')), '../package.json'), 'utf8')).version;
  return { clob, WalletV5, version };
}

/** Deterministic order fields: 16 uint256 token ids, prices 0.01–0.98, sizes 5–54.75, both sides, both exchanges. */
function makeSpecs(n) {
  let x = 0x2545f4914f6cdd1dn;
  const tokens = Array.from({ length: 16 }, () => {
    let t = 0n;
    for (let k = 0; k < 4; k++) {
      x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
      t = (t << 64n) | x;
    }
    return (t >> 2n).toString();
  });
  return Array.from({ length: n }, (_, i) => ({
    tokenId: tokens[i % tokens.length],
    side: i % 2 === 0 ? 'BUY' : 'SELL',
    price: (((i * 37) % 98) + 1) / 100,
    size: 5 + (i % 200) * 0.25,
    negRisk: i % 3 === 0,
  }));
}

async function signingPhase() {
  const { clob, WalletV5, version } = loadOfficial();
  const ours = new Wallet(TEST_KEY);
  const theirsWallet = new WalletV5(TEST_KEY);
  if (ours.address !== TEST_ADDRESS || (await theirsWallet.getAddress()) !== TEST_ADDRESS) throw new Error('test key does not give the test address');
  const builder = new clob.OrderBuilder(theirsWallet, 137, clob.SignatureTypeV2.EOA);
  const sideOf = (s) => (s === 'BUY' ? clob.Side.BUY : clob.Side.SELL);

  const signOurs = (s, extra = {}) =>
    buildSignedOrder({ wallet: ours, tokenId: s.tokenId, side: s.side, price: s.price, size: s.size, orderType: 'GTC', tickSize: '0.01', negRisk: s.negRisk, ...extra });
  const signTheirs = (s) => builder.buildOrder({ tokenID: s.tokenId, price: s.price, size: s.size, side: sideOf(s.side) }, { tickSize: '0.01', negRisk: s.negRisk }, 2);
  const recover = (order, negRisk) => {
    const td = orderTypedData(order, negRisk);
    return verifyTypedData(td.domain, td.types, td.message, order.signature);
  };

  // ---- verification sample: pinned salt + timestamp → identical orders and signatures
  const sample = makeSpecs(SAMPLE);
  let same = 0;
  const problems = [];
  const realNow = Date.now;
  const realRandom = Math.random;
  for (const [i, s] of sample.entries()) {
    const T = 1_767_225_600_000 + i * 1_000; // fixed ms timestamp
    const R = 0.123456789 + i / 1000; // fixed Math.random → official salt = round(R × T)
    let theirs;
    try {
      Date.now = () => T;
      Math.random = () => R;
      theirs = await signTheirs(s);
    } finally {
      Date.now = realNow;
      Math.random = realRandom;
    }
    const mine = signOurs(s, { salt: Number(theirs.salt), timestampMs: T });
    const fields = ['salt', 'maker', 'signer', 'tokenId', 'makerAmount', 'takerAmount', 'side', 'signatureType', 'timestamp', 'expiration', 'metadata', 'builder'];
    const diff = fields.filter((f) => String(mine[f]) !== String(theirs[f]));
    const who = [recover(mine, s.negRisk), recover(theirs, s.negRisk)];
    if (diff.length === 0 && mine.signature === theirs.signature && who.every((a) => a === TEST_ADDRESS)) same++;
    else problems.push(`#${i} ${JSON.stringify(s)}: differing ${diff.join(',') || 'none'}; signatures ${mine.signature === theirs.signature ? 'equal' : 'differ'}; recovered ${who.join(' / ')}`);
  }

  // ---- timed, alternating rounds (warm-up first for both)
  const specs = makeSpecs(Math.max(SIGN_ORDERS, SIGN_WARMUP));
  for (let i = 0; i < SIGN_WARMUP; i++) {
    signOurs(specs[i]);
    await signTheirs(specs[i]);
  }
  const per = Math.max(1, Math.floor(SIGN_ORDERS / SIGN_ROUNDS));
  const res = { ours: { n: 0, ms: 0, rates: [] }, theirs: { n: 0, ms: 0, rates: [] } };
  const spot = { ours: [], theirs: [] };
  const runOurs = () => {
    const t0 = nowMs();
    for (let k = 0; k < per; k++) {
      const o = signOurs(specs[k]);
      if (k % 250 === 0) spot.ours.push([o, specs[k].negRisk]);
    }
    return nowMs() - t0;
  };
  const runTheirs = async () => {
    const t0 = nowMs();
    for (let k = 0; k < per; k++) {
      const o = await signTheirs(specs[k]);
      if (k % 250 === 0) spot.theirs.push([o, specs[k].negRisk]);
    }
    return nowMs() - t0;
  };
  for (let r = 0; r < SIGN_ROUNDS; r++) {
    const order = r % 2 === 0 ? ['ours', 'theirs'] : ['theirs', 'ours'];
    for (const who of order) {
      const ms = who === 'ours' ? runOurs() : await runTheirs();
      res[who].n += per;
      res[who].ms += ms;
      res[who].rates.push((per / ms) * 1000);
    }
  }
  let recovered = 0;
  let spotTotal = 0;
  for (const list of [spot.ours, spot.theirs])
    for (const [o, neg] of list) {
      spotTotal++;
      if (recover(o, neg) === TEST_ADDRESS) recovered++;
    }
  return { version, sample: { n: sample.length, same, problems }, res, spot: { n: spotTotal, recovered }, per };
}

// ================================================================ (2) signal → order acknowledged

const SERVICES = [
  { name: 'sim', entry: 'services/sim/dist/main.js' },
  { name: 'bus', entry: 'services/bus/dist/main.js' },
  { name: 'scanner', entry: 'services/scanner/dist/main.js' },
  { name: 'executor', entry: 'services/executor/dist/main.js' },
];

class Stack {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'pbx-'));
    this.procs = new Map();
  }

  spawn(name, entry, env) {
    const logPath = join(this.dir, `${name}.log`);
    const fd = openSync(logPath, 'a');
    // Output straight to a file: no pipe through this process (which is busy measuring).
    // BENCH_EXECUTOR_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the executor.
    const args = name === 'executor' && process.env.BENCH_EXECUTOR_NODE_ARGS ? process.env.BENCH_EXECUTOR_NODE_ARGS.split(' ') : [];
    const child = spawn(process.execPath, [...args, join(REPO, entry)], { cwd: REPO, env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.procs.set(name, { child, logPath });
    return child;
  }

  alive(name) {
    const p = this.procs.get(name);
    return p && p.child.exitCode === null && p.child.signalCode === null;
  }

  tail(name, n = 15) {
    try {
      return readFileSync(this.procs.get(name).logPath, 'utf8').trim().split('\n').slice(-n).join('\n');
    } catch {
      return '';
    }
  }

  /** SIGTERM by pid in reverse start order, SIGKILL whatever is left after `ms`. */
  async stop(ms = 12_000) {
    const list = [...this.procs.values()].reverse();
    for (const { child } of list) {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && list.some(({ child }) => child.exitCode === null && child.signalCode === null)) await sleep(50);
    const killed = [];
    for (const [name, { child }] of this.procs) {
      if (child.exitCode === null && child.signalCode === null) {
        killed.push(name);
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (killed.length > 0) await sleep(200);
    return killed;
  }

  /** Synchronous last resort (signal handlers, exit): SIGKILL by pid. */
  killNow() {
    for (const { child } of this.procs.values()) {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  dispose() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function getJson(url, init) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: HTTP ${res.status}`);
  return res.json();
}

async function latencyPhase(stack) {
  const simPort = await freePort();
  const apiPort = await freePort();
  const base = `http://127.0.0.1:${simPort}`;
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    POLYBOT_DATA_DIR: stack.dir,
    POLYBOT_API_PORT: String(apiPort),
    POLYBOT_SIM_PORT: String(simPort),
    POLYBOT_STATUS_INTERVAL_MS: '500',
    POLYBOT_ENV_FILE: join(stack.dir, 'no.env'),
    POLYBOT_LOG_LEVEL: LOG_LEVEL,
    // Venue auth on (the default; as in the e2e stack), enough collateral for every crossing BUY.
    POLYBOT_SIM_REQUIRE_AUTH: 'true',
    POLYBOT_SIM_START_BALANCE: '1000000',
    // Generous limits: nothing here should be denied by risk.
    POLYBOT_RISK_MAX_ORDER_SIZE: '1000',
    POLYBOT_RISK_MAX_POSITION: '1000000',
    POLYBOT_RISK_MAX_NOTIONAL: '1000',
    // The bench measures latency, not limits: nothing here may be denied for holding too much.
    POLYBOT_RISK_MAX_OPEN_ORDERS: '100000',
    POLYBOT_RISK_MAX_MARKET_EXPOSURE: '1000000',
    POLYBOT_RISK_MAX_TOTAL_EXPOSURE: '1000000',
    POLYBOT_RISK_MAX_DAILY_LOSS: '0',
    POLYBOT_EXECUTOR_ORDER_TIMEOUT_MS: String(ORDER_TIMEOUT_MS),
    // The standard signer tier allows 40 orders/s (32 at our 80 %): at 50/s it would measure the
    // limiter's queue, not the path. A silver-tier signer takes 200/s.
    POLYBOT_EXECUTOR_RATE_TIER: 'silver',
  };
  const ep = resolveEndpoints(stack.dir);

  // Subscribe first, so nothing the executor says is missed.
  const sigs = new Map(); // id → record
  const status = new Map(); // service → last status message
  const sub = new BusSubscriber({
    endpoints: [ep['events.pub']],
    topics: [`event.order.${STRATEGY}`, `event.signal.${STRATEGY}`, 'status.'],
    receiveHighWaterMark: 1_000_000,
    onMessage: (msg) => {
      const t = nowMs();
      if (msg.type === 'status') {
        status.set(msg.service, msg);
        return;
      }
      if (msg.type !== 'event') return;
      const rec = sigs.get(msg.signal_id);
      if (!rec) return;
      if (msg.kind === 'signal') {
        if (msg.status === 'denied' || msg.status === 'dead_lettered') {
          rec.outcome ??= msg.status;
          rec.code = msg.code;
          rec.reason = msg.reason;
          rec.tEnd = t;
        }
      } else if (msg.kind === 'order') {
        if (msg.status === 'pending') rec.tPending ??= t;
        else if (rec.tEnd === undefined) {
          rec.tEnd = t;
          rec.status = msg.status;
          rec.reason = msg.reason;
          if (msg.status === 'unknown') rec.outcome = 'ambiguous';
          else if (msg.status === 'rejected' && (msg.reason ?? '').startsWith('not sent')) rec.outcome = 'not_sent';
          else rec.outcome = 'ack';
        }
      }
    },
  });
  sub.start();
  const pusher = new BusPusher({ endpoint: ep['signals.push'], src: `${STRATEGY}-pusher`, maxQueue: 100_000 });
  pusher.start();

  try {
    // -- processes: the venue first (the executor derives its API key at start), then the rest.
    const sim = stack.spawn('sim', SERVICES[0].entry, env);
    const okDeadline = Date.now() + 30_000;
    for (;;) {
      if (!stack.alive('sim')) throw new Error(`sim exited (${sim.exitCode ?? sim.signalCode}):\n${stack.tail('sim')}`);
      const ok = await fetch(`${base}/ok`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > okDeadline) throw new Error('sim did not answer /ok within 30 s');
      await sleep(100);
    }
    for (const svc of SERVICES.slice(1)) stack.spawn(svc.name, svc.entry, env);
    const upDeadline = Date.now() + 60_000;
    for (;;) {
      for (const s of SERVICES) if (!stack.alive(s.name)) throw new Error(`${s.name} exited:\n${stack.tail(s.name)}`);
      const ex = status.get('executor');
      if (ex?.state === 'running' && status.has('scanner') && status.has('bus')) break;
      if (Date.now() > upDeadline) {
        throw new Error(`services not up within 60 s: ${SERVICES.map((s) => `${s.name}=${status.get(s.name)?.state ?? 'no status'}${status.get(s.name)?.message ? ` (${status.get(s.name).message})` : ''}`).join(', ')}`);
      }
      await sleep(100);
    }

    // -- markets: the sim's open non-round markets (rounds roll over every few minutes); both outcomes.
    const gamma = await getJson(`${base}/markets?limit=1000`);
    const candidates = [];
    for (const m of gamma) {
      if (!m.active || m.closed || m.acceptingOrders === false || /updown/.test(m.slug ?? '')) continue;
      for (const token of JSON.parse(m.clobTokenIds)) candidates.push({ token, market: m.conditionId, negRisk: m.negRisk === true });
    }
    if (candidates.length === 0) throw new Error('the sim lists no open markets');

    let n = 0;
    const signal = (c, price, kind, phase) => {
      const id = `bench-${phase}-${String(n++).padStart(6, '0')}-${process.pid}`;
      const msg = { type: 'signal', id, strategy: STRATEGY, token_id: c.token, market: c.market, side: 'BUY', price, size: ORDER_SIZE, order_type: 'GTC', reason: `executor bench ${phase}` };
      const rec = { id, kind, phase, token: c.token, negRisk: c.negRisk, tPush: nowMs() };
      sigs.set(id, rec);
      if (!pusher.push('signal', msg)) throw new Error('pusher refused a signal');
      return rec;
    };

    // -- probe: wait until the scanner has registered the markets (the executor denies unknown_market before).
    const known = new Map();
    const probeDeadline = Date.now() + 60_000;
    let lastDenial = '';
    while (known.size < candidates.length && Date.now() < probeDeadline) {
      const wave = candidates.filter((c) => !known.has(c.token)).map((c) => [c, signal(c, 0.01, 'rest', 'probe')]);
      const waveDeadline = Date.now() + ORDER_TIMEOUT_MS + 2000;
      while (wave.some(([, r]) => r.tEnd === undefined) && Date.now() < waveDeadline) await sleep(20);
      for (const [c, r] of wave) {
        if (r.outcome === 'ack') known.set(c.token, c);
        else if (r.outcome) lastDenial = `${r.outcome} ${r.code ?? r.status ?? ''} ${r.reason ?? ''}`.trim();
      }
      if (known.size < candidates.length) await sleep(500);
    }
    if (known.size === 0) throw new Error(`no probe signal was acknowledged within 60 s; last answer: ${lastDenial || 'none'}\nexecutor:\n${stack.tail('executor')}`);
    const tokens = [...known.values()];

    // -- books, refreshed in the background (one POST /books) so crossing prices stay through the ask.
    const crossPrice = new Map();
    const refresh = async () => {
      const books = await getJson(`${base}/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(tokens.map((t) => ({ token_id: t.token }))) });
      for (const b of books) {
        const ask = b.asks?.length ? Number(b.asks[b.asks.length - 1].price) : undefined;
        // 5 ticks through the best ask; an empty ask side → 0.99 (rests, still an answer).
        crossPrice.set(b.asset_id, ask === undefined ? 0.99 : Math.min(0.99, Math.round(ask * 100 + 5) / 100));
      }
    };
    await refresh();
    let refreshing = true;
    const refresher = (async () => {
      while (refreshing) {
        await sleep(1000);
        if (refreshing) await refresh().catch(() => undefined);
      }
    })();

    const paced = async (count, phase) => {
      const out = [];
      const t0 = nowMs();
      for (let i = 0; i < count; i++) {
        const due = t0 + (i * 1000) / RATE;
        const wait = due - nowMs();
        if (wait > 1) await sleep(wait - 1);
        while (nowMs() < due) await new Promise((r) => setImmediate(r));
        const c = tokens[i % tokens.length];
        const cross = Math.floor((i + 1) * CROSS_SHARE) > Math.floor(i * CROSS_SHARE);
        out.push(signal(c, cross ? (crossPrice.get(c.token) ?? 0.99) : 0.01, cross ? 'cross' : 'rest', phase));
      }
      const pushSecs = (nowMs() - t0) / 1000;
      const deadline = Date.now() + ORDER_TIMEOUT_MS + 15_000;
      while (out.some((r) => r.tEnd === undefined) && Date.now() < deadline) await sleep(20);
      return { out, pushSecs };
    };

    await paced(N_WARMUP, 'warmup');
    const pids = Object.fromEntries(SERVICES.map((s) => [s.name, stack.procs.get(s.name).child.pid]));
    const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSecondsOf(pid)]));
    const tRun0 = nowMs();
    const run = await paced(N_SIGNALS, 'run');
    const runSecs = (nowMs() - tRun0) / 1000;
    const cpu = Object.fromEntries(
      Object.entries(pids).map(([k, pid]) => {
        const a = cpu0[k];
        const b = cpuSecondsOf(pid);
        return [k, a === undefined || b === undefined ? 'n/a' : `${Math.round(((b - a) / runSecs) * 100)}%`];
      }),
    );
    refreshing = false;
    await refresher;
    const exMetrics = status.get('executor')?.metrics ?? {};
    return { run, runSecs, cpu, tokens, candidates: candidates.length, simPort, exMetrics };
  } finally {
    await pusher.close(500).catch(() => undefined);
    await sub.close().catch(() => undefined);
  }
}

function summarize(out) {
  const acked = out.filter((r) => r.outcome === 'ack');
  const lat = acked.map((r) => r.tEnd - r.tPush).sort((a, b) => a - b);
  const toPending = acked.filter((r) => r.tPending !== undefined).map((r) => r.tPending - r.tPush).sort((a, b) => a - b);
  const venue = acked.filter((r) => r.tPending !== undefined).map((r) => r.tEnd - r.tPending).sort((a, b) => a - b);
  const byKind = {};
  for (const kind of ['cross', 'rest']) {
    const l = acked.filter((r) => r.kind === kind).map((r) => r.tEnd - r.tPush).sort((a, b) => a - b);
    byKind[kind] = { n: out.filter((r) => r.kind === kind).length, acked: l.length, p50: quantile(l, 0.5), p99: quantile(l, 0.99) };
  }
  const statuses = {};
  const other = {};
  for (const r of out) {
    if (r.outcome === 'ack') statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    else {
      const k = r.outcome === undefined ? 'no answer' : `${r.outcome}${r.code ? ` ${r.code}` : ''}${r.reason ? `: ${r.reason.slice(0, 80)}` : ''}`;
      other[k] = (other[k] ?? 0) + 1;
    }
  }
  const rejects = {};
  for (const r of acked) if (r.status === 'rejected') rejects[r.reason ?? ''] = (rejects[r.reason ?? ''] ?? 0) + 1;
  return { acked, lat, toPending, venue, byKind, statuses, other, rejects };
}

// ================================================================ main

async function main() {
  console.log(`machine: ${availableParallelism()} CPUs, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}, node ${process.version}`);
  let sign;
  if (!SKIP_SIGN) {
    sign = await signingPhase();
    const o = sign.res.ours;
    const t = sign.res.theirs;
    const range = (rates) => `${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}`;
    console.log(
      `signing (amounts + EIP-712 V2 order built and signed, in this process before any service starts; ${SIGN_ROUNDS} alternating rounds of ${sign.per} orders each, after ${SIGN_WARMUP} warm-up orders each):`,
    );
    console.log(`  ours: @polybot/polymarket buildSignedOrder (ethers v6 Wallet): ${fmt((o.n / o.ms) * 1000)} orders/s (${o.n} in ${(o.ms / 1000).toFixed(2)} s; rounds ${range(o.rates)}/s)`);
    console.log(
      `  official: @polymarket/clob-client-v2 ${sign.version} OrderBuilder.buildOrder (ethers v5 Wallet): ${fmt((t.n / t.ms) * 1000)} orders/s (${t.n} in ${(t.ms / 1000).toFixed(2)} s; rounds ${range(t.rates)}/s)`,
    );
    console.log(
      `  check: ${sign.sample.same}/${sign.sample.n} sample orders identical in every field and signature with the official client's salt and timestamp pinned ` +
        `(Math.random/Date.now held for that call, the same salt/timestamp passed to ours), both recovering to ${TEST_ADDRESS}; ` +
        `${sign.spot.recovered}/${sign.spot.n} signatures spot-checked from the timed loops (random salts) recover to it`,
    );
    for (const p of sign.sample.problems.slice(0, 5)) console.log(`  MISMATCH ${p}`);
  }

  let lat;
  if (!SKIP_LATENCY) {
    const stack = new Stack();
    const onSignal = () => {
      stack.killNow();
      try {
        stack.dispose();
      } catch {
        // best effort
      }
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.once('exit', () => stack.killNow());
    const watchdog = setTimeout(() => {
      console.error('executor bench: no result after 10 minutes; giving up');
      onSignal();
    }, 600_000);
    watchdog.unref();
    let phase;
    let failure;
    try {
      phase = await latencyPhase(stack);
    } catch (err) {
      failure = err;
    }
    const killed = await stack.stop();
    if (failure) {
      console.error(`executor bench failed: ${failure.stack ?? failure}`);
      for (const s of SERVICES) console.error(`--- ${s.name} (last lines)\n${stack.tail(s.name, 10)}`);
      stack.dispose();
      process.exit(1);
    }
    stack.dispose();
    const s = summarize(phase.run.out);
    if (process.env.BENCH_EXECUTOR_DUMP) {
      // One JSON line per measured signal, times in ms from the first push (for looking at the tail).
      const t0 = phase.run.out[0]?.tPush ?? 0;
      const rows = phase.run.out.map((r) => JSON.stringify({ id: r.id, kind: r.kind, token: r.token.slice(0, 12), neg_risk: r.negRisk, push: r2(r.tPush - t0), pending: r.tPending === undefined ? null : r2(r.tPending - t0), end: r.tEnd === undefined ? null : r2(r.tEnd - t0), outcome: r.outcome ?? null, status: r.status ?? null, code: r.code ?? null }));
      writeFileSync(process.env.BENCH_EXECUTOR_DUMP, `${rows.join('\n')}\n`);
    }
    lat = { ...s, phase };
    const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : 'n/a');
    console.log(
      `signal → order acknowledged (sim + bus + scanner + executor as child processes, ipc://, venue auth on, logs at ${LOG_LEVEL}; ` +
        `${N_SIGNALS} GTC BUY signals of ${ORDER_SIZE} shares pushed at ${RATE}/s over ${phase.run.pushSecs.toFixed(1)} s on ${phase.tokens.length}/${phase.candidates} tokens, ` +
        `${Math.round(CROSS_SHARE * 100)}% priced 5 ticks through the best ask, the rest resting at 0.01; after ${N_WARMUP} warm-up signals):`,
    );
    console.log(`  acknowledged by the venue: ${s.acked.length}/${N_SIGNALS}; statuses ${JSON.stringify(s.statuses)}${Object.keys(s.other).length ? `; not acknowledged ${JSON.stringify(s.other)}` : ''}`);
    if (Object.keys(s.rejects).length) console.log(`  venue rejections: ${JSON.stringify(s.rejects)}`);
    console.log(`  push → venue answer on events.pub: p50 ${ms(quantile(s.lat, 0.5))}, p90 ${ms(quantile(s.lat, 0.9))}, p99 ${ms(quantile(s.lat, 0.99))}, max ${ms(s.lat[s.lat.length - 1])}`);
    console.log(`    crossing (matched) p50 ${ms(s.byKind.cross.p50)} p99 ${ms(s.byKind.cross.p99)} (${s.byKind.cross.acked}/${s.byKind.cross.n}); resting p50 ${ms(s.byKind.rest.p50)} p99 ${ms(s.byKind.rest.p99)} (${s.byKind.rest.acked}/${s.byKind.rest.n})`);
    console.log(
      `    split: push → 'pending' event (intake, risk, sign, persist, publish) p50 ${ms(quantile(s.toPending, 0.5))} p99 ${ms(quantile(s.toPending, 0.99))}; ` +
        `'pending' → answer event (POST /order with L2 auth, settle, publish) p50 ${ms(quantile(s.venue, 0.5))} p99 ${ms(quantile(s.venue, 0.99))}`,
    );
    console.log(`  CPU during the run (share of one core): ${Object.entries(phase.cpu).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (killed.length) console.log(`  (had to SIGKILL after 12 s: ${killed.join(', ')})`);
  }

  console.log(
    JSON.stringify({
      bench: 'executor',
      signed_per_s: sign ? Math.round((sign.res.ours.n / sign.res.ours.ms) * 1000) : null,
      clob_client_signed_per_s: sign ? Math.round((sign.res.theirs.n / sign.res.theirs.ms) * 1000) : null,
      sign_check: sign ? `${sign.sample.same}/${sign.sample.n}` : null,
      ack_p50_ms: lat ? r2(quantile(lat.lat, 0.5)) : null,
      ack_p99_ms: lat ? r2(quantile(lat.lat, 0.99)) : null,
      ack_max_ms: lat ? r2(lat.lat[lat.lat.length - 1] ?? NaN) : null,
      pending_p50_ms: lat ? r2(quantile(lat.toPending, 0.5)) : null,
      acks: lat ? lat.acked.length : null,
      signals: lat ? N_SIGNALS : null,
      rate_per_s: lat ? RATE : null,
    }),
  );
  if (sign && sign.sample.same !== sign.sample.n) process.exitCode = 1;
  if (lat && lat.acked.length === 0) process.exitCode = 1;
}

await main();
