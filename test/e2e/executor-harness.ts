import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { BusPusher, BusRequester, resolveEndpoints, type Endpoints } from '@polybot/bus';
import { openDatabase, type SqliteDb } from '@polybot/core';
import { toMicros, type SignalMessage, type Unstamped } from '@polybot/protocol';
import { freePort, sleep, tempDataDir } from '@polybot/testkit';
// Not a dependency of the root package: reached by path, like services/executor/test/venue-helpers.ts reaches the sim.
import {
  buildL2Headers,
  ClobAccountClient,
  createOrDeriveApiKey,
  GammaClient,
  loadWallet,
  toMarketInfo,
  type ApiCreds,
  type ClobTrade,
  type MarketInfo,
} from '../../packages/polymarket/src/index.js';
import { MarketRegistry } from '../../services/scanner/src/registry.js';
import { REPO } from './stack.js';

/** The public Hardhat account #0 of the shared vectors (`../shared` beside the repo); never funded anywhere. */
export function testKey(): string {
  const file = resolve(REPO, '../shared/polymarket/vectors/l1_clob_auth.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { cases: Array<{ privateKey: string }> }).cases[0]!.privateKey;
}

/** Seeded PRNG (mulberry32): the same seed gives the same signals, kill delays and mix. */
export function makeRng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)), pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]! };
}
export type Rng = ReturnType<typeof makeRng>;

const FINAL_SIGNAL = new Set(['denied', 'dead_lettered', 'done']);
const TERMINAL_ORDER = new Set(['filled', 'canceled', 'rejected', 'expired']);
const OPEN_ORDER = new Set(['pending', 'live', 'partially_filled', 'unknown']);
const FINAL_TRADE = new Set(['CONFIRMED', 'FAILED']);
const ADMIN_SECRET = 'e2e-admin-secret-0123456789';

export interface OrderRow {
  order_id: string;
  signal_id: string | null;
  strategy: string;
  token_id: string;
  side: string;
  order_type: string;
  price: string;
  size: string;
  filled: string;
  status: string;
  reason: string | null;
}

interface VenueOrderSeen {
  id: string;
  asset_id: string;
  side: string;
  price: string;
  original_size: string;
  size_matched: string;
  status: string;
  placed: boolean;
}

/**
 * The account's user channel, watched by the harness from before the first order to the end: every
 * PLACEMENT the venue emits is an order it accepted, in any later state. The simulator has no route
 * that lists every order of an owner in every status, so this is the complete venue-side list —
 * as long as the socket never dropped (`gaps` counts drops; a gap makes the orphan check incomplete).
 */
export class VenueWatch {
  readonly orders = new Map<string, VenueOrderSeen>();
  readonly trades = new Map<string, string>();
  gaps = 0;
  private ws?: WebSocket;
  private closing = false;
  private pinger?: NodeJS.Timeout;

  constructor(
    private readonly url: string,
    private readonly creds: ApiCreds,
  ) {}

  async start(): Promise<void> {
    const ws = new WebSocket(`${this.url}/ws/user`);
    this.ws = ws;
    ws.on('error', () => undefined); // a drop shows as 'close' (counted as a gap)
    const pong = new Promise<void>((res, rej) => {
      ws.once('error', rej);
      ws.on('message', (raw) => {
        const text = String(raw);
        if (text === 'PONG') return res();
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return;
        }
        for (const ev of Array.isArray(parsed) ? parsed : [parsed]) this.onEvent(ev as Record<string, string>);
      });
    });
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    ws.send(JSON.stringify({ auth: this.creds, markets: [], type: 'user' }));
    // Frames are handled in order: a PONG proves the auth frame was taken (a PING before auth closes the socket).
    ws.send('PING');
    await Promise.race([pong, sleep(5000).then(() => Promise.reject(new Error('user channel did not authenticate')))]);
    ws.on('close', () => {
      if (this.closing) return;
      this.gaps++;
      void sleep(200).then(() => (this.closing ? undefined : this.start().catch(() => undefined)));
    });
    this.pinger ??= setInterval(() => this.ws?.readyState === WebSocket.OPEN && this.ws.send('PING'), 5000);
  }

  private onEvent(ev: Record<string, string>): void {
    if (ev.event_type === 'trade') {
      this.trades.set(ev.id!, ev.status!);
      return;
    }
    if (ev.event_type !== 'order') return;
    const id = ev.id!.toLowerCase();
    const prev = this.orders.get(id);
    this.orders.set(id, {
      id,
      asset_id: ev.asset_id!,
      side: ev.side!,
      price: ev.price!,
      original_size: ev.original_size!,
      size_matched: ev.size_matched!,
      status: ev.status!,
      placed: (prev?.placed ?? false) || ev.type === 'PLACEMENT',
    });
  }

  close(): void {
    this.closing = true;
    if (this.pinger) clearInterval(this.pinger);
    this.ws?.close();
  }
}

export interface RigOptions {
  name: string;
  seed: number;
  simEnv?: Record<string, string>;
  executorEnv?: Record<string, string>;
}

/** One simulator process, one executor process (killed and restarted at will), their data dir and the harness's sockets. */
export class Rig {
  readonly dir: string;
  readonly endpoints: Endpoints;
  readonly base: string;
  address = '';
  creds!: ApiCreds;
  account!: ClobAccountClient;
  watch!: VenueWatch;
  markets: MarketInfo[] = [];
  pusher: BusPusher;
  requester: BusRequester;
  sim?: ChildProcess;
  exec?: ChildProcess;
  starts = 0;
  /** SIGKILLs of a running executor (it had answered ping). */
  kills = 0;
  /** SIGKILLs while it was still starting (reconciling, settling what the last run left). */
  startupKills = 0;
  private db?: SqliteDb;
  private closing?: Promise<void>;
  private readonly cleanup: () => void;
  /** One log file per process name; every restart appends to it. */
  private readonly logs = new Map<string, WriteStream>();
  private readonly env: Record<string, string>;

  private constructor(
    readonly opts: RigOptions,
    readonly simPort: number,
  ) {
    const tmp = tempDataDir(`pbx-${opts.name}`);
    this.dir = tmp.dir;
    this.cleanup = tmp.cleanup;
    this.base = `http://127.0.0.1:${simPort}`;
    this.env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      POLYBOT_DATA_DIR: this.dir,
      POLYBOT_ENV_FILE: join(this.dir, 'no.env'),
      POLYBOT_SIM_PORT: String(simPort),
      POLYBOT_LOG_LEVEL: 'info',
      POLYBOT_STATUS_INTERVAL_MS: '500',
    };
    // The harness resolves the same ipc endpoints from the same data dir as the services.
    this.endpoints = resolveEndpoints(this.dir, {});
    this.pusher = new BusPusher({ endpoint: this.endpoints['signals.push'], src: `e2e-${opts.name}` });
    this.requester = new BusRequester({ endpoint: this.endpoints['executor.rep'], src: `e2e-${opts.name}`, timeoutMs: 2000 });
  }

  static async start(opts: RigOptions): Promise<Rig> {
    const rig = new Rig(opts, await freePort());
    try {
      await rig.startSim();
      await rig.prepareVenue();
      rig.pusher.start();
      await rig.startExecutor();
      rig.db = openDatabase(join(rig.dir, 'polybot.db'), { readonly: true });
    } catch (err) {
      await rig.close();
      throw err;
    }
    return rig;
  }

  log(name: string): string {
    try {
      return readFileSync(join(this.dir, `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  private spawnService(name: string, entry: string, env: Record<string, string>): ChildProcess {
    let out = this.logs.get(name);
    if (!out) this.logs.set(name, (out = createWriteStream(join(this.dir, `${name}.log`), { flags: 'a' })));
    out.write(`---- start ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, [join(REPO, entry)], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    return child;
  }

  private async startSim(): Promise<void> {
    this.sim = this.spawnService('sim', 'services/sim/dist/main.js', {
      ...this.env,
      POLYBOT_SIM_SEED: String(this.opts.seed),
      POLYBOT_SIM_TRADERS: '0',
      POLYBOT_SIM_ROUND_ASSETS: 'none',
      POLYBOT_SIM_NEG_RISK: 'false',
      POLYBOT_SIM_PERSIST: 'false',
      POLYBOT_SIM_MARKETS: '4',
      POLYBOT_SIM_EVENT_RATE: '200',
      POLYBOT_SIM_MINE_MS: '50',
      POLYBOT_SIM_CONFIRM_MS: '150',
      POLYBOT_SIM_START_BALANCE: '100000',
      POLYBOT_SIM_ADMIN_SECRET: ADMIN_SECRET,
      ...this.opts.simEnv,
    });
    await this.until('sim', this.sim, 30_000, async () => (await fetch(`${this.base}/ok`).catch(() => null))?.ok === true);
  }

  /** Polls `ready` until true; fails at once, with the log's tail, if the process exits first. */
  private async until(name: string, child: ChildProcess, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) while starting:\n${this.log(name).slice(-3000)}`);
      }
      if (await ready()) return;
      if (Date.now() > deadline) throw new Error(`${name} not ready after ${timeoutMs} ms:\n${this.log(name).slice(-3000)}`);
      await sleep(50);
    }
  }

  /** API key (the same deterministic one the executor derives), the user-channel watch, and the scanner's market tables. */
  private async prepareVenue(): Promise<void> {
    const wallet = loadWallet({ privateKey: testKey(), venue: 'sim', keysDir: join(this.dir, 'keys') }).wallet;
    this.address = wallet.address.toLowerCase();
    this.creds = await createOrDeriveApiKey(this.base, wallet);
    const address = wallet.address;
    this.account = new ClobAccountClient({
      baseUrl: this.base,
      pageSize: 500,
      authHeaders: (method, path, body) => ({ ...buildL2Headers(this.creds, address, { method, requestPath: path, body }) }),
    });
    this.watch = new VenueWatch(`ws://127.0.0.1:${this.simPort}`, this.creds);
    await this.watch.start();
    // The scanner's own discovery path: Gamma listing → MarketInfo → its registry and migrations.
    const listed = await new GammaClient(this.base).listMarkets({ closed: false, limit: 100 });
    this.markets = listed.markets.map(toMarketInfo);
    if (this.markets.length === 0) throw new Error('the simulator listed no markets');
    const registry = new MarketRegistry(join(this.dir, 'polybot.db'));
    registry.upsert(this.markets);
    registry.close();
  }

  executorEnv(): Record<string, string> {
    return {
      ...this.env,
      POLYBOT_EXECUTION_MODE: 'sim',
      POLYBOT_PRIVATE_KEY: testKey(),
      POLYBOT_RISK_MAX_ORDER_SIZE: '10000',
      POLYBOT_RISK_MAX_POSITION: '1000000',
      POLYBOT_RISK_MAX_NOTIONAL: '10000',
      POLYBOT_RISK_MAX_OPEN_ORDERS: '100000',
      POLYBOT_RISK_MAX_MARKET_EXPOSURE: '1000000',
      POLYBOT_RISK_MAX_TOTAL_EXPOSURE: '1000000',
      POLYBOT_RISK_MAX_DAILY_LOSS: '0',
      POLYBOT_RISK_PRICE_BAND: '0',
      POLYBOT_EXECUTOR_ORDER_TIMEOUT_MS: '3000',
      // REST refresh well inside settle()'s no-progress window, so a poll-based recovery gets its chance.
      POLYBOT_EXECUTOR_POLL_MS: '5000',
      ...this.opts.executorEnv,
    };
  }

  /** Spawns the executor with the same data dir and env every time (without waiting for it). */
  spawnExecutor(): ChildProcess {
    this.starts++;
    this.exec = this.spawnService('executor', 'services/executor/dist/main.js', this.executorEnv());
    return this.exec;
  }

  /** Spawns the executor and waits until it answers `ping` on executor.rep. */
  async startExecutor(): Promise<void> {
    const child = this.spawnExecutor();
    await this.until('executor', child, 60_000, async () => (await this.requester.call('ping', {}, 2000).catch(() => null))?.service === 'executor');
  }

  /** SIGKILL: no shutdown hook runs, whatever ZeroMQ held in the process is lost. `starting`: it had not answered ping yet. */
  async killExecutor(starting = false): Promise<void> {
    const child = this.exec;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`executor died by itself (exit ${child?.exitCode ?? child?.signalCode}):\n${this.log('executor').slice(-3000)}`);
    }
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    if (starting) this.startupKills++;
    else this.kills++;
  }

  /** The simulator's admin routes (faults): POST with a body, GET without. */
  async admin(path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.base}/admin/${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', 'x-admin-secret': ADMIN_SECRET },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.status !== 200) throw new Error(`admin ${path}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  // ------------------------------------------------------------ the executor's tables (read only)

  signalRows(): Map<string, { status: string; code: string | null }> {
    const rows = this.db!.prepare('SELECT id, status, code FROM signals').all() as Array<{ id: string; status: string; code: string | null }>;
    return new Map(rows.map((r) => [r.id, { status: r.status, code: r.code }]));
  }

  orderRows(): OrderRow[] {
    return this.db!.prepare('SELECT * FROM orders').all() as OrderRow[];
  }

  positionRows(): Array<{ strategy: string; token_id: string; size: string }> {
    return this.db!.prepare('SELECT strategy, token_id, size FROM positions').all() as Array<{ strategy: string; token_id: string; size: string }>;
  }

  tradeRowCount(): number {
    return (this.db!.prepare('SELECT COUNT(*) AS n FROM trades').get() as { n: number }).n;
  }

  // ------------------------------------------------------------ end of a run

  /**
   * Drives the run to its end: re-sends signals without a row, cancels resting orders over
   * executor.rep, and waits for every signal, order and trade to be final. Gives up after
   * `timeoutMs`, or once nothing has changed for `stallMs`; returns what is still not final (the
   * first line says why), empty when all is final.
   */
  async settle(feed: SignalFeed, o: { timeoutMs: number; stallMs: number }): Promise<string[]> {
    const deadline = Date.now() + o.timeoutMs;
    let lastResend = Date.now();
    let lastCancel = 0;
    let cancelError = '';
    let lastKey = '';
    let changedAt = Date.now();
    for (;;) {
      const signals = this.signalRows();
      const missing = [...feed.sent.keys()].filter((id) => !signals.has(id));
      const now = Date.now();
      // Not too eagerly: a busy executor may still hold them in its queue (a re-send is harmless, only noisy).
      if (missing.length > 0 && now - lastResend > 4000) {
        feed.resend(missing);
        lastResend = now;
      }
      const orders = this.orderRows();
      if (orders.some((x) => OPEN_ORDER.has(x.status) && x.status !== 'pending') && now - lastCancel > 3000) {
        lastCancel = now;
        cancelError = await this.requester.call('orders.cancel_all', {}, 15_000).then(
          () => '',
          (err: Error) => err.message,
        );
      }
      const problems = [
        ...missing.map((id) => `signal ${id}: no row`),
        ...[...signals].filter(([, x]) => !FINAL_SIGNAL.has(x.status)).map(([id, x]) => `signal ${id}: ${x.status}`),
        ...orders.filter((x) => !TERMINAL_ORDER.has(x.status)).map((x) => `order ${x.order_id} (signal ${x.signal_id}): ${x.status}${x.reason ? ` — ${x.reason}` : ''}`),
        ...[...this.watch.trades].filter(([, st]) => !FINAL_TRADE.has(st)).map(([id, st]) => `venue trade ${id}: ${st}`),
      ];
      if (problems.length === 0) return [];
      const key = problems.join('\n');
      if (key !== lastKey) {
        lastKey = key;
        changedAt = Date.now();
      }
      const why = Date.now() > deadline ? `still not final after ${o.timeoutMs} ms` : Date.now() - changedAt > o.stallMs ? `no progress for ${o.stallMs} ms` : '';
      if (why) return [`${why}${cancelError ? `; last orders.cancel_all failed: ${cancelError}` : ''}`, ...problems];
      await sleep(300);
    }
  }

  /** Compares the executor's tables with the venue's view of the account. */
  async verify(feed: SignalFeed): Promise<Verdict> {
    const signals = this.signalRows();
    const orders = this.orderRows();
    const byId = new Map(orders.map((o) => [o.order_id.toLowerCase(), o]));
    const trades: ClobTrade[] = (await this.account.getTrades()).items;
    const open = (await this.account.getOpenOrders()).items;

    // Every order of ours the venue shows anywhere: the watch, the open list and the trades.
    const venue = new Map(this.watch.orders);
    const unseen = new Set<string>();
    const note = (id: string) => {
      const k = id.toLowerCase();
      if (!venue.get(k)?.placed) unseen.add(k);
    };
    for (const o of open) note(o.id);
    for (const t of trades) {
      if (t.trader_side === 'TAKER') note(t.taker_order_id);
      for (const m of t.maker_orders) if (m.maker_address.toLowerCase() === this.address) note(m.order_id);
    }
    for (const id of unseen) {
      const o = await this.account.getOrder(id);
      if (o) venue.set(id, { ...o, id, placed: true });
    }

    const v: Verdict = {
      notStored: [...feed.sent.keys()].filter((id) => !signals.has(id)),
      notFinal: [...signals].filter(([, s]) => !FINAL_SIGNAL.has(s.status)).map(([id, s]) => `${id}: ${s.status}`),
      openOrders: orders
        .filter((o) => !TERMINAL_ORDER.has(o.status))
        // unknown/pending first: those are the crash-related ones
        .sort((a, b) => Number(a.status === 'live') - Number(b.status === 'live'))
        .map((o) => {
          const at = venue.get(o.order_id.toLowerCase());
          const there = at?.placed ? `venue ${at.status} ${at.size_matched}/${at.original_size}` : 'not at the venue';
          return `${o.order_id} (signal ${o.signal_id}, ${o.order_type} ${o.side}): ${o.status}${o.reason ? ` — ${o.reason}` : ''}; ${there}`;
        }),
      orphans: [],
      doubles: [],
      mismatched: [],
      phantomFills: [],
      rejectedButPlaced: [],
      liveAtVenue: open.map((o) => `${o.id}: ${o.status} ${o.side} ${o.original_size}@${o.price}`),
      tradesNotFinal: trades.filter((t) => !FINAL_TRADE.has(t.status)).map((t) => `${t.id}: ${t.status}`),
      watchGaps: this.watch.gaps + unseen.size,
      positionDiffs: [],
      summary: {},
    };
    const perSignal = new Map<string, string[]>();
    for (const [id, vo] of venue) {
      if (!vo.placed) continue;
      const row = byId.get(id);
      if (!row) {
        const like = [...feed.sent.values()]
          .filter((s) => s.sig.token_id === vo.asset_id && s.sig.side === vo.side && toMicros(s.sig.price) === toMicros(vo.price) && toMicros(s.sig.size) === toMicros(vo.original_size))
          .map((s) => s.sig.id);
        v.orphans.push(`${id}: ${vo.side} ${vo.original_size}@${vo.price} ${vo.status}, no executor row (same fields as signal(s) ${like.join(', ') || 'none'})`);
        continue;
      }
      if (row.signal_id) perSignal.set(row.signal_id, [...(perSignal.get(row.signal_id) ?? []), id]);
      const sent = row.signal_id ? feed.sent.get(row.signal_id)?.sig : undefined;
      const same =
        row.token_id === vo.asset_id &&
        row.side === vo.side &&
        toMicros(row.price) === toMicros(vo.price) &&
        toMicros(row.size) === toMicros(vo.original_size) &&
        (!sent || (sent.token_id === vo.asset_id && sent.side === vo.side && toMicros(sent.price) === toMicros(vo.price) && toMicros(sent.size) === toMicros(vo.original_size)));
      if (!same) v.mismatched.push(`${id}: venue ${vo.side} ${vo.original_size}@${vo.price} ${vo.asset_id}, executor ${row.side} ${row.size}@${row.price} ${row.token_id} (signal ${row.signal_id})`);
      if (row.status === 'rejected') v.rejectedButPlaced.push(`${id} (signal ${row.signal_id}): executor says rejected (${row.reason}), venue has it ${vo.status} matched ${vo.size_matched}`);
    }
    for (const [sid, ids] of perSignal) if (ids.length > 1) v.doubles.push(`${sid}: ${ids.join(', ')}`);
    for (const o of orders) {
      if (toMicros(o.filled) > 0n && !venue.get(o.order_id.toLowerCase())?.placed) v.phantomFills.push(`${o.order_id} (signal ${o.signal_id}): filled ${o.filled}, unknown to the venue`);
    }

    // Positions: Σ over strategies per token against the venue's token balance, exactly.
    const held = new Map<string, bigint>();
    for (const p of this.positionRows()) held.set(p.token_id, (held.get(p.token_id) ?? 0n) + toMicros(p.size));
    for (const token of this.markets.flatMap((m) => m.tokens.map((t) => t.tokenId))) {
      const bal = BigInt((await this.account.getBalanceAllowance({ assetType: 'CONDITIONAL', tokenId: token })).balance);
      const mine = held.get(token) ?? 0n;
      held.delete(token);
      if (bal !== mine) v.positionDiffs.push(`${token.slice(0, 12)}…: executor ${fmt(mine)}, venue ${fmt(bal)}`);
    }
    for (const [token, size] of held) v.positionDiffs.push(`${token}: executor ${fmt(size)}, not a market token`);

    const count = <T>(xs: Iterable<T>, key: (x: T) => string | null | undefined) => {
      const out: Record<string, number> = {};
      for (const x of xs) {
        const k = key(x) ?? '-';
        out[k] = (out[k] ?? 0) + 1;
      }
      return out;
    };
    v.summary = {
      signals: feed.sent.size,
      resent: feed.resent,
      starts: this.starts,
      kills: this.kills,
      startup_kills: this.startupKills,
      signal_status: count(signals.values(), (s) => s.status),
      denials: count([...signals.values()].filter((s) => s.status === 'denied'), (s) => s.code),
      orders: count(orders, (o) => o.status),
      // Why orders ended rejected (the venue's text, cut to its first words), to see that the faults are the venue's.
      rejections: count(
        orders.filter((o) => o.status === 'rejected'),
        (o) => (o.reason ?? '').slice(0, 60),
      ),
      venue_orders: [...venue.values()].filter((o) => o.placed).length,
      executor_trades: this.tradeRowCount(),
      venue_trades: count(trades, (t) => t.status),
    };
    return v;
  }

  /** Stops every process of the rig by pid (SIGTERM, SIGKILL after 12 s) and removes the data dir; idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.watch?.close();
    for (const p of [this.exec, this.sim]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    const deadline = Date.now() + 12_000;
    const alive = () => [this.exec, this.sim].filter((p): p is ChildProcess => !!p && p.exitCode === null && p.signalCode === null);
    while (Date.now() < deadline && alive().length > 0) await sleep(100);
    for (const p of alive()) p.kill('SIGKILL');
    await this.pusher.close(0).catch(() => undefined);
    await this.requester.close().catch(() => undefined);
    this.db?.close();
    for (const l of this.logs.values()) l.end();
    if (process.env.E2E_KEEP) process.stderr.write(`kept ${this.dir}\n`);
    else this.cleanup();
  }
}

const fmt = (micros: bigint) => {
  const neg = micros < 0n;
  const a = neg ? -micros : micros;
  return `${neg ? '-' : ''}${a / 1_000_000n}.${String(a % 1_000_000n).padStart(6, '0')}`;
};

export interface Verdict {
  /** Signals sent that the executor never stored. */
  notStored: string[];
  notFinal: string[];
  openOrders: string[];
  /** Venue orders of the account with no executor row (a second order for some signal, or a lost one). */
  orphans: string[];
  /** Signal ids behind more than one venue order. */
  doubles: string[];
  mismatched: string[];
  phantomFills: string[];
  rejectedButPlaced: string[];
  liveAtVenue: string[];
  tradesNotFinal: string[];
  /** User-channel drops plus venue orders found over REST that the channel never showed. */
  watchGaps: number;
  positionDiffs: string[];
  summary: Record<string, unknown>;
}

interface Book {
  bids: Array<{ price: string; size: string }>;
  asks: Array<{ price: string; size: string }>;
  min_order_size?: string;
}

const CENT = 10_000n; // micros

/**
 * Makes and sends signals the way a strategy would: mostly marketable FAK/FOK buys priced from the
 * venue's book, sells of shares the executor says a strategy holds, GTCs at or near the touch, and a
 * few that risk must deny. Every signal is kept so it can be re-sent (at-least-once delivery).
 */
export class SignalFeed {
  readonly sent = new Map<string, { sig: Unstamped<SignalMessage>; sentAt: number }>();
  resent = 0;
  private readonly books = new Map<string, { at: number; book: Book }>();
  private readonly tokens: Array<{ tokenId: string; market: string; min: number }>;

  constructor(
    private readonly rig: Rig,
    private readonly rng: Rng,
    private readonly tag: string,
    private readonly strategies: readonly string[] = ['e2e_a', 'e2e_b'],
  ) {
    this.tokens = rig.markets.flatMap((m) => m.tokens.map((t) => ({ tokenId: t.tokenId, market: m.conditionId, min: Math.ceil(Number(m.minOrderSize)) })));
  }

  private async book(tokenId: string): Promise<Book> {
    const hit = this.books.get(tokenId);
    if (hit && Date.now() - hit.at < 250) return hit.book;
    const res = await fetch(`${this.rig.base}/book?token_id=${tokenId}`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`GET /book ${tokenId}: ${res.status}`);
    const book = (await res.json()) as Book;
    this.books.set(tokenId, { at: Date.now(), book });
    return book;
  }

  /** Best level is the last one in the venue's BookSummary; prices in cents, buys rounded up and sells down. */
  private static cents(level: { price: string } | undefined, up: boolean): number | undefined {
    if (!level) return undefined;
    const m = toMicros(level.price);
    return Number(up ? (m + CENT - 1n) / CENT : m / CENT);
  }

  async make(i: number): Promise<Unstamped<SignalMessage>> {
    const r = this.rng;
    const strategy = r.pick(this.strategies);
    const id = `${this.tag}-${String(i).padStart(5, '0')}`;
    const base = { type: 'signal' as const, id, strategy, reason: 'e2e' };
    const clamp = (c: number) => Math.min(99, Math.max(1, c)) / 100;
    const u = r.next();

    // Sells: only shares the executor's own positions table says this strategy holds.
    if (u >= 0.55 && u < 0.8) {
      const held = this.rig.positionRows().filter((p) => p.strategy === strategy && Number(p.size) >= 5);
      if (held.length > 0) {
        const p = r.pick(held);
        const t = this.tokens.find((x) => x.tokenId === p.token_id)!;
        const b = await this.book(t.tokenId);
        const size = Math.min(Math.floor(Number(p.size)), t.min + r.int(0, 8));
        if (size >= t.min) {
          const gtc = u >= 0.75;
          const c = gtc ? SignalFeed.cents(b.asks.at(-1), true) : SignalFeed.cents(b.bids.at(-1), false);
          if (c !== undefined) {
            return { ...base, token_id: t.tokenId, market: t.market, side: 'SELL', order_type: gtc ? 'GTC' : 'FAK', price: clamp(gtc ? c : c - r.int(0, 2)), size };
          }
        }
      }
    }
    const t = r.pick(this.tokens);
    const b = await this.book(t.tokenId);
    const ask = SignalFeed.cents(b.asks.at(-1), true);
    const bid = SignalFeed.cents(b.bids.at(-1), false);
    // A few that risk must deny: under the minimum size, or off the tick grid.
    if (u >= 0.97) {
      const c = bid ?? 50;
      return u < 0.985
        ? { ...base, token_id: t.tokenId, market: t.market, side: 'BUY', order_type: 'GTC', price: clamp(c), size: 1 }
        : { ...base, token_id: t.tokenId, market: t.market, side: 'BUY', order_type: 'GTC', price: clamp(c) + 0.005, size: t.min };
    }
    // Resting GTC buys at or one tick under the touch (makers may trade into them later).
    if ((u >= 0.8 || ask === undefined) && bid !== undefined) {
      return { ...base, token_id: t.tokenId, market: t.market, side: 'BUY', order_type: 'GTC', price: clamp(bid - r.int(0, 1)), size: t.min + r.int(0, 10) };
    }
    // Marketable buys, ≥ 1 pUSD: FAK mostly, FOK sometimes, and a GTC that crosses now and then.
    const price = clamp((ask ?? 50) + r.int(0, 2));
    const size = Math.max(t.min, Math.ceil(1.2 / price)) + r.int(0, 10);
    const v = r.next();
    return { ...base, token_id: t.tokenId, market: t.market, side: 'BUY', order_type: v < 0.65 ? 'FAK' : v < 0.9 ? 'FOK' : 'GTC', price, size };
  }

  push(sig: Unstamped<SignalMessage>): void {
    this.sent.set(sig.id, { sig, sentAt: Date.now() });
    if (!this.rig.pusher.push('signal', sig)) throw new Error(`signal ${sig.id} refused by the pusher`);
  }

  /** At-least-once delivery: re-push signals; the executor ignores an id it has already stored. */
  resend(ids: readonly string[]): void {
    for (const id of ids) {
      const s = this.sent.get(id);
      if (!s) continue;
      this.rig.pusher.push('signal', s.sig);
      this.resent++;
    }
  }

  /** Signals sent before `before` that the executor has not stored: lost in a killed process (or still queued). */
  missingBefore(before: number): string[] {
    const stored = this.rig.signalRows();
    return [...this.sent].filter(([id, s]) => s.sentAt < before && !stored.has(id)).map(([id]) => id);
  }
}

/**
 * Sends `signals` signals at `intervalMs` while a killer SIGKILLs the executor `killDelay()` ms
 * after each start and restarts it; when `startupKill()` gives a delay, the restart is killed that
 * long after spawning too, before it answers ping. At most `perLife` signals go out per running
 * executor, so at least signals/perLife − 1 kills happen whatever the machine's speed. Lost signals
 * are re-sent after each restart.
 */
export async function runWithKills(
  rig: Rig,
  feed: SignalFeed,
  o: { signals: number; intervalMs: number; perLife: number; killDelay: () => number; startupKill: () => number | undefined },
): Promise<void> {
  let done = false;
  let failure: unknown;
  const killer = (async () => {
    while (!done) {
      const until = Date.now() + o.killDelay();
      while (!done && Date.now() < until) await sleep(20);
      if (done) break;
      const killedAt = Date.now();
      await rig.killExecutor();
      const early = o.startupKill();
      if (early !== undefined) {
        rig.spawnExecutor();
        await sleep(early);
        await rig.killExecutor(true);
      }
      await rig.startExecutor();
      feed.resend(feed.missingBefore(killedAt));
    }
  })().catch((err: unknown) => {
    failure = err;
    done = true;
  });
  for (let i = 0; i < o.signals && !done; i++) {
    while (!done && i >= o.perLife * (rig.kills + 1)) await sleep(20);
    feed.push(await feed.make(i));
    await sleep(o.intervalMs);
  }
  done = true;
  await killer;
  if (failure) throw failure;
}

/** Sends `signals` signals at `intervalMs`, no kills. */
export async function runSignals(feed: SignalFeed, o: { signals: number; intervalMs: number }): Promise<void> {
  for (let i = 0; i < o.signals; i++) {
    feed.push(await feed.make(i));
    await sleep(o.intervalMs);
  }
}

export function summaryLine(name: string, v: Verdict): string {
  return `[${name}] ${JSON.stringify(v.summary)}`;
}
