/**
 * Bad input gets the documented status and error body and changes nothing: malformed JSON, schema
 * violations, wrong or tampered order signatures, wrong HMAC, stale L1/L2 timestamps, unknown tokens,
 * absurd sizes, oversized bodies, garbage WebSocket frames. Every group is wrapped in `unchanged`:
 * balances, positions, open orders, trades and books (via REST, plus the engine's own snapshot) are
 * equal before and after, no market or user event went out, and `GET /ok` still answers.
 *
 * Documented answers (shared/polymarket/PROTOCOL.md §3–§4, sim routes): auth failures 401
 * `{"error":"Unauthorized/Invalid api key"}`; malformed or schema-invalid bodies 400 `{"error"}`;
 * order verification failures 400 `{"error":"invalid signature" | …}`; unknown token on `/book`
 * 404 `{"error":"No orderbook exists for the requested token id"}`.
 */
import { buildL1Headers, buildL2Headers, buildSignedOrder, createOrDeriveApiKey, signOrder, type ApiCreds, type SignedOrderV2, type VenueOrderType } from '@polybot/polymarket';
import { waitFor } from '@polybot/testkit';
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSim, WsClient, type RunningSim } from './helpers.js';

const SKEW_S = 30;
const UNAUTHORIZED = { error: 'Unauthorized/Invalid api key' };
// Hardhat accounts #0 and #1: public test keys, never funded anywhere.
const walletA = new Wallet('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
const walletB = new Wallet('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');

let sim: RunningSim;
let credsA: ApiCreds;
let credsB: ApiCreds;
let yes: string;
let no: string;
let market: WsClient;
let userA: WsClient;
let restingA: string;
let restingB: string;
let salt = 5_000;
const nowS = () => Math.floor(Date.now() / 1000);

interface RawOpts {
  /** Body text sent as is. */
  body?: string;
  /** L2-sign as this key and wallet (over `signedBody ?? body`, at `ts`). */
  creds?: ApiCreds;
  wallet?: Wallet;
  signedBody?: string;
  ts?: number;
  /** Overrides / additions after signing. */
  headers?: Record<string, string>;
  contentType?: string | null;
}

async function raw(method: string, path: string, o: RawOpts = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (o.creds && o.wallet) {
    const signed = o.signedBody ?? o.body ?? null;
    Object.assign(headers, buildL2Headers(o.creds, o.wallet.address, { method, requestPath: path, body: signed, ...(o.ts !== undefined ? { timestampS: o.ts } : {}) }));
  }
  if (o.body !== undefined && o.contentType !== null) headers['content-type'] = o.contentType ?? 'application/json';
  Object.assign(headers, o.headers);
  const res = await fetch(`${sim.base}${path}`, { method, headers, ...(o.body !== undefined ? { body: o.body } : {}) });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

const asA = (method: string, path: string, body?: unknown, extra: RawOpts = {}) =>
  raw(method, path, { creds: credsA, wallet: walletA, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}), ...extra });

function order(side: 'BUY' | 'SELL', price: string, size: string, opts: { wallet?: Wallet; tokenId?: string; orderType?: VenueOrderType } = {}): SignedOrderV2 {
  return buildSignedOrder({
    wallet: opts.wallet ?? walletA,
    tokenId: opts.tokenId ?? yes,
    side,
    price,
    size,
    orderType: opts.orderType ?? 'GTC',
    tickSize: '0.01',
    negRisk: false,
    salt: salt++,
  });
}
const bodyOf = (o: SignedOrderV2 | Record<string, unknown>, orderType: VenueOrderType = 'GTC', owner = credsA.apiKey) => ({ order: o, owner, orderType });

/** Re-signs arbitrary (even invalid) amounts with A's key, so they reach the checks behind the signature. */
function signedWith(fields: Partial<SignedOrderV2>, wallet = walletA): SignedOrderV2 {
  const { signature: _s, ...base } = order('BUY', '0.50', '10', { wallet });
  return signOrder(wallet, { ...base, ...fields }, false);
}

const expectError = (r: { status: number; body: any }, status: number, error?: string | RegExp) => {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(Object.keys(r.body ?? {}), JSON.stringify(r.body)).toEqual(['error']);
  expect(typeof r.body.error).toBe('string');
  expect(r.body.error.length).toBeGreaterThan(0);
  if (typeof error === 'string') expect(r.body.error).toBe(error);
  else if (error) expect(r.body.error).toMatch(error);
};

/** Every frame sent before the PONG has arrived. */
async function barrier(c: WsClient): Promise<void> {
  const n = c.texts.length;
  c.send('PING');
  await waitFor(() => c.texts.length > n, { what: 'PONG' });
}

async function snapshot(): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const [c, w] of [[credsA, walletA], [credsB, walletB]] as const) {
    const get = async (path: string) => {
      const r = await raw('GET', path, { creds: c, wallet: w });
      expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBe(200);
      return r.body;
    };
    out[w.address] = {
      collateral: await get('/balance-allowance?asset_type=COLLATERAL'),
      shares: await get(`/balance-allowance?asset_type=CONDITIONAL&token_id=${yes}`),
      orders: await get('/data/orders'),
      trades: await get('/data/trades'),
    };
  }
  const books = [];
  for (const t of [yes, no]) {
    const r = await raw('GET', `/book?token_id=${t}`);
    expect(r.status).toBe(200);
    const { timestamp: _t, hash: _h, ...levels } = r.body;
    books.push(levels);
  }
  const ex = sim.service.exchange;
  return { ...out, books, engine: ex.snapshot(), accepted: ex.stats.ordersAccepted, trades: ex.stats.trades };
}

/** Runs `fn`, then insists nothing changed and nothing was published, and the process is healthy. */
async function unchanged(fn: () => Promise<void>): Promise<void> {
  const before = await snapshot();
  const m = market.events.length;
  const u = userA.events.length;
  await fn();
  await barrier(market);
  await barrier(userA);
  expect(await snapshot()).toEqual(before);
  expect(market.events.slice(m), 'market events after bad input').toEqual([]);
  expect(userA.events.slice(u), 'user events after bad input').toEqual([]);
  const ok = await fetch(`${sim.base}/ok`);
  expect(ok.status).toBe(200);
}

beforeAll(async () => {
  sim = await startSim({
    POLYBOT_SIM_REQUIRE_AUTH: 'true',
    POLYBOT_SIM_AUTH_SKEW_S: String(SKEW_S),
    POLYBOT_SIM_MARKETS: '4',
    POLYBOT_SIM_EVENT_RATE: '0',
    POLYBOT_SIM_MINE_MS: '0',
    POLYBOT_SIM_CONFIRM_MS: '0',
    // Up/down rounds requote every second from the reference prices: a moving world would hide
    // whether bad input changed anything. The neg-risk event (static at event rate 0) stays on.
    POLYBOT_SIM_ROUND_ASSETS: 'none',
  });
  credsA = await createOrDeriveApiKey(sim.base, walletA);
  credsB = await createOrDeriveApiKey(sim.base, walletB);
  [yes, no] = sim.service.exchange.markets[0]!.tokenIds;
  market = await WsClient.open(sim.wsUrl);
  market.send({ assets_ids: [yes, no], type: 'market' });
  await waitFor(() => market.events.length >= 2, { what: 'initial books' });
  userA = await WsClient.open(sim.wsUrl.replace('/ws/market', '/ws/user'));
  userA.send({ auth: { apiKey: credsA.apiKey, secret: credsA.secret, passphrase: credsA.passphrase }, markets: [], type: 'user' });
  await barrier(userA);
  // State worth protecting: A holds shares and a resting bid, B a resting bid too.
  const fill = await asA('POST', '/order', bodyOf(order('BUY', '0.99', '20', { orderType: 'FOK' }), 'FOK'));
  expect(fill.body).toMatchObject({ success: true, status: 'matched' });
  const rest = await asA('POST', '/order', bodyOf(order('BUY', '0.02', '10')));
  expect(rest.body).toMatchObject({ success: true, status: 'live' });
  restingA = rest.body.orderID;
  const restB = await raw('POST', '/order', { creds: credsB, wallet: walletB, body: JSON.stringify(bodyOf(order('BUY', '0.03', '10', { wallet: walletB }), 'GTC', credsB.apiKey)) });
  expect(restB.body).toMatchObject({ success: true, status: 'live' });
  restingB = restB.body.orderID;
  await waitFor(() => sim.service.exchange.pendingTrades === 0, { what: 'trades final' });
  await barrier(market);
  await barrier(userA);
}, 60_000);

afterAll(async () => {
  await market?.close();
  await userA?.close();
  await sim?.stop();
});

describe('malformed and schema-invalid bodies (valid L2 over the exact bytes)', () => {
  it('POST /order: not JSON, not an object, wrong types → 400 {"error"}', async () => {
    await unchanged(async () => {
      for (const text of ['{"order":', '{', 'nul', '{"order":{}}}', `${'['.repeat(10_000)}${']'.repeat(10_000)}`]) {
        expectError(await asA('POST', '/order', text), 400);
      }
      for (const text of ['', 'null', '[]', '"order"', '42', 'true', '{}']) {
        expectError(await asA('POST', '/order', text), 400, /^Invalid order payload/);
      }
      // Prototype poisoning is refused by the JSON parser.
      const good = JSON.stringify(bodyOf(order('BUY', '0.50', '10')));
      expectError(await asA('POST', '/order', `{"__proto__":{"polluted":true},${good.slice(1)}`), 400);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      const o = order('BUY', '0.50', '10');
      const bad: Array<Record<string, unknown>> = [
        { ...bodyOf(o), orderType: 'IOC' },
        { ...bodyOf(o), owner: 'x'.repeat(500) },
        { ...bodyOf(o), postOnly: 'yes' },
        { order: o, orderType: 'GTC' },
        bodyOf({ ...o, salt: 'abc' }),
        bodyOf({ ...o, salt: -1 }),
        bodyOf({ ...o, salt: 1.5 }),
        bodyOf({ ...o, side: 'HOLD' }),
        bodyOf({ ...o, signatureType: 9 }),
        bodyOf({ ...o, maker: '0x1234' }),
        bodyOf({ ...o, tokenId: '-1' }),
        bodyOf({ ...o, tokenId: 'yes' }),
        bodyOf({ ...o, metadata: '0x00' }),
        bodyOf({ ...o, signature: 'not-hex' }),
        bodyOf({ ...o, timestamp: 1713398400000 }),
        bodyOf({ ...o, expiration: '-1' }),
        bodyOf((({ signature: _s, ...rest }) => rest)(o)),
      ];
      for (const b of bad) expectError(await asA('POST', '/order', b), 400, /^Invalid order payload/);
    });
  });

  it('absurd and non-numeric amounts fail the schema → 400 {"error"}', async () => {
    await unchanged(async () => {
      const o = order('BUY', '0.50', '10');
      for (const v of ['-5', '-1', '1e30', '1.5', '0x10', 'abc', '', ' 5', '9'.repeat(41), '115792089237316195423570985008687907853269984665640564039457584007913129639935']) {
        expectError(await asA('POST', '/order', bodyOf({ ...o, makerAmount: v })), 400, /^Invalid order payload/);
        expectError(await asA('POST', '/order', bodyOf({ ...o, takerAmount: v })), 400, /^Invalid order payload/);
      }
      for (const v of [5_000_000, null, true, 1e30]) {
        expectError(await asA('POST', '/order', bodyOf({ ...o, makerAmount: v })), 400, /^Invalid order payload/);
      }
    });
  });

  it('non-JSON content types → 400 (text parsed as a string) or 415, oversized body → 413, all {"error"}', async () => {
    await unchanged(async () => {
      const good = JSON.stringify(bodyOf(order('BUY', '0.50', '10')));
      expectError(await asA('POST', '/order', good, { contentType: 'text/plain' }), 400, /^Invalid order payload/);
      expectError(await asA('POST', '/order', good, { contentType: 'application/x-www-form-urlencoded' }), 415);
      const big = JSON.stringify({ ...bodyOf(order('BUY', '0.50', '10')), pad: 'x'.repeat(1_100_000) });
      expectError(await asA('POST', '/order', big), 413);
      expectError(await raw('POST', '/order', { body: 'x'.repeat(2_000_000) }), 413);
    });
  });

  it('cancel and query routes: bad bodies and parameters → 400 {"error"}', async () => {
    await unchanged(async () => {
      for (const b of ['[]', '{}', '{"orderID":5}', '{"orderID":""}', `{"orderID":"${'a'.repeat(300)}"}`, '{"orderID":']) {
        expectError(await asA('DELETE', '/order', b), 400);
      }
      for (const b of ['{}', '"x"', '[5]', JSON.stringify(Array.from({ length: 3001 }, (_, i) => `0x${i}`))]) {
        expectError(await asA('DELETE', '/orders', b), 400);
      }
      expectError(await asA('DELETE', '/cancel-market-orders', '{"market":5}'), 400);
      expectError(await asA('GET', '/data/trades?before=yesterday'), 400);
      expectError(await asA('GET', '/data/trades?after=-1'), 400);
      expectError(await asA('GET', '/data/orders?next_cursor=%21%21%21'), 400);
      expectError(await asA('GET', '/data/orders?limit=0'), 400);
      expectError(await asA('GET', '/data/orders?limit=abc'), 400);
      expectError(await asA('GET', '/balance-allowance?asset_type=FOO'), 400);
      expectError(await asA('GET', '/balance-allowance?asset_type=CONDITIONAL'), 400);
    });
  });
});

describe('malformed URLs', () => {
  // server.ts sets an error handler for the {"error"} envelope, but Fastify answers an undecodable
  // path (FST_ERR_BAD_URL) before routing, with its own body: {"error":"Bad Request","code":…,"message":…,"statusCode":400}.
  it('a path that is not valid percent-encoding → 400 with the {"error"} envelope', async () => {
    await unchanged(async () => {
      expectError(await raw('GET', '/markets/%ZZ'), 400);
      expectError(await asA('GET', '/data/order/%E0%A4%A'), 400);
    });
  });

  it('… and the process survives it', async () => {
    await unchanged(async () => {
      const r = await raw('GET', '/markets/%ZZ');
      expect(r.status).toBe(400);
    });
  });
});

describe('order signatures', () => {
  it('signed by another key, tampered after signing, or garbage → 400 {"error":"invalid signature"}', async () => {
    await unchanged(async () => {
      // B signs an order that names A as maker and signer.
      const { signature: _s, ...unsigned } = order('BUY', '0.50', '10');
      const forged = signOrder(walletB, unsigned, false);
      expectError(await asA('POST', '/order', bodyOf(forged)), 400, 'invalid signature');
      const o = order('BUY', '0.50', '10');
      const tampered: Array<Partial<SignedOrderV2>> = [
        { makerAmount: String(BigInt(o.makerAmount) + 1n) },
        { takerAmount: String(BigInt(o.takerAmount) * 1000n) },
        { tokenId: no },
        { side: 'SELL' },
        { salt: o.salt + 1 },
        { timestamp: String(Number(o.timestamp) - 1) },
        { signatureType: 1 },
        { signature: `0x${'00'.repeat(65)}` },
        { signature: `0x${'ab'.repeat(65)}` },
        { signature: `${o.signature.slice(0, -2)}1d` }, // v = 29
        { signature: o.signature.slice(0, -2) }, // 64 bytes
        { signature: `${o.signature}00` }, // 66 bytes
        { signature: '0x' },
        { signature: '0xabc' }, // odd length
      ];
      for (const t of tampered) expectError(await asA('POST', '/order', bodyOf({ ...o, ...t })), 400, 'invalid signature');
    });
  });

  it("a valid order signed by someone else's wallet on A's API key → 400 signer ≠ API key", async () => {
    await unchanged(async () => {
      const r = await asA('POST', '/order', bodyOf(order('BUY', '0.50', '10', { wallet: walletB })));
      expectError(r, 400, 'the order signer address has to be the address of the API KEY');
    });
  });

  it('verification failures behind a valid signature → 400 {"error"}', async () => {
    await unchanged(async () => {
      expectError(await asA('POST', '/order', bodyOf(signedWith({ makerAmount: '0' }))), 400, /^order 0x[0-9a-f]{64} is invalid\. Amounts must be positive\.$/);
      expectError(await asA('POST', '/order', bodyOf(signedWith({ takerAmount: '0' }))), 400, /Amounts must be positive/);
      expectError(await asA('POST', '/order', bodyOf({ ...signedWith({}), expiration: String(nowS() + 3600) })), 400, 'invalid expiration');
      const gtd = signedWith({});
      expectError(await asA('POST', '/order', bodyOf({ ...gtd, expiration: String(nowS() + 10) }, 'GTD')), 400, 'invalid expiration');
      expectError(await asA('POST', '/order', bodyOf(signedWith({ timestamp: String(Date.now() + 3_600_000) }))), 400, /too far in the future/);
    });
  });
});

describe('L2 authentication (HMAC headers) → 401 {"error":"Unauthorized/Invalid api key"}', () => {
  it('wrong HMAC, wrong key material, or missing headers on POST /order and DELETE /cancel-all', async () => {
    await unchanged(async () => {
      const body = JSON.stringify(bodyOf(order('BUY', '0.99', '10')));
      const cases: RawOpts[] = [
        { body, creds: { ...credsA, secret: credsB.secret }, wallet: walletA },
        { body, creds: credsA, wallet: walletA, signedBody: body.replace('"GTC"', '"FOK"') },
        { body, creds: credsA, wallet: walletA, signedBody: '' },
        { body, creds: credsA, wallet: walletA, headers: { POLY_SIGNATURE: 'AAAA' } },
        { body, creds: credsA, wallet: walletA, headers: { POLY_SIGNATURE: '' } },
        { body, creds: { ...credsA, passphrase: credsB.passphrase }, wallet: walletA },
        { body, creds: { ...credsA, apiKey: '00000000-0000-4000-8000-000000000000' }, wallet: walletA },
        { body, creds: credsA, wallet: walletA, headers: { POLY_ADDRESS: walletB.address } },
        { body, creds: credsB, wallet: walletA },
        { body },
        { body, headers: { POLY_ADDRESS: walletA.address } },
        { body, headers: { POLY_API_KEY: credsA.apiKey } },
      ];
      for (const c of cases) expect(await raw('POST', '/order', c)).toEqual({ status: 401, body: UNAUTHORIZED });
      // Signed for another path or method.
      const h = buildL2Headers(credsA, walletA.address, { method: 'POST', requestPath: '/orders', body });
      expect(await raw('POST', '/order', { body, headers: { ...h } })).toEqual({ status: 401, body: UNAUTHORIZED });
      const g = buildL2Headers(credsA, walletA.address, { method: 'GET', requestPath: '/order', body });
      expect(await raw('POST', '/order', { body, headers: { ...g } })).toEqual({ status: 401, body: UNAUTHORIZED });
      // Cancels are private too: the resting orders survive.
      expect(await raw('DELETE', '/cancel-all', { creds: { ...credsA, secret: credsB.secret }, wallet: walletA })).toEqual({ status: 401, body: UNAUTHORIZED });
      const del = JSON.stringify({ orderID: restingA });
      expect(await raw('DELETE', '/order', { body: del, creds: credsA, wallet: walletA, signedBody: JSON.stringify({ orderID: restingB }) })).toEqual({
        status: 401,
        body: UNAUTHORIZED,
      });
      expect(await raw('GET', '/data/orders', { creds: { ...credsA, secret: credsB.secret }, wallet: walletA })).toEqual({ status: 401, body: UNAUTHORIZED });
    });
  });

  it(`timestamps outside POLYBOT_SIM_AUTH_SKEW_S (${SKEW_S} s) or not a number → 401; inside → accepted`, async () => {
    await unchanged(async () => {
      const body = JSON.stringify(bodyOf(order('BUY', '0.99', '10')));
      for (const ts of [nowS() - SKEW_S - 5, nowS() + SKEW_S + 5, 0, nowS() - 86_400, 99_999_999_999]) {
        expect(await raw('POST', '/order', { body, creds: credsA, wallet: walletA, ts })).toEqual({ status: 401, body: UNAUTHORIZED });
      }
      for (const ts of ['abc', '', '1.5e9', `${nowS()}.0`, '-1']) {
        expect(await raw('POST', '/order', { body, creds: credsA, wallet: walletA, headers: { POLY_TIMESTAMP: ts } })).toEqual({ status: 401, body: UNAUTHORIZED });
      }
      // Control: a timestamp inside the window is fine (read-only route, so nothing changes).
      const inside = await raw('GET', '/data/orders', { creds: credsA, wallet: walletA, ts: nowS() - SKEW_S + 10 });
      expect(inside.status).toBe(200);
    });
  });
});

describe('L1 authentication (wallet-signed headers) → 401, and no key or account appears', () => {
  it('stale, future, wrong chain, wrong nonce, wrong signer, garbage', async () => {
    const walletC = Wallet.createRandom();
    const keysA = async () => (await asA('GET', '/auth/api-keys')).body;
    const before = await keysA();
    await unchanged(async () => {
      const l1 = async (opts: Parameters<typeof buildL1Headers>[1], wallet: Parameters<typeof buildL1Headers>[0] = walletA) => ({ ...(await buildL1Headers(wallet, opts)) });
      const cases: Array<Record<string, string>> = [
        await l1({ timestampS: nowS() - SKEW_S - 5, nonce: 7 }),
        await l1({ timestampS: nowS() + SKEW_S + 5, nonce: 7 }),
        await l1({ nonce: 7, chainId: 80002 }),
        { ...(await l1({ nonce: 7 })), POLY_NONCE: '8' },
        { ...(await l1({ nonce: 7 })), POLY_ADDRESS: walletB.address },
        { ...(await l1({ nonce: 7 }, walletB)), POLY_ADDRESS: walletA.address },
        { ...(await l1({ nonce: 7 })), POLY_SIGNATURE: `0x${'11'.repeat(65)}` },
        { ...(await l1({ nonce: 7 })), POLY_SIGNATURE: '0x1234' },
        { ...(await l1({ nonce: 7 })), POLY_TIMESTAMP: 'now' },
        { ...(await l1({ nonce: 7 })), POLY_NONCE: '-1' },
        { ...(await l1({ nonce: 7 })), POLY_ADDRESS: 'not-an-address' },
        {},
        { ...(await l1({ timestampS: nowS() - SKEW_S - 5 }, walletC)) },
      ];
      for (const headers of cases) {
        expect(await raw('POST', '/auth/api-key', { headers })).toEqual({ status: 401, body: UNAUTHORIZED });
        expect(await raw('GET', '/auth/derive-api-key', { headers })).toEqual({ status: 401, body: UNAUTHORIZED });
      }
    });
    expect(await keysA()).toEqual(before);
    // C's failed create made no key (derive with valid headers finds none) and no account.
    const derive = await raw('GET', '/auth/derive-api-key', { headers: { ...(await buildL1Headers(walletC)) } });
    expectError(derive, 400, 'Could not derive api key!');
    expect(sim.service.exchange.account(walletC.address)).toBeUndefined();
  });
});

describe('unknown tokens, ids and absurd sizes', () => {
  it('public routes: unknown token → 404 {"error":"No orderbook exists…"}, missing token → 400', async () => {
    await unchanged(async () => {
      const NO_BOOK = 'No orderbook exists for the requested token id';
      for (const t of ['1', '12345678901234567890', '0x1234', 'abc', '9'.repeat(200)]) {
        expectError(await raw('GET', `/book?token_id=${t}`), 404, NO_BOOK);
        expectError(await raw('GET', `/midpoint?token_id=${t}`), 404, NO_BOOK);
        expectError(await raw('GET', `/price?token_id=${t}&side=BUY`), 404, NO_BOOK);
      }
      expectError(await raw('GET', '/book'), 400);
      expectError(await raw('GET', '/book?token_id='), 400);
      expectError(await raw('POST', '/books', { body: JSON.stringify([{ token_id: '1' }]) }), 404, NO_BOOK);
      expectError(await raw('POST', '/books', { body: '[]' }), 400);
    });
  });

  it('POST /order for an unknown token, absurd or sub-minimum sizes → rejected with the venue text', async () => {
    await unchanged(async () => {
      const post = async (o: SignedOrderV2, t: VenueOrderType = 'GTC') => {
        const r = await asA('POST', '/order', bodyOf(o, t));
        return r;
      };
      const rejected = (r: { status: number; body: any }, msg: string | RegExp) => {
        // The sim answers business rejections as HTTP 200 success:false (see the it.fails below for the venue's 400).
        expect([200, 400], JSON.stringify(r.body)).toContain(r.status);
        const text = r.status === 200 ? r.body.errorMsg : r.body.error;
        if (r.status === 200) expect(r.body.success).toBe(false);
        if (typeof msg === 'string') expect(text).toBe(msg);
        else expect(text).toMatch(msg);
      };
      rejected(await post(order('BUY', '0.50', '10', { tokenId: '123456789' })), /^order 0x[0-9a-f]{64} is invalid\. No orderbook exists for the requested token id$/);
      rejected(await post(order('BUY', '0.50', '10', { tokenId: `1${'0'.repeat(76)}` })), /No orderbook exists/);
      const E30 = '1000000000000000000000000000000';
      rejected(await post(order('BUY', '0.50', E30)), 'not enough balance / allowance');
      rejected(await post(order('SELL', '0.50', E30)), 'not enough balance / allowance');
      rejected(await post(order('BUY', '0.99', E30, { orderType: 'FOK' }), 'FOK'), /not enough balance \/ allowance|FOK orders are fully filled or killed/);
      rejected(await post(order('SELL', '0.01', E30, { orderType: 'FAK' }), 'FAK'), 'not enough balance / allowance');
      // Near the schema's 40-digit limit: 10^39 base units.
      rejected(await post(signedWith({ makerAmount: '1'.padEnd(40, '0'), takerAmount: '2'.padEnd(40, '0') })), 'not enough balance / allowance');
      rejected(await post(order('BUY', '0.50', '1')), /Size \(1\) lower than the minimum: 5$/);
      rejected(await post(signedWith({ makerAmount: '5050000', takerAmount: '10000000' })), /breaks minimum tick size rule: 0\.01$/); // 0.505
      rejected(await post(signedWith({ makerAmount: '10000000', takerAmount: '10000000' })), /breaks minimum tick size rule/); // price 1
      rejected(await post(signedWith({ makerAmount: '1', takerAmount: '10000000000' })), /breaks minimum tick size rule/); // price ~0
      rejected(await post(order('SELL', '0.50', '10', { tokenId: no })), 'not enough balance / allowance'); // A holds no NO shares
    });
  });

  // Live venue: order rejections are HTTP 400 {"error": "<text>"} (py-clob-client's
  // `PolyApiException[status_code=400, error_message={'error': 'not enough balance / allowance'}]`,
  // Polymarket/py-clob-client#109, Polymarket/agents#32; clob-client#305 "crosses the book"; clob-client#124
  // "invalid amounts"; clob-client PR #68 error payload for FOK). The sim answers 200 {success:false}.
  // PROTOCOL.md (our spec) documents business rejections as `success:false` + `errorMsg`, which the sim
  // follows; the issue reports above suggest the live venue may answer 400 {"error"} instead — our client
  // accepts both, and this pins the documented form until the live behaviour is confirmed.
  it('business rejections of POST /order answer success:false with the venue text (the documented form)', async () => {
    await unchanged(async () => {
      const r = await asA('POST', '/order', bodyOf(order('SELL', '0.50', '1000000')));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ success: false, errorMsg: 'not enough balance / allowance', orderID: null });
    });
  });

  it('a replayed signed order (same bytes, same EIP-712 id) is refused as Duplicated, even after its cancel', async () => {
    const body = bodyOf(order('BUY', '0.04', '10'));
    const first = await asA('POST', '/order', body);
    expect(first.body).toMatchObject({ success: true, status: 'live' });
    await unchanged(async () => {
      const again = await asA('POST', '/order', body);
      expect([200, 400]).toContain(again.status);
      expect(again.status === 200 ? again.body.errorMsg : again.body.error).toBe(`order ${first.body.orderID} is invalid. Duplicated.`);
    });
    const cancel = await asA('DELETE', '/order', { orderID: first.body.orderID });
    expect(cancel.body.canceled).toEqual([first.body.orderID]);
    await unchanged(async () => {
      const again = await asA('POST', '/order', body);
      expect(again.status === 200 ? again.body.errorMsg : again.body.error).toMatch(/Duplicated\.$/);
    });
  });

  it("unknown order ids and other accounts' orders: nothing is cancelled", async () => {
    await unchanged(async () => {
      const unknown = `0x${'de'.repeat(32)}`;
      const one = await asA('DELETE', '/order', { orderID: unknown });
      expect(one).toEqual({ status: 200, body: { canceled: [], not_canceled: { [unknown]: 'order not found' } } });
      const other = await asA('DELETE', '/orders', [restingB, unknown]);
      expect(other).toEqual({ status: 200, body: { canceled: [], not_canceled: { [restingB]: 'order not found', [unknown]: 'order not found' } } });
      expectError(await asA('GET', `/data/order/${restingB}`), 404, 'order not found');
      expectError(await asA('GET', `/data/order/${unknown}`), 404, 'order not found');
      const market2 = sim.service.exchange.markets[1]!;
      expect(await asA('DELETE', '/cancel-market-orders', { market: market2.conditionId })).toEqual({ status: 200, body: { canceled: [], not_canceled: {} } });
      expect(await asA('DELETE', '/cancel-market-orders', { asset_id: '123' })).toEqual({ status: 200, body: { canceled: [], not_canceled: {} } });
    });
  });
});

const invalidFrames = () => Number(sim.service.metrics?.().ws_invalid_frames ?? Number.NaN);

/** A socket that keeps every text frame (the channel may answer with non-JSON text). */
class RawWs {
  readonly texts: string[] = [];
  readonly events: any[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const t = String(d);
      this.texts.push(t);
      try {
        const v = JSON.parse(t) as unknown;
        this.events.push(...(Array.isArray(v) ? v : [v]));
      } catch {
        // not JSON: kept in texts
      }
    });
  }

  static async open(url: string): Promise<RawWs> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new RawWs(ws);
  }

  send(v: unknown): void {
    this.ws.send(typeof v === 'string' ? v : JSON.stringify(v));
  }

  async barrier(): Promise<void> {
    const n = this.texts.filter((t) => t === 'PONG').length;
    this.ws.send('PING');
    await waitFor(() => this.texts.filter((t) => t === 'PONG').length > n, { what: 'PONG' });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

describe('garbage WebSocket frames', () => {
  it('market channel: bad frames are ignored (counted), the socket and the server live on', async () => {
    await unchanged(async () => {
      const invalid0 = invalidFrames();
      const c = await RawWs.open(sim.wsUrl);
      try {
        const frames = ['garbage', '{', '[]', 'null', '42', '{"assets_ids":"x"}', '{"assets_ids":[1,2]}', '{"assets_ids":[],"operation":"drop"}', JSON.stringify({ assets_ids: ['9'.repeat(101)] }), 'ping', 'PONG'];
        for (const f of frames) c.send(f);
        c.ws.send(Buffer.from([0xff, 0xfe, 0x00, 0x01]), { binary: true });
        c.send({ assets_ids: ['123456789', 'not-a-token'], type: 'market' }); // unknown tokens: no book, no error
        await c.barrier();
        expect(c.texts.filter((t) => t !== 'PONG')).toEqual([]);
        expect(invalidFrames()).toBeGreaterThanOrEqual(invalid0 + frames.length);
        // Still a working subscription channel.
        c.send({ operation: 'subscribe', assets_ids: [yes] });
        await waitFor(() => c.events.some((e) => e.event_type === 'book' && e.asset_id === yes), { what: 'book after garbage' });
      } finally {
        await c.close();
      }
      // A frame over the 1 MiB limit closes only that socket (1009), not the server.
      const big = new WebSocket(sim.wsUrl);
      await new Promise((r) => big.once('open', r));
      const closed = new Promise<number>((r) => big.once('close', (code) => r(code)));
      big.on('error', () => {});
      big.send('x'.repeat(1024 * 1024 + 10));
      expect(await closed).toBe(1009);
    });
    // The shared market socket of this file still works.
    await barrier(market);
  });

  it('user channel: garbage before auth closes with 1008; after auth it is ignored', async () => {
    await unchanged(async () => {
      const url = sim.wsUrl.replace('/ws/market', '/ws/user');
      for (const first of ['garbage', '{}', 'PING', JSON.stringify({ auth: { apiKey: credsA.apiKey, secret: credsB.secret, passphrase: credsA.passphrase } }), JSON.stringify({ auth: 'x' })]) {
        const ws = new WebSocket(url);
        await new Promise((r) => ws.once('open', r));
        const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
        ws.send(first);
        expect(await closed, first).toBe(1008);
      }
      const c = await RawWs.open(url);
      try {
        c.send({ auth: { apiKey: credsA.apiKey, secret: credsA.secret, passphrase: credsA.passphrase }, type: 'user' });
        await c.barrier();
        for (const f of ['garbage', '{', '[]', '{"operation":"explode","markets":[]}', '{"operation":"subscribe","markets":"x"}']) c.send(f);
        c.ws.send(Buffer.from([0, 1, 2]), { binary: true });
        await c.barrier();
        expect(c.texts.filter((t) => t !== 'PONG')).toEqual([]);
        expect(c.ws.readyState).toBe(WebSocket.OPEN);
      } finally {
        await c.close();
      }
    });
  });
});
