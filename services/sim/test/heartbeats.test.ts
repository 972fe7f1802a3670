import { createLogger, loadConfig } from '@polybot/core';
import { buildL2Headers } from '@polybot/polymarket';
import { tempDataDir } from '@polybot/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiKeyStore } from '../src/auth.js';
import { HeartbeatTracker } from '../src/heartbeats.js';
import { SimConfig } from '../src/index.js';
import { registerHeartbeatRoutes } from '../src/routes/heartbeats.js';
import type { ServerDeps } from '../src/server.js';
import { startSim, type RunningSim } from './helpers.js';

const ALICE = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const BOB = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

describe('HeartbeatTracker', () => {
  const make = () => {
    let t = 1_000;
    let n = 0;
    const expired: string[] = [];
    const tracker = new HeartbeatTracker({ timeoutMs: 15_000, now: () => t, newId: () => `id-${++n}`, onExpired: (a) => expired.push(a) });
    return { tracker, expired, advance: (ms: number) => void (t += ms) };
  };

  it('chains ids per account', () => {
    const { tracker } = make();
    expect(tracker.beat(ALICE, '')).toEqual({ ok: true, heartbeatId: 'id-1' });
    expect(tracker.beat(BOB, '')).toEqual({ ok: true, heartbeatId: 'id-2' });
    expect(tracker.beat(ALICE.toLowerCase(), 'id-1')).toEqual({ ok: true, heartbeatId: 'id-3' });
    // A stale, foreign or restarted id is refused with the one expected; the chain is unchanged.
    expect(tracker.beat(ALICE, 'id-1')).toEqual({ ok: false, expected: 'id-3' });
    expect(tracker.beat(ALICE, 'id-2')).toEqual({ ok: false, expected: 'id-3' });
    expect(tracker.beat(ALICE, '')).toEqual({ ok: false, expected: 'id-3' });
    expect(tracker.beat(ALICE, 'id-3')).toEqual({ ok: true, heartbeatId: 'id-4' });
  });

  it('expires a silent account once, after more than the timeout, and restarts its chain', () => {
    const { tracker, expired, advance } = make();
    tracker.beat(ALICE, '');
    tracker.beat(BOB, '');
    advance(10_000);
    tracker.beat(BOB, 'id-2');
    advance(5_000); // Alice silent exactly 15 s: not yet
    expect(tracker.sweep()).toEqual([]);
    advance(1);
    expect(tracker.sweep()).toEqual([ALICE.toLowerCase()]);
    expect(tracker.sweep()).toEqual([]);
    advance(60_000);
    expect(tracker.sweep()).toEqual([BOB.toLowerCase()]);
    expect(expired).toEqual([ALICE.toLowerCase(), BOB.toLowerCase()]);
    // Silence without any heartbeat never fires; an expired account starts again from "".
    expect(tracker.expectedId(ALICE)).toBeUndefined();
    expect(tracker.beat(ALICE, 'id-1')).toEqual({ ok: false, expected: '' });
    expect(tracker.beat(ALICE, '')).toMatchObject({ ok: true });
    expect(expired).toHaveLength(2);
  });

  it('expires on the next request even when the sweep has not run yet', () => {
    const { tracker, expired, advance } = make();
    const first = tracker.beat(ALICE, '');
    advance(20_000);
    expect(tracker.beat(ALICE, first.ok ? first.heartbeatId : '')).toEqual({ ok: false, expected: '' });
    expect(expired).toEqual([ALICE.toLowerCase()]);
    expect(tracker.sweep()).toEqual([]);
  });

  it('legacy touches keep an account alive without moving the chain', () => {
    const { tracker, expired, advance } = make();
    tracker.beat(ALICE, '');
    for (let i = 0; i < 5; i++) {
      advance(10_000);
      tracker.touch(ALICE);
    }
    expect(tracker.sweep()).toEqual([]);
    expect(tracker.beat(ALICE, 'id-1')).toEqual({ ok: true, heartbeatId: 'id-2' });
    advance(15_001);
    tracker.sweep();
    expect(expired).toEqual([ALICE.toLowerCase()]);
  });
});

describe('heartbeat routes', () => {
  let app: FastifyInstance;
  let t = 0;
  let expired: string[] = [];
  let ids = 0;
  const tmp = tempDataDir('pbsim-hb');

  const build = async (env: Record<string, string> = {}, extra: Partial<ServerDeps> = {}) => {
    t = 1_000_000;
    ids = 0;
    expired = [];
    const config = loadConfig(SimConfig, { env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_LOG_LEVEL: 'silent', POLYBOT_SIM_REQUIRE_AUTH: 'false', ...env }, envFile: false });
    const deps = {
      config,
      auth: createApiKeyStore(),
      log: createLogger('sim-test', { level: 'silent' }),
      onHeartbeatExpired: (a: string) => expired.push(a),
      ...extra,
    } as unknown as ServerDeps;
    app = Fastify({ logger: false });
    registerHeartbeatRoutes(app, deps, { now: () => t, newId: () => `hb-${++ids}`, checkIntervalMs: 10 });
    await app.ready();
  };
  const beat = (id: unknown, address: string | null = ALICE) =>
    app.inject({ method: 'POST', url: '/v1/heartbeats', headers: address ? { POLY_ADDRESS: address } : {}, payload: { heartbeat_id: id } });

  afterEach(async () => {
    await app?.close();
  });
  afterAll(() => tmp.cleanup());

  it('starts with "", chains ids and answers a mismatch with the expected id', async () => {
    await build();
    const a = await beat('');
    expect(a.statusCode).toBe(200);
    expect(a.json()).toEqual({ heartbeat_id: 'hb-1' });
    expect((await beat('hb-1')).json()).toEqual({ heartbeat_id: 'hb-2' });
    const bad = await beat('hb-1');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error_msg: 'Invalid Heartbeat ID', heartbeat_id: 'hb-2' });
    // Accounts are separate; Python clients send null for the first beat.
    expect((await beat(null, BOB)).json()).toEqual({ heartbeat_id: 'hb-3' });
    expect((await beat('hb-2')).json()).toEqual({ heartbeat_id: 'hb-4' });
    expect((await beat(7)).statusCode).toBe(400);
  });

  it('refuses a caller without an account', async () => {
    await build();
    const r = await beat('', null);
    expect(r.statusCode).toBe(401);
    expect(r.json()).toEqual({ error: 'Unauthorized/Invalid api key' });
    const legacy = await app.inject({ method: 'POST', url: '/heartbeats', headers: { POLY_ADDRESS: 'nope' } });
    expect(legacy.statusCode).toBe(401);
  });

  it('fires onHeartbeatExpired once from the timer after the configured silence', async () => {
    await build({ POLYBOT_SIM_HEARTBEAT_TIMEOUT_MS: '2000' });
    await beat('');
    await beat('', BOB);
    t += 1_500;
    await beat('hb-2', BOB);
    t += 600; // Alice silent 2.1 s, Bob 0.6 s: only the sweep timer can notice, no request arrives
    await vi.waitFor(() => expect(expired).toEqual([ALICE.toLowerCase()]), { timeout: 2000, interval: 5 });
    await new Promise((r) => setTimeout(r, 60));
    expect(expired).toEqual([ALICE.toLowerCase()]);
    // Her chain restarted.
    expect((await beat('hb-1')).json()).toEqual({ error_msg: 'Invalid Heartbeat ID', heartbeat_id: '' });
  });

  it('survives a throwing expiry handler', async () => {
    await build({}, { onHeartbeatExpired: () => {
      throw new Error('boom');
    } });
    await beat('');
    t += 15_001;
    await new Promise((r) => setTimeout(r, 60));
    expect((await beat('')).json()).toEqual({ heartbeat_id: 'hb-2' });
  });

  it('with auth required, identifies the account by its L2 API key', async () => {
    const auth = createApiKeyStore();
    const creds = { apiKey: '00000000-0000-4000-8000-000000000001', secret: Buffer.alloc(32, 7).toString('base64url') + '=', passphrase: 'p'.repeat(64) };
    auth.put({ ...creds, address: ALICE, nonce: 0, createdAt: 0 });
    await build({ POLYBOT_SIM_REQUIRE_AUTH: 'true' }, { auth });
    const payload = JSON.stringify({ heartbeat_id: '' });
    const headers = { ...buildL2Headers(creds, ALICE, { method: 'POST', requestPath: '/v1/heartbeats', body: payload }), 'content-type': 'application/json' };
    const ok = await app.inject({ method: 'POST', url: '/v1/heartbeats', headers, payload });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ heartbeat_id: 'hb-1' });
    // A bare address is not enough, and a bad signature is refused.
    expect((await beat('hb-1')).statusCode).toBe(401);
    const forged = await app.inject({ method: 'POST', url: '/v1/heartbeats', headers: { ...headers, POLY_SIGNATURE: 'x' }, payload });
    expect(forged.statusCode).toBe(401);
    expect(forged.json()).toEqual({ error: 'Unauthorized/Invalid api key' });
  });

  it('legacy POST /heartbeats answers {"status":"ok"}', async () => {
    await build();
    const r = await app.inject({ method: 'POST', url: '/heartbeats', headers: { POLY_ADDRESS: ALICE } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ status: 'ok' });
  });
});

describe('heartbeat routes in the running simulator', () => {
  let sim: RunningSim;
  beforeAll(async () => {
    sim = await startSim({ POLYBOT_SIM_MARKETS: '1', POLYBOT_SIM_EVENT_RATE: '0' });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('serves /v1/heartbeats and /heartbeats', async () => {
    const post = (path: string, body?: unknown) =>
      fetch(`${sim.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', POLY_ADDRESS: ALICE }, body: JSON.stringify(body ?? {}) });
    const a = await post('/v1/heartbeats', { heartbeat_id: '' });
    expect(a.status).toBe(200);
    const { heartbeat_id: id } = (await a.json()) as { heartbeat_id: string };
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const b = await post('/v1/heartbeats', { heartbeat_id: id });
    expect(b.status).toBe(200);
    const again = await post('/v1/heartbeats', { heartbeat_id: id });
    expect(again.status).toBe(400);
    expect(await again.json()).toEqual({ error_msg: 'Invalid Heartbeat ID', heartbeat_id: ((await b.json()) as { heartbeat_id: string }).heartbeat_id });
    const legacy = await post('/heartbeats');
    expect(await legacy.json()).toEqual({ status: 'ok' });
  });
});
