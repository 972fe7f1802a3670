import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Wallet as WalletV5 } from '@ethersproject/wallet';
import { ClobClient } from '@polymarket/clob-client-v2';
import { createLogger } from '@polybot/core';
import { buildL1Headers, buildL2Headers, createOrDeriveApiKey, hmacSignature, type ApiCreds } from '@polybot/polymarket';
import { tempDataDir } from '@polybot/testkit';
import { Wallet } from 'ethers';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKeyStore, requireL2, verifyL1 } from '../src/auth.js';
import { registerAuthRoutes } from '../src/routes/auth.js';
import type { ServerDeps } from '../src/server.js';
import { startSim, type RunningSim } from './helpers.js';

// Hardhat account #0 (the official vectors' key) and another throwaway key.
const KEY0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const w0 = new Wallet(KEY0);
const w1 = Wallet.createRandom();
const now = () => Math.floor(Date.now() / 1000);
const keyFile = (dir: string) => join(dir, 'sim', 'api-keys.json');

describe('api key store', () => {
  const tmp = tempDataDir('pbauth');
  afterAll(() => tmp.cleanup());

  it('persists keys privately, reloads them and derives the same creds per data dir', () => {
    const a = createApiKeyStore({ dataDir: tmp.dir });
    expect(statSync(join(tmp.dir, 'sim')).mode & 0o777).toBe(0o700);
    expect(statSync(keyFile(tmp.dir)).mode & 0o777).toBe(0o600);
    const creds = a.derive?.(w0.address, 0);
    expect(creds?.apiKey).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(creds?.secret).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    expect(Buffer.from(creds?.secret ?? '', 'base64')).toHaveLength(32);
    expect(creds?.passphrase).toMatch(/^[0-9a-f]{64}$/);
    expect(a.derive?.(w0.address.toLowerCase(), 0)).toEqual(creds);
    expect(a.derive?.(w0.address, 1)?.apiKey).not.toBe(creds?.apiKey);
    a.put({ ...(creds as ApiCreds), address: w0.address, nonce: 0, createdAt: 1 });
    expect(statSync(keyFile(tmp.dir)).mode & 0o777).toBe(0o600);

    const b = createApiKeyStore({ dataDir: tmp.dir });
    expect(b.get(creds?.apiKey ?? '')).toMatchObject({ address: w0.address.toLowerCase(), nonce: 0, createdAt: 1 });
    expect(b.byAddress(w0.address)).toHaveLength(1);
    expect(b.derive?.(w0.address, 0)).toEqual(creds);
    expect(b.delete?.(creds?.apiKey ?? '')).toBe(true);
    expect(createApiKeyStore({ dataDir: tmp.dir }).byAddress(w0.address)).toEqual([]);

    // Another data dir has another server secret.
    const other = tempDataDir('pbauth2');
    try {
      expect(createApiKeyStore({ dataDir: other.dir }).derive?.(w0.address, 0)).not.toEqual(creds);
    } finally {
      other.cleanup();
    }
  });

  it('an in-memory store binds to a data dir later', () => {
    const t = tempDataDir('pbauth3');
    try {
      const s = createApiKeyStore();
      s.attach?.(t.dir);
      s.put({ ...(s.derive?.(w1.address, 0) as ApiCreds), address: w1.address, nonce: 0, createdAt: 2 });
      expect(createApiKeyStore({ dataDir: t.dir }).byAddress(w1.address)).toHaveLength(1);
    } finally {
      t.cleanup();
    }
  });
});

describe('verifyL1', () => {
  it('accepts the ClobAuth signature of POLY_ADDRESS and nothing else', async () => {
    const ts = now();
    const h = await buildL1Headers(w0, { timestampS: ts, nonce: 3 });
    const headers = (x: Record<string, string>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k.toLowerCase(), v]));
    expect(verifyL1(headers({ ...h }), 137)).toEqual({ address: w0.address.toLowerCase(), nonce: 3 });
    // rs-clob-client sends the address lower case.
    expect(verifyL1(headers({ ...h, POLY_ADDRESS: w0.address.toLowerCase() }), 137)).toBeDefined();
    expect(verifyL1(headers({ ...h }), 80002)).toBeUndefined();
    expect(verifyL1(headers({ ...h, POLY_ADDRESS: w1.address }), 137)).toBeUndefined();
    expect(verifyL1(headers({ ...h, POLY_NONCE: '4' }), 137)).toBeUndefined();
    expect(verifyL1(headers({ ...h, POLY_TIMESTAMP: String(ts + 1) }), 137)).toBeUndefined();
    expect(verifyL1(headers({ ...h, POLY_SIGNATURE: '0x1234' }), 137)).toBeUndefined();
    expect(verifyL1(headers({ ...h }), 137, { nowS: ts + 301 })).toBeUndefined();
    expect(verifyL1(headers({ ...h }), 137, { nowS: ts - 300 })).toBeDefined();
    expect(verifyL1(headers({ ...h }), 137, { nowS: ts + 20, skewS: 10 })).toBeUndefined();
    const { POLY_SIGNATURE: _s, ...unsigned } = h;
    expect(verifyL1(headers(unsigned), 137)).toBeUndefined();
  });
});

/** The auth routes plus a private echo route on a bare Fastify instance. */
async function authApp(dataDir: string, required: boolean, extra: Partial<ServerDeps['config']> = {}) {
  const store = createApiKeyStore();
  const created: string[] = [];
  let handled = 0;
  const app = Fastify({ logger: false });
  const deps = {
    auth: store,
    dataDir,
    log: createLogger('sim', { level: 'silent' }),
    config: { POLYBOT_SIM_REQUIRE_AUTH: required, POLYBOT_SIM_AUTH_SKEW_S: 300, ...extra },
    onAccountCreated: (a: string) => void created.push(a),
  } as unknown as ServerDeps;
  registerAuthRoutes(app, deps);
  const guard = requireL2(store, { required });
  const echo = async (req: { auth?: unknown; body?: unknown }) => {
    handled++;
    return { auth: req.auth ?? null, body: req.body ?? null };
  };
  app.post('/private', { preHandler: guard }, echo);
  app.delete('/private', { preHandler: guard }, echo);
  app.get('/private/:id', { preHandler: guard }, echo);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return { app, store, base, created, handled: () => handled };
}

describe('auth routes and requireL2', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let t: Awaited<ReturnType<typeof authApp>>;
  let app: FastifyInstance;

  beforeEach(async () => {
    tmp = tempDataDir('pbauthr');
    t = await authApp(tmp.dir, true);
    app = t.app;
  });
  afterEach(async () => {
    await app.close();
    tmp.cleanup();
  });

  const l1 = async (w: Wallet | typeof w1, opts: { nonce?: number; timestampS?: number; chainId?: number } = {}) => ({ ...(await buildL1Headers(w, opts)) });
  const snapshot = () => ({ file: readFileSync(keyFile(tmp.dir), 'utf8'), keys: t.store.byAddress(w0.address).length + t.store.byAddress(w1.address).length });
  const call = async (method: string, path: string, headers: Record<string, string> = {}, body?: string) => {
    const res = await fetch(`${t.base}${path}`, { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
  const l2 = (c: ApiCreds, method: string, path: string, body?: string, over: { address?: string; timestampS?: number } = {}) => ({
    ...buildL2Headers(c, over.address ?? w0.address, { method, requestPath: path, body: body ?? null, timestampS: over.timestampS ?? now() }),
  });

  it('creates, refuses to re-create, derives; opens the account once', async () => {
    const r = await call('POST', '/auth/api-key', await l1(w0));
    expect(r.status).toBe(200);
    const creds = r.body as ApiCreds;
    expect(Object.keys(creds).sort()).toEqual(['apiKey', 'passphrase', 'secret']);
    expect(t.created).toEqual([w0.address.toLowerCase()]);
    expect(await call('POST', '/auth/api-key', await l1(w0))).toEqual({ status: 400, body: { error: 'Could not create api key' } });
    expect(await call('GET', '/auth/derive-api-key', await l1(w0))).toEqual({ status: 200, body: creds });
    // The official-client flow: create, and derive when creation gives no key.
    expect(await createOrDeriveApiKey(t.base, w0)).toEqual(creds);
    // Another nonce is another key of the same account.
    const n1 = await createOrDeriveApiKey(t.base, w0, { nonce: 1 });
    expect(n1.apiKey).not.toBe(creds.apiKey);
    expect(t.created).toHaveLength(1);
    expect(await call('GET', '/auth/derive-api-key', await l1(w0, { nonce: 2 }))).toMatchObject({ status: 400 });
    // Persisted: a store on the same data dir knows both keys.
    expect(createApiKeyStore({ dataDir: tmp.dir }).byAddress(w0.address).map((k) => k.nonce).sort()).toEqual([0, 1]);
  });

  it('answers 401 and changes nothing for bad, absent or stale L1 signatures', async () => {
    const before = snapshot();
    const good = await l1(w0);
    const cases: Record<string, string>[] = [
      {},
      { ...good, POLY_ADDRESS: w1.address }, // signed by someone else
      { ...good, POLY_SIGNATURE: (await l1(w1)).POLY_SIGNATURE },
      { ...good, POLY_NONCE: '9' },
      await l1(w0, { timestampS: now() - 400 }),
      await l1(w0, { timestampS: now() + 400 }),
      await l1(w0, { chainId: 80002 }),
      { ...good, POLY_SIGNATURE: 'garbage' },
      { ...good, POLY_TIMESTAMP: 'soon' },
    ];
    for (const h of cases) {
      expect(await call('POST', '/auth/api-key', h)).toEqual({ status: 401, body: { error: 'Unauthorized/Invalid api key' } });
      expect((await call('GET', '/auth/derive-api-key', h)).status).toBe(401);
    }
    expect(snapshot()).toEqual(before);
    expect(t.created).toEqual([]);
  });

  it('lists and deletes keys over L2; a deleted key no longer works', async () => {
    const creds = await createOrDeriveApiKey(t.base, w0);
    const list = await call('GET', '/auth/api-keys', l2(creds, 'GET', '/auth/api-keys'));
    expect(list).toEqual({ status: 200, body: { apiKeys: [creds.apiKey] } });
    expect((await call('GET', '/auth/api-keys')).status).toBe(401);
    expect((await call('DELETE', '/auth/api-key', l2(creds, 'DELETE', '/auth/api-key', undefined, { timestampS: now() - 1000 }))).status).toBe(401);
    expect(t.store.byAddress(w0.address)).toHaveLength(1);
    expect((await call('DELETE', '/auth/api-key', l2(creds, 'DELETE', '/auth/api-key'))).status).toBe(200);
    expect(t.store.byAddress(w0.address)).toEqual([]);
    expect((await call('GET', '/auth/api-keys', l2(creds, 'GET', '/auth/api-keys'))).status).toBe(401);
    expect((await call('GET', '/auth/derive-api-key', await l1(w0))).status).toBe(400);
  });

  it('checks every L2 header and the exact body bytes', async () => {
    const creds = await createOrDeriveApiKey(t.base, w0);
    const spaced = '{"hash": "0x123",  "n": 1}';
    const ok = await call('POST', '/private', l2(creds, 'POST', '/private', spaced), spaced);
    expect(ok).toEqual({ status: 200, body: { auth: { apiKey: creds.apiKey, address: w0.address.toLowerCase() }, body: { hash: '0x123', n: 1 } } });
    // The query string is not signed; the path is.
    const q = await call('GET', '/private/7?x=1&y=2', l2(creds, 'GET', '/private/7'));
    expect(q.status).toBe(200);
    // A DELETE with a body.
    const del = '{"orderID":"0xabc"}';
    expect((await call('DELETE', '/private', l2(creds, 'DELETE', '/private', del), del)).status).toBe(200);
    const handled = t.handled();

    const compact = JSON.stringify(JSON.parse(spaced));
    const bad: Array<[string, Record<string, string>, string | undefined]> = [
      ['body signed differently', l2(creds, 'POST', '/private', compact), spaced],
      ['no body signed', l2(creds, 'POST', '/private'), spaced],
      ['wrong method', l2(creds, 'GET', '/private', spaced), spaced],
      ['wrong path', l2(creds, 'POST', '/private/', spaced), spaced],
      ['wrong passphrase', { ...l2(creds, 'POST', '/private', spaced), POLY_PASSPHRASE: 'b'.repeat(64) }, spaced],
      ['unknown key', { ...l2(creds, 'POST', '/private', spaced), POLY_API_KEY: '00000000-0000-4000-8000-000000000000' }, spaced],
      ['other address', l2(creds, 'POST', '/private', spaced, { address: w1.address }), spaced],
      ['stale', l2(creds, 'POST', '/private', spaced, { timestampS: now() - 400 }), spaced],
      ['future', l2(creds, 'POST', '/private', spaced, { timestampS: now() + 400 }), spaced],
      ['wrong secret', { ...l2(creds, 'POST', '/private', spaced), POLY_SIGNATURE: hmacSignature('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', now(), 'POST', '/private', spaced) }, spaced],
      ['signature missing', (({ POLY_SIGNATURE: _x, ...rest }) => rest)(l2(creds, 'POST', '/private', spaced)), spaced],
      ['no headers', {}, spaced],
    ];
    for (const [what, headers, body] of bad) {
      expect(await call('POST', '/private', headers, body), what).toEqual({ status: 401, body: { error: 'Unauthorized/Invalid api key' } });
    }
    expect(t.handled()).toBe(handled); // the handler never ran
  });

  it('takes bodiless JSON requests as the official clients send them, and still refuses bad JSON', async () => {
    // clob-client(-v2) sends Content-Type: application/json with no body on POST /auth/api-key and DELETEs.
    expect((await call('POST', '/auth/api-key', { ...(await l1(w0)), 'content-type': 'application/json' })).status).toBe(200);
    const creds = (await call('GET', '/auth/derive-api-key', await l1(w0))).body as ApiCreds;
    const del = await call('DELETE', '/private', { ...l2(creds, 'DELETE', '/private'), 'content-type': 'application/json' });
    expect(del).toMatchObject({ status: 200, body: { body: null } });
    const h = (b: string) => ({ ...l2(creds, 'POST', '/private', b), 'content-type': 'application/json; charset=utf-8' });
    expect((await call('POST', '/private', h('{"a":'), '{"a":')).status).toBe(400);
    expect((await call('POST', '/private', h('{"__proto__":{"x":1}}'), '{"__proto__":{"x":1}}')).status).toBe(400);
    expect((await call('POST', '/private', h('[1, 2]'), '[1, 2]'))).toMatchObject({ status: 200, body: { body: [1, 2] } });
  });

  it('with auth not required: no headers pass without req.auth, bad headers still fail', async () => {
    await app.close();
    t = await authApp(tmp.dir, false);
    app = t.app;
    const creds = await createOrDeriveApiKey(t.base, w0);
    expect(await call('POST', '/private', {}, '{"a":1}')).toEqual({ status: 200, body: { auth: null, body: { a: 1 } } });
    expect(await call('POST', '/private', l2(creds, 'POST', '/private', '{"a":1}'), '{"a":1}')).toMatchObject({ status: 200, body: { auth: { apiKey: creds.apiKey } } });
    expect(await call('POST', '/private', l2(creds, 'POST', '/private', '{"a":2}'), '{"a":1}')).toMatchObject({ status: 401 });
    expect(await call('POST', '/private', { POLY_API_KEY: creds.apiKey }, '{"a":1}')).toMatchObject({ status: 401 });
    // The key routes need L2 regardless.
    expect((await call('GET', '/auth/api-keys')).status).toBe(401);
  });

  it('honours POLYBOT_SIM_AUTH_SKEW_S', async () => {
    await app.close();
    t = await authApp(tmp.dir, true, { POLYBOT_SIM_AUTH_SKEW_S: 5 });
    app = t.app;
    expect((await call('POST', '/auth/api-key', await l1(w0, { timestampS: now() - 60 }))).status).toBe(401);
    const creds = await createOrDeriveApiKey(t.base, w0);
    expect((await call('GET', '/auth/api-keys', l2(creds, 'GET', '/auth/api-keys', undefined, { timestampS: now() - 60 }))).status).toBe(401);
    expect((await call('GET', '/auth/api-keys', l2(creds, 'GET', '/auth/api-keys'))).status).toBe(200);
  });
});

describe('the simulator with the official client (clob-client-v2)', () => {
  let sim: RunningSim;
  afterAll(async () => {
    await sim?.stop();
  });

  it('creates or derives, lists and deletes keys like the venue', async () => {
    sim = await startSim({ POLYBOT_SIM_MARKETS: '2', POLYBOT_SIM_EVENT_RATE: '0' });
    const signer = new WalletV5(KEY0);
    const client = new ClobClient({ host: sim.base, chain: 137, signer } as any);
    const first = await client.createOrDeriveApiKey();
    expect(first.key).toMatch(/^[0-9a-f-]{36}$/);
    const again = await new ClobClient({ host: sim.base, chain: 137, signer, useServerTime: true } as any).createOrDeriveApiKey();
    expect(again).toEqual(first);
    // Our client derives the same creds.
    expect(await createOrDeriveApiKey(sim.base, w0)).toEqual({ apiKey: first.key, secret: first.secret, passphrase: first.passphrase });
    const l2client = new ClobClient({ host: sim.base, chain: 137, signer, creds: first } as any);
    expect(await l2client.getApiKeys()).toEqual({ apiKeys: [first.key] });
    await l2client.deleteApiKey();
    const after = await l2client.getApiKeys();
    expect(after).toMatchObject({ error: 'Unauthorized/Invalid api key' });
  });
});


