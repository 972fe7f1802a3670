import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, waitFor } from '@polybot/testkit';
import { startSim, type RunningSim } from '../../../services/sim/test/helpers.js';
import { buildL2Headers, createOrDeriveApiKey } from '../src/auth.js';
import type { ApiCreds } from '../src/schemas.js';
import { ClobAccountClient, type AuthHeadersFn } from '../src/clob-account.js';
import { ClobTradingClient } from '../src/clob-trading.js';
import { HeartbeatLoop, type HeartbeatClock, type HeartbeatLoopOptions, type HeartbeatLogger, type HeartbeatResync } from '../src/heartbeat.js';
import { buildSignedOrder } from '../src/order.js';

// ---------------------------------------------------------------- a fake clock and a scripted venue

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
  dead: boolean;
}

/** Time moves only in `advance`; timers fire in time order and promise chains settle between them. */
class FakeClock implements HeartbeatClock {
  t = 1_800_000_000_000;
  private seq = 0;
  private timers: FakeTimer[] = [];
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, dead: false };
    this.timers.push(timer);
    return timer;
  };
  clearTimeout = (h: unknown): void => {
    if (h) (h as FakeTimer).dead = true;
  };
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const next = this.timers.filter((x) => !x.dead && x.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.t = next.at;
      next.dead = true;
      next.fn();
    }
    this.t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang' | 'network';

/** A venue that answers heartbeats from a script and records what it was sent. */
function scriptedVenue() {
  const sent: Array<{ id: unknown; headers: Record<string, string> }> = [];
  const replies: Reply[] = [];
  let n = 0;
  const fetchImpl: typeof fetch = async (_input, init) => {
    const body = JSON.parse(String(init?.body)) as { heartbeat_id: unknown };
    sent.push({ id: body.heartbeat_id, headers: init?.headers as Record<string, string> });
    const r = replies.shift() ?? { status: 200, body: { heartbeat_id: `hb-${++n}` } };
    if (r === 'network') throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    if (r === 'hang') {
      return new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason), { once: true }));
    }
    return new Response(r.body === undefined ? '' : JSON.stringify(r.body), { status: r.status, headers: { 'content-type': 'application/json', ...r.headers } });
  };
  return { sent, replies, fetchImpl };
}

const SECRET_HEADERS = { POLY_API_KEY: 'api-key-0123456789', POLY_PASSPHRASE: 'passphrase-0123456789', POLY_SIGNATURE: 'signature-0123456789' };

function recordingLogger(): { lines: unknown[]; log: HeartbeatLogger } {
  const lines: unknown[] = [];
  const rec = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj: obj instanceof Error ? String(obj) : obj, msg });
  return { lines, log: { debug: rec('debug'), info: rec('info'), warn: rec('warn') } };
}

function fakeLoop(extra: Partial<HeartbeatLoopOptions> = {}) {
  const clock = new FakeClock();
  const venue = scriptedVenue();
  const changes: Array<[boolean, string]> = [];
  const resyncs: HeartbeatResync[] = [];
  const { lines, log } = recordingLogger();
  const loop = new HeartbeatLoop({
    baseUrl: 'http://venue.invalid',
    authHeaders: () => ({ ...SECRET_HEADERS }),
    intervalMs: 1000,
    expiryMs: 3000,
    marginMs: 500,
    retryMs: 200,
    timeoutMs: 2400,
    fetch: venue.fetchImpl,
    clock,
    log,
    onChange: (h, why) => changes.push([h, why]),
    onResync: (e) => resyncs.push(e),
    ...extra,
  });
  return { clock, venue, changes, resyncs, lines, loop };
}

describe('HeartbeatLoop on a fake clock', () => {
  it('chains the ids the venue returns and reports healthy once', async () => {
    const { clock, venue, changes, loop } = fakeLoop();
    expect(loop.healthy).toBe(false);
    loop.start();
    await clock.advance(0);
    expect(loop.healthy).toBe(true);
    await clock.advance(3000);
    expect(venue.sent.map((s) => s.id)).toEqual(['', 'hb-1', 'hb-2', 'hb-3']);
    expect(loop.heartbeatId).toBe('hb-4');
    expect(changes).toEqual([[true, 'heartbeat accepted']]);
    expect(loop.stats).toMatchObject({ sent: 4, accepted: 4, failed: 0, rejected: 0 });
    await loop.stop();
  });

  it('turns unhealthy on a failure, retries soon and recovers on the same chain', async () => {
    const { clock, venue, changes, loop } = fakeLoop();
    loop.start();
    await clock.advance(0);
    venue.replies.push({ status: 500, body: { error: 'internal error' } }, 'network');
    await clock.advance(1000);
    expect(loop.healthy).toBe(false);
    expect(changes.at(-1)).toEqual([false, expect.stringMatching(/^heartbeat failed: server_error: POST \/v1\/heartbeats: HTTP 500 internal error/)]);
    await clock.advance(200);
    expect(loop.healthy).toBe(false);
    await clock.advance(200);
    expect(loop.healthy).toBe(true);
    // Failed beats never advanced the chain, so the next one carries the last id the venue gave.
    expect(venue.sent.map((s) => s.id)).toEqual(['', 'hb-1', 'hb-1', 'hb-1']);
    expect(changes.map(([h]) => h)).toEqual([true, false, true]);
    await loop.stop();
  });

  it('turns unhealthy when the last accepted beat gets too old, even while a request hangs', async () => {
    const { clock, venue, changes, loop } = fakeLoop();
    loop.start();
    await clock.advance(0);
    venue.replies.push('hang');
    // The beat at 1000 hangs; expiry 3000 - margin 500 → stale just after 2500, before the 2400 ms timeout ends at 3400.
    await clock.advance(2500);
    expect(loop.healthy).toBe(true);
    await clock.advance(1);
    expect(loop.healthy).toBe(false);
    expect(changes.at(-1)).toEqual([false, 'heartbeat stale: last accepted beat 2501 ms ago']);
    await clock.advance(900);
    expect(loop.stats.failed).toBe(1);
    expect(changes.filter(([h]) => !h)).toHaveLength(1);
    await clock.advance(200);
    expect(loop.healthy).toBe(true);
    await loop.stop();
  });

  it('takes the id the venue expects when it refuses ours, without a gap in health', async () => {
    const { clock, venue, changes, resyncs, loop } = fakeLoop();
    loop.start();
    await clock.advance(0);
    venue.replies.push({ status: 400, body: { error_msg: 'Invalid Heartbeat ID', heartbeat_id: 'hb-other' } });
    await clock.advance(1000);
    expect(venue.sent.map((s) => s.id)).toEqual(['', 'hb-1', 'hb-other']);
    expect(resyncs).toEqual([{ chainLost: false, message: 'Invalid Heartbeat ID' }]);
    expect(loop.healthy).toBe(true);
    expect(changes).toEqual([[true, 'heartbeat accepted']]);

    // The venue forgot the chain (its switch fired): start a new one and say so.
    venue.replies.push({ status: 400, body: { error_msg: 'Invalid Heartbeat ID', heartbeat_id: '' } });
    await clock.advance(1000);
    expect(venue.sent.at(-1)!.id).toBe('');
    expect(resyncs.at(-1)).toEqual({ chainLost: true, message: 'Invalid Heartbeat ID' });
    expect(loop.stats).toMatchObject({ rejected: 2, chainsLost: 1 });
    expect(loop.healthy).toBe(true);
    await loop.stop();
  });

  it('counts a refusal of the resynced id too as a failure', async () => {
    const { clock, venue, loop } = fakeLoop();
    loop.start();
    venue.replies.push({ status: 400, body: { error_msg: 'Invalid Heartbeat ID' } }, { status: 400, body: { error_msg: 'Invalid Heartbeat ID' } });
    await clock.advance(0);
    expect(loop.healthy).toBe(false);
    expect(loop.stats).toMatchObject({ rejected: 2, failed: 1, accepted: 0 });
    await clock.advance(200);
    expect(loop.healthy).toBe(true);
    await loop.stop();
  });

  it('waits out a 429 Retry-After, but never longer than the interval', async () => {
    const { clock, venue, loop } = fakeLoop({ intervalMs: 1500 });
    loop.start();
    venue.replies.push({ status: 429, body: { error: 'Too Many Requests' }, headers: { 'retry-after': '1' } });
    await clock.advance(0);
    await clock.advance(999);
    expect(venue.sent).toHaveLength(1);
    await clock.advance(1);
    expect(venue.sent).toHaveLength(2);
    venue.replies.push({ status: 429, body: { error: 'Too Many Requests' }, headers: { 'retry-after': '60' } });
    await clock.advance(1500);
    expect(venue.sent).toHaveLength(3);
    await clock.advance(1500);
    expect(venue.sent).toHaveLength(4);
    expect(loop.healthy).toBe(true);
    await loop.stop();
  });

  it('stops: reports unhealthy, aborts the beat in flight and sends nothing more', async () => {
    const { clock, venue, changes, loop } = fakeLoop();
    loop.start();
    await clock.advance(0);
    venue.replies.push('hang');
    await clock.advance(1000);
    await loop.stop();
    expect(changes.at(-1)).toEqual([false, 'stopped']);
    expect(loop.healthy).toBe(false);
    const count = venue.sent.length;
    await clock.advance(10_000);
    expect(venue.sent).toHaveLength(count);
    // Starting again carries on with the id it had; health waits for a new accepted beat.
    loop.start();
    expect(loop.healthy).toBe(false);
    await clock.advance(0);
    expect(venue.sent.at(-1)!.id).toBe('hb-1');
    expect(changes.at(-1)).toEqual([true, 'heartbeat accepted']);
    await loop.stop();
  });

  it('never logs or reports credentials, even when the venue echoes them', async () => {
    const { clock, venue, changes, lines, loop } = fakeLoop();
    loop.start();
    venue.replies.push({ status: 401, body: { error: `Unauthorized/Invalid api key ${JSON.stringify(SECRET_HEADERS)}` } }, 'network');
    await clock.advance(0);
    await clock.advance(200);
    await clock.advance(200);
    expect(loop.healthy).toBe(true);
    expect(venue.sent[0]!.headers).toMatchObject(SECRET_HEADERS);
    const text = JSON.stringify({ lines, changes });
    expect(text).toContain('unauthorized');
    for (const v of Object.values(SECRET_HEADERS)) expect(text).not.toContain(v);
    await loop.stop();
  });

  it('survives a throwing onChange handler and one that stops the loop', async () => {
    const thrower = fakeLoop({
      onChange: () => {
        throw new Error('handler bug');
      },
    });
    thrower.loop.start();
    await thrower.clock.advance(2000);
    expect(thrower.venue.sent).toHaveLength(3);
    expect(thrower.loop.healthy).toBe(true);
    expect(JSON.stringify(thrower.lines)).toContain('heartbeat onChange handler failed');
    await thrower.loop.stop();

    let stopping: Promise<void> | undefined;
    const stopper = fakeLoop({ onChange: (h) => void (h && (stopping = stopper.loop.stop())) });
    stopper.loop.start();
    await stopper.clock.advance(5000);
    await stopping;
    expect(stopper.venue.sent).toHaveLength(1);
    expect(stopper.loop.isRunning).toBe(false);
  });

  it('refuses settings that could not keep the switch fed', () => {
    const base = { baseUrl: 'http://x', authHeaders: () => ({}) };
    expect(() => new HeartbeatLoop({ ...base, intervalMs: 9000, expiryMs: 10_000, marginMs: 2000 })).toThrow(RangeError);
    expect(() => new HeartbeatLoop({ ...base, intervalMs: 0 })).toThrow(RangeError);
    expect(() => new HeartbeatLoop(base)).not.toThrow();
  });
});

// ---------------------------------------------------------------- against the simulator

// The public Hardhat account #0 of the shared vectors; never funded anywhere.
const shared = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/polymarket');
const TEST_KEY = (JSON.parse(readFileSync(resolve(shared, 'vectors/l1_clob_auth.json'), 'utf8')) as { cases: Array<{ privateKey: string }> }).cases[0]!.privateKey;
/** A short dead-man window so the test waits seconds, not the venue's 15. */
const WINDOW_MS = 3000;

describe('HeartbeatLoop against the simulator (auth required)', () => {
  let sim: RunningSim;
  let creds: ApiCreds;
  let auth: AuthHeadersFn;
  let trading: ClobTradingClient;
  let account: ClobAccountClient;
  let tokenId: string;
  const wallet = new Wallet(TEST_KEY);
  /** Every heartbeat exchange, in order: the id sent and the id answered (or the status). */
  const wire: Array<{ sent: string; got: string | number }> = [];
  const recordingFetch: typeof fetch = async (input, init) => {
    const sent = (JSON.parse(String(init?.body)) as { heartbeat_id: string }).heartbeat_id;
    const res = await fetch(input, init);
    const text = await res.clone().text();
    let got: string | number = res.status;
    try {
      const id = (JSON.parse(text) as { heartbeat_id?: unknown }).heartbeat_id;
      if (res.status === 200 && typeof id === 'string') got = id;
    } catch {
      // keep the status
    }
    wire.push({ sent, got });
    return res;
  };

  const loopFor = (changes: Array<[boolean, string]>, resyncs: HeartbeatResync[] = []) =>
    new HeartbeatLoop({
      baseUrl: sim.base,
      authHeaders: auth,
      intervalMs: 250,
      expiryMs: WINDOW_MS,
      marginMs: 1000,
      retryMs: 100,
      timeoutMs: 1000,
      fetch: recordingFetch,
      onChange: (h, why) => changes.push([h, why]),
      onResync: (e) => resyncs.push(e),
    });

  async function restingOrder(): Promise<string> {
    const book = (await (await fetch(`${sim.base}/book?token_id=${tokenId}`)).json()) as { bids: Array<{ price: string }> };
    const price = Math.max(0.01, Number(book.bids.at(-1)!.price) - 0.1).toFixed(2);
    const order = buildSignedOrder({ wallet, tokenId, side: 'BUY', price, size: '5', orderType: 'GTC', tickSize: '0.01', negRisk: false });
    const out = await trading.postOrder({ order, owner: creds.apiKey, orderType: 'GTC' });
    if (out.kind !== 'accepted' || !out.response.orderID) throw new Error(`order not accepted: ${JSON.stringify(out)}`);
    return out.response.orderID;
  }

  beforeAll(async () => {
    sim = await startSim({
      POLYBOT_SIM_REQUIRE_AUTH: 'true',
      POLYBOT_SIM_MARKETS: '2',
      POLYBOT_SIM_EVENT_RATE: '0',
      POLYBOT_SIM_HEARTBEAT_TIMEOUT_MS: String(WINDOW_MS),
    });
    creds = await createOrDeriveApiKey(sim.base, wallet);
    auth = (method, path, body) => ({ ...buildL2Headers(creds, wallet.address, { method, requestPath: path, body }) });
    trading = new ClobTradingClient({ baseUrl: sim.base, authHeaders: auth });
    account = new ClobAccountClient({ baseUrl: sim.base, authHeaders: auth });
    const markets = (await (await fetch(`${sim.base}/markets?limit=2`)).json()) as Array<{ clobTokenIds: string }>;
    tokenId = (JSON.parse(markets[0]!.clobTokenIds) as string[])[0]!;
  }, 120_000);

  afterAll(async () => {
    await sim?.stop();
  });

  it('keeps orders alive while beating; once stopped the sim cancels them; a restart starts a new chain', async () => {
    const changes: Array<[boolean, string]> = [];
    const resyncs: HeartbeatResync[] = [];
    const loop = loopFor(changes, resyncs);
    const orderId = await restingOrder();
    try {
      loop.start();
      await waitFor(() => loop.healthy, { what: 'a healthy heartbeat loop' });
      expect(changes[0]).toEqual([true, 'heartbeat accepted']);
      await waitFor(() => wire.filter((w) => typeof w.got === 'string').length >= 4, { what: 'four accepted heartbeats' });
      // Each beat carries the id the previous answer returned.
      const accepted = wire.filter((w) => typeof w.got === 'string');
      expect(accepted[0]!.sent).toBe('');
      for (let i = 1; i < accepted.length; i++) expect(accepted[i]!.sent).toBe(accepted[i - 1]!.got);
      expect(new Set(accepted.map((w) => w.got)).size).toBe(accepted.length);

      // Longer than the window: the switch stays fed.
      await sleep(WINDOW_MS + 500);
      expect((await account.getOrder(orderId))?.status).toBe('LIVE');

      await loop.stop();
      expect(changes.at(-1)).toEqual([false, 'stopped']);
      await waitFor(async () => (await account.getOrder(orderId))?.status === 'CANCELED', { timeoutMs: 30_000, what: 'the sim to cancel orders after heartbeats stop' });
      expect((await account.getOpenOrders()).items).toEqual([]);

      // The sim forgot the chain when it fired: our old id is refused and the loop starts over.
      loop.start();
      await waitFor(() => loop.healthy, { what: 'healthy again on a new chain' });
      expect(resyncs).toEqual([{ chainLost: true, message: 'Invalid Heartbeat ID' }]);
      const tail = wire.slice(-2);
      expect(tail[0]!.got).toBe(400);
      expect(tail[1]!.sent).toBe('');
    } finally {
      await loop.stop();
    }
  });

  it('a fresh loop joins the chain the venue still expects', async () => {
    const first = loopFor([]);
    first.start();
    await waitFor(() => first.healthy, { what: 'first loop healthy' });
    await first.stop();
    // As after a process restart inside the window: the new loop starts with "" and is refused.
    const changes: Array<[boolean, string]> = [];
    const resyncs: HeartbeatResync[] = [];
    const second = loopFor(changes, resyncs);
    try {
      second.start();
      await waitFor(() => second.healthy, { what: 'second loop healthy' });
      expect(resyncs).toEqual([{ chainLost: false, message: 'Invalid Heartbeat ID' }]);
      expect(second.heartbeatId).not.toBe(first.heartbeatId);
      expect(changes).toEqual([[true, 'heartbeat accepted']]);
    } finally {
      await second.stop();
    }
  });

  it('turns unhealthy when the venue refuses the key, and says why', async () => {
    const changes: Array<[boolean, string]> = [];
    const loop = new HeartbeatLoop({
      baseUrl: sim.base,
      authHeaders: (method, path, body) => ({ ...buildL2Headers({ ...creds, passphrase: 'wrong-passphrase' }, wallet.address, { method, requestPath: path, body }) }),
      intervalMs: 250,
      expiryMs: WINDOW_MS,
      marginMs: 1000,
      retryMs: 100,
      onChange: (h, why) => changes.push([h, why]),
    });
    try {
      loop.start();
      await waitFor(() => loop.stats.failed >= 2, { what: 'two failed beats' });
      expect(loop.healthy).toBe(false);
      // Never healthy, so nothing changed: the executor starts from unhealthy.
      expect(changes).toEqual([]);
    } finally {
      await loop.stop();
    }
  });
});
