import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toMicros } from '@polybot/protocol';
import { freePort, waitFor } from '@polybot/testkit';
import { startSim, type RunningSim } from '../../../services/sim/test/helpers.js';
import { buildL2Headers, createOrDeriveApiKey } from '../src/auth.js';
import type { ApiCreds } from '../src/schemas.js';
import { ClobAccountClient, ClobAccountError, type AuthHeadersFn } from '../src/clob-account.js';
import { ClobTradingClient } from '../src/clob-trading.js';
import { buildSignedOrder, orderHash } from '../src/order.js';

// The public Hardhat account #0 of the shared vectors; never funded anywhere.
const shared = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/polymarket');
const TEST_KEY = (JSON.parse(readFileSync(resolve(shared, 'vectors/l1_clob_auth.json'), 'utf8')) as { cases: Array<{ privateKey: string }> }).cases[0]!.privateKey;
const ADMIN = 'admin-secret-for-clob-account-tests';
const wallet = new Wallet(TEST_KEY);

const l2 = (creds: ApiCreds): AuthHeadersFn => (method, path, body) => ({ ...buildL2Headers(creds, wallet.address, { method, requestPath: path, body }) });

/** Asserts `fn` rejects with a ClobAccountError and returns it. */
async function accountError(fn: () => Promise<unknown>): Promise<ClobAccountError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ClobAccountError);
    return err as ClobAccountError;
  }
  throw new Error('expected a ClobAccountError');
}

function expectNoSecrets(text: string, creds: ApiCreds): void {
  expect(text).not.toContain(creds.secret);
  expect(text).not.toContain(creds.passphrase);
  expect(text).not.toContain(creds.apiKey);
}

describe('ClobAccountClient against the simulator (auth required)', () => {
  let sim: RunningSim;
  let creds: ApiCreds;
  let trading: ClobTradingClient;
  let account: ClobAccountClient;
  let tokenA: string;
  let tokenB: string;
  let marketA: string;
  let marketB: string;
  const placedA: string[] = [];
  const placedB: string[] = [];

  const admin = async (path: string, body: unknown = {}) => {
    const res = await fetch(`${sim.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-admin-secret': ADMIN }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
  };

  const tops = async (tokenId: string) => {
    const book = (await (await fetch(`${sim.base}/book?token_id=${tokenId}`)).json()) as { bids: Array<{ price: string }>; asks: Array<{ price: string }> };
    // Best levels are the last ones, as on the venue.
    return { bid: Number(book.bids.at(-1)!.price), ask: Number(book.asks.at(-1)!.price) };
  };

  /** Signs with our builder, posts with our trading client; returns the order id and the locally computed hash. */
  async function place(tokenId: string, price: string, size: string) {
    const order = buildSignedOrder({ wallet, tokenId, side: 'BUY', price, size, orderType: 'GTC', tickSize: '0.01', negRisk: false });
    const out = await trading.postOrder({ order, owner: creds.apiKey, orderType: 'GTC' });
    if (out.kind !== 'accepted' || !out.response.orderID) throw new Error(`order not accepted: ${JSON.stringify(out)}`);
    return { id: out.response.orderID, hash: orderHash(order, false), status: out.response.status };
  }

  beforeAll(async () => {
    sim = await startSim({
      POLYBOT_SIM_REQUIRE_AUTH: 'true',
      POLYBOT_SIM_MARKETS: '4',
      // Frozen makers: resting orders stay resting and the book does not move between reads.
      POLYBOT_SIM_EVENT_RATE: '0',
      POLYBOT_SIM_MINE_MS: '100',
      POLYBOT_SIM_CONFIRM_MS: '200',
      POLYBOT_SIM_ADMIN_SECRET: ADMIN,
    });
    creds = await createOrDeriveApiKey(sim.base, wallet);
    trading = new ClobTradingClient({ baseUrl: sim.base, authHeaders: l2(creds) });
    account = new ClobAccountClient({ baseUrl: sim.base, authHeaders: l2(creds), pageSize: 2 });
    const markets = (await (await fetch(`${sim.base}/markets?limit=5`)).json()) as Array<{ conditionId: string; clobTokenIds: string }>;
    marketA = markets[0]!.conditionId;
    marketB = markets[1]!.conditionId;
    tokenA = (JSON.parse(markets[0]!.clobTokenIds) as string[])[0]!;
    tokenB = (JSON.parse(markets[1]!.clobTokenIds) as string[])[0]!;
  }, 120_000);

  afterAll(async () => {
    await sim?.stop();
  });

  it('reads the order version without credentials', async () => {
    expect(await account.getVersion()).toBe(2);
  });

  it('lists every open order across pages, with filters', async () => {
    const a = await tops(tokenA);
    const b = await tops(tokenB);
    const priceA = Math.max(0.01, a.bid - 0.1).toFixed(2);
    const priceB = Math.max(0.01, b.bid - 0.1).toFixed(2);
    for (const size of ['5', '6', '7', '8', '9']) {
      const p = await place(tokenA, priceA, size);
      expect(p.status).toBe('live');
      placedA.push(p.id);
    }
    for (const size of ['5', '6']) placedB.push((await place(tokenB, priceB, size)).id);

    const all = await account.getOpenOrders();
    // Seven orders at two per page.
    expect(all.pages).toBe(4);
    expect(all.invalid).toBe(0);
    expect(all.items.map((o) => o.id).sort()).toEqual([...placedA, ...placedB].sort());
    const first = all.items.find((o) => o.id === placedA[0])!;
    // Exact decimal strings as the venue sent them.
    expect(first).toMatchObject({ status: 'LIVE', side: 'BUY', price: priceA, original_size: '5', size_matched: '0', asset_id: tokenA, market: marketA });

    const byAsset = await account.getOpenOrders({ assetId: tokenA });
    expect(byAsset.items.map((o) => o.id).sort()).toEqual([...placedA].sort());
    const byMarket = await account.getOpenOrders({ market: marketB });
    expect(byMarket.items.map((o) => o.id).sort()).toEqual([...placedB].sort());
    const byId = await account.getOpenOrders({ id: placedA[2]! });
    expect(byId.items.map((o) => o.id)).toEqual([placedA[2]]);
    expect(byId.pages).toBe(1);
  });

  it('looks an order up by its locally computed hash, and answers null for an unknown one', async () => {
    const { bid } = await tops(tokenA);
    const p = await place(tokenA, Math.max(0.01, bid - 0.12).toFixed(2), '5');
    placedA.push(p.id);
    // The order id is the EIP-712 hash, so an ambiguous post can be settled without its answer.
    expect(p.hash).toBe(p.id);
    const found = await account.getOrder(p.hash);
    expect(found).toMatchObject({ id: p.id, status: 'LIVE', original_size: '5', asset_id: tokenA });
    expect(await account.getOrder(`0x${'0'.repeat(64)}`)).toBeNull();
  });

  it('cancels one, several, by market and all; repeating a cancel changes nothing', async () => {
    const [one, two, three, ...restA] = placedA;
    const c1 = await account.cancelOrder(one!);
    expect(c1).toEqual({ canceled: [one], not_canceled: {} });
    // Idempotent at the venue: the second cancel reports the order as already gone.
    const again = await account.cancelOrder(one!);
    expect(again.canceled).toEqual([]);
    expect(again.not_canceled[one!]).toMatch(/already canceled/);
    expect((await account.getOrder(one!))?.status).toBe('CANCELED');

    const c2 = await account.cancelOrders([two!, three!]);
    expect(c2.canceled.sort()).toEqual([two, three].sort());
    const before = account.stats.requests;
    expect(await account.cancelOrders([])).toEqual({ canceled: [], not_canceled: {} });
    expect(account.stats.requests).toBe(before);

    await expect(account.cancelMarket({})).rejects.toBeInstanceOf(RangeError);
    const c3 = await account.cancelMarket({ assetId: tokenA });
    expect(c3.canceled.sort()).toEqual([...restA].sort());
    expect((await account.getOpenOrders({ assetId: tokenA })).items).toEqual([]);

    const c4 = await account.cancelAll();
    expect(c4.canceled.sort()).toEqual([...placedB].sort());
    const left = await account.getOpenOrders();
    expect(left).toMatchObject({ items: [], invalid: 0, pages: 1 });
  });

  it('lists trades after a crossing order, with the after filter, and the balances that follow', async () => {
    const collateralBefore = await account.getBalanceAllowance({ assetType: 'COLLATERAL' });
    expect(collateralBefore.balance).toMatch(/^\d+$/);
    expect(Object.keys(collateralBefore.allowances).length).toBeGreaterThan(0);

    const cross = async () => {
      const { ask } = await tops(tokenA);
      const p = await place(tokenA, Math.min(0.99, ask + 0.02).toFixed(2), '5');
      expect(p.status).toBe('matched');
      return p.id;
    };
    const firstId = await cross();
    const firstTrades = await waitFor(async () => {
      const l = await account.getTrades();
      return l.items.some((t) => t.taker_order_id === firstId) ? l : undefined;
    }, { what: 'the first trade in /data/trades' });
    expect(firstTrades.invalid).toBe(0);
    const first = firstTrades.items.find((t) => t.taker_order_id === firstId)!;
    expect(first).toMatchObject({ side: 'BUY', asset_id: tokenA, market: marketA, trader_side: 'TAKER' });
    expect(first.size).toMatch(/^\d+(\.\d+)?$/);
    expect(first.price).toMatch(/^\d*\.?\d+$/);

    // The venue filters on whole seconds: start the second trade in a later second than the first.
    const firstSecond = Number(first.match_time);
    await waitFor(() => Math.floor(Date.now() / 1000) > firstSecond, { what: 'the next second' });
    const since = Date.now();
    const secondId = await cross();
    const recent = await account.getTrades({ after: since });
    expect(recent.items.map((t) => t.taker_order_id)).toContain(secondId);
    expect(recent.items.map((t) => t.taker_order_id)).not.toContain(firstId);

    const mine = (await account.getTrades({ assetId: tokenA })).items.filter((t) => t.taker_order_id === firstId || t.taker_order_id === secondId);
    expect(mine).toHaveLength(2);
    expect((await account.getTrades({ market: marketB })).items).toEqual([]);
    expect((await account.getTrades({ after: Date.now() + 3_600_000 })).items).toEqual([]);
    // Seconds instead of ms are refused rather than silently meaning 1970.
    await expect(account.getTrades({ after: Math.floor(since / 1000) })).rejects.toBeInstanceOf(RangeError);

    const collateralAfter = await account.getBalanceAllowance({ assetType: 'COLLATERAL' });
    expect(BigInt(collateralAfter.balance)).toBeLessThan(BigInt(collateralBefore.balance));
    const shares = await account.getBalanceAllowance({ assetType: 'CONDITIONAL', tokenId: tokenA });
    // Exact: the shares held are the sum of the two fills, in base units.
    expect(BigInt(shares.balance)).toBe(mine.reduce((s, t) => s + toMicros(t.size), 0n));
    const refreshed = await account.updateBalanceAllowance({ assetType: 'CONDITIONAL', tokenId: tokenA });
    expect(refreshed?.balance).toBe(shares.balance);
    await expect(account.getBalanceAllowance({ assetType: 'CONDITIONAL' })).rejects.toBeInstanceOf(RangeError);
  });

  describe('error mapping with the simulator’s faults', () => {
    it('maps 5xx to a retryable server_error that names the call but no credential', async () => {
      await admin('/admin/faults', { error_rate: 1 });
      try {
        const err = await accountError(() => account.getOpenOrders());
        expect(err).toMatchObject({ code: 'server_error', status: 500, retryable: true, method: 'GET', path: '/data/orders' });
        expect(err.message).toContain('GET /data/orders');
        expectNoSecrets(`${err.message} ${JSON.stringify(err)}`, creds);
        const cancelErr = await accountError(() => account.cancelAll());
        expect(cancelErr).toMatchObject({ code: 'server_error', retryable: true, path: '/cancel-all' });
      } finally {
        await admin('/admin/faults/reset');
      }
    });

    it('maps 429 to rate_limited with Retry-After', async () => {
      await admin('/admin/faults', { rate_limit_scale: 0.001 });
      try {
        let err: ClobAccountError | undefined;
        for (let i = 0; i < 5 && !err; i++) {
          try {
            await account.getBalanceAllowance({ assetType: 'COLLATERAL' });
          } catch (e) {
            err = e as ClobAccountError;
          }
        }
        expect(err).toBeInstanceOf(ClobAccountError);
        expect(err).toMatchObject({ code: 'rate_limited', status: 429, retryable: true });
        expect(err!.retryAfterMs).toBeGreaterThan(0);
        expect(err!.retryAfterMs).toBeLessThanOrEqual(600_000);
      } finally {
        await admin('/admin/faults/reset');
      }
    });

    it('maps 425 on a cancel to a retryable too_early', async () => {
      await admin('/admin/faults', { too_early_s: 30, post_only_s: 0 });
      try {
        const err = await accountError(() => account.cancelOrders(['0x01']));
        expect(err).toMatchObject({ code: 'too_early', status: 425, retryable: true, method: 'DELETE', path: '/orders' });
      } finally {
        await admin('/admin/faults/reset');
      }
    });

    it('maps latency beyond the deadline to a retryable timeout', async () => {
      await admin('/admin/faults', { latency_ms: 1500 });
      // The request goes on without the client's signal; only the client stops waiting. Fastify
      // never answers a request whose client hung up, and such a half-open socket would hold the
      // sim's stop for its 72 s keep-alive timeout.
      let underlying: Promise<unknown> = Promise.resolve();
      const detached: typeof fetch = (input, init) => {
        const { signal, ...rest } = init ?? {};
        const real = fetch(input, rest);
        underlying = real.then((r) => r.text()).catch(() => undefined);
        return new Promise((resolve, reject) => {
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
          real.then(resolve, reject);
        });
      };
      try {
        const slow = new ClobAccountClient({ baseUrl: sim.base, authHeaders: l2(creds), timeoutMs: 200, fetch: detached });
        const err = await accountError(() => slow.getOrder(`0x${'1'.repeat(64)}`));
        expect(err).toMatchObject({ code: 'timeout', retryable: true, status: undefined });
        expect(err.message).toMatch(/^GET \/data\/order\/0x1+: /);
      } finally {
        await underlying;
        await admin('/admin/faults/reset');
      }
    });

    it('maps a refused key to a non-retryable unauthorized without echoing the key', async () => {
      const wrong = { ...creds, secret: Buffer.alloc(32, 7).toString('base64') };
      const bad = new ClobAccountClient({ baseUrl: sim.base, authHeaders: l2(wrong) });
      const err = await accountError(() => bad.getOpenOrders());
      expect(err).toMatchObject({ code: 'unauthorized', status: 401, retryable: false });
      expectNoSecrets(err.message, wrong);
    });

    it('honours the caller’s abort signal', async () => {
      const ac = new AbortController();
      ac.abort();
      const err = await accountError(() => account.getOpenOrders({}, { signal: ac.signal }));
      expect(err).toMatchObject({ code: 'aborted', retryable: false });
    });
  });
});

describe('ClobAccountClient against a misbehaving server', () => {
  type Handler = (req: IncomingMessage, res: ServerResponse) => void;
  let server: Server;
  let base: string;
  let handler: Handler = (_req, res) => res.end();
  const SECRET_HEADERS = { POLY_API_KEY: 'key-1234567890', POLY_PASSPHRASE: 'pass-1234567890', POLY_SIGNATURE: 'sig-1234567890' };
  const auth: AuthHeadersFn = () => ({ ...SECRET_HEADERS });
  const client = (opts: Partial<ConstructorParameters<typeof ClobAccountClient>[0]> = {}) => new ClobAccountClient({ baseUrl: base, authHeaders: auth, timeoutMs: 5000, ...opts });
  const json = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof value === 'string' ? value : JSON.stringify(value));
  };
  const order = (id: string) => ({
    id,
    status: 'LIVE',
    owner: 'k',
    maker_address: '0xabc',
    market: '0xm',
    asset_id: '1',
    side: 'BUY',
    original_size: '5',
    size_matched: '0',
    price: '0.45',
    associate_trades: [],
    outcome: 'Yes',
    created_at: 1_700_000_000,
    expiration: '0',
    order_type: 'GTC',
  });

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => handler(req, res));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('counts invalid items and keeps the valid ones, across pages', async () => {
    handler = (req, res) => {
      const cursor = new URL(req.url!, base).searchParams.get('next_cursor');
      if (cursor === 'MA==') json(res, 200, { limit: 2, count: 2, next_cursor: 'Mg==', data: [order('0x1'), { ...order('0x2'), price: 0.45 }] });
      else json(res, 200, { limit: 2, count: 2, next_cursor: 'LTE=', data: [order('0x3'), 'junk'] });
    };
    const l = await client().getOpenOrders();
    expect(l.items.map((o) => o.id)).toEqual(['0x1', '0x3']);
    expect(l.items[0]!.price).toBe('0.45');
    expect(l).toMatchObject({ invalid: 2, pages: 2 });
    expect(l.invalidReasons[0]).toMatch(/page 1 \/data\/1\/price/);
    expect(l.invalidReasons[1]).toMatch(/page 2 \/data\/1/);
  });

  it('throws bad_body for an unreadable page, a wrong envelope or a malformed cancel answer', async () => {
    handler = (_req, res) => json(res, 200, '<html>oops</html>');
    expect(await accountError(() => client().getOpenOrders())).toMatchObject({ code: 'bad_body', status: 200, retryable: false });
    handler = (_req, res) => json(res, 200, { data: 'nope', next_cursor: 'LTE=' });
    expect((await accountError(() => client().getTrades())).message).toMatch(/GET \/data\/trades: HTTP 200 with an unexpected body/);
    handler = (_req, res) => json(res, 200, { canceled: 'all' });
    expect(await accountError(() => client().cancelAll())).toMatchObject({ code: 'bad_body', method: 'DELETE', path: '/cancel-all' });
    handler = (_req, res) => json(res, 200, { balance: '12.5' });
    expect(await accountError(() => client().getBalanceAllowance({ assetType: 'COLLATERAL' }))).toMatchObject({ code: 'bad_body' });
    handler = (_req, res) => json(res, 200, { ...order('0x9'), side: 'HOLD' });
    expect(await accountError(() => client().getOrder('0x9'))).toMatchObject({ code: 'bad_body' });
  });

  it('refuses a listing whose cursor never ends', async () => {
    handler = (_req, res) => json(res, 200, { limit: 1, count: 0, next_cursor: 'MQ==', data: [] });
    expect(await accountError(() => client().getOpenOrders())).toMatchObject({ code: 'paging' });
    let n = 0;
    handler = (_req, res) => json(res, 200, { limit: 1, count: 0, next_cursor: Buffer.from(String(++n)).toString('base64'), data: [] });
    expect(await accountError(() => client({ maxPages: 3 }).getOpenOrders())).toMatchObject({ code: 'paging' });
  });

  it('reads an empty or null answer to an order lookup as unknown', async () => {
    handler = (_req, res) => json(res, 200, '');
    expect(await client().getOrder('0x1')).toBeNull();
    handler = (_req, res) => json(res, 200, 'null');
    expect(await client().getOrder('0x1')).toBeNull();
    handler = (_req, res) => json(res, 404, { error: 'order not found' });
    expect(await client().getOrder('0x1')).toBeNull();
  });

  it('scrubs every header value from the venue’s error text', async () => {
    // A hostile or broken proxy that echoes the request headers back.
    handler = (req, res) => json(res, 502, `<html>bad gateway ${JSON.stringify(req.headers)}</html>`);
    const err = await accountError(() => client().getOpenOrders());
    expect(err).toMatchObject({ code: 'server_error', status: 502, retryable: true });
    const text = `${err.message} ${err.venueMessage} ${JSON.stringify(err)}`;
    for (const v of Object.values(SECRET_HEADERS)) expect(text).not.toContain(v);
    expect(err.message).toContain('[redacted]');
  });

  it('reads Retry-After as an HTTP date against the injected clock', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    handler = (_req, res) => json(res, 429, { error: 'Too Many Requests' }, { 'retry-after': 'Tue, 01 Jan 2030 00:00:07 GMT' });
    const err = await accountError(() => client({ now: () => now }).getBalanceAllowance({ assetType: 'COLLATERAL' }));
    expect(err).toMatchObject({ code: 'rate_limited', retryable: true, retryAfterMs: 7000, venueMessage: 'Too Many Requests' });
    handler = (_req, res) => json(res, 400, { error: 'invalid market' });
    expect(await accountError(() => client().cancelMarket({ market: '0xbad' }))).toMatchObject({ code: 'rejected', status: 400, retryable: false, venueMessage: 'invalid market' });
  });

  it('maps a refused connection to a retryable network error', async () => {
    const port = await freePort(); // nothing listens there
    const err = await accountError(() => new ClobAccountClient({ baseUrl: `http://127.0.0.1:${port}`, authHeaders: auth }).cancelOrder('0x1'));
    expect(err).toMatchObject({ code: 'network', retryable: true, method: 'DELETE', path: '/order' });
    expect(err.message).toContain('ECONNREFUSED');
  });
});
