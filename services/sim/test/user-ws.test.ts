import { createLogger, loadConfig } from '@polybot/core';
import { WsUserOrder, WsUserTrade } from '@polybot/polymarket';
import { tempDataDir, waitFor } from '@polybot/testkit';
import type { FastifyInstance } from 'fastify';
import Value from 'typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKeyStore, type ApiKeyStore } from '../src/auth.js';
import { Exchange, type UserEvent } from '../src/exchange.js';
import { SimConfig } from '../src/index.js';
import { MarketHub } from '../src/market-ws.js';
import { userWsMetrics } from '../src/routes/user-ws.js';
import { buildServer } from '../src/server.js';
import { WsClient } from './helpers.js';

// Events from samples/ws_user (order_placement_recorded_2024, order_update_partial_synthetic,
// trade_matched_recorded_2024), trimmed; market and ids are rewritten per test.
const ORDER_PLACEMENT: WsUserOrder = {
  asset_id: '21742633143463906290569050155826241533067272736897614950488156847949938836455',
  associate_trades: null,
  created_at: '1725842520',
  event_type: 'order',
  expiration: '0',
  id: '0x0f76f4dc6eaf3332f4100f2e8a0b4a927351dd64646b7bb12f37df775c657a78',
  maker_address: '0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8',
  market: '0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917',
  order_owner: '3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe',
  order_type: 'GTC',
  original_size: '5',
  outcome: 'Yes',
  owner: '3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe',
  price: '0.513',
  side: 'BUY',
  size_matched: '0',
  status: 'LIVE',
  timestamp: '1725842520990',
  type: 'PLACEMENT',
};
const ORDER_PARTIAL: WsUserOrder = {
  ...ORDER_PLACEMENT,
  associate_trades: ['trade-0xabcdef1234'],
  expiration: null,
  size_matched: '2',
  type: 'UPDATE',
  timestamp: '1725842521500',
};
const TRADE_MATCHED: WsUserTrade = {
  asset_id: '21742633143463906290569050155826241533067272736897614950488156847949938836455',
  bucket_index: 0,
  event_type: 'trade',
  fee_rate_bps: '0',
  id: 'f50e8ab2-652d-4dc8-9c82-8e46197fe98d',
  last_update: '1725958682',
  maker_address: '0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8',
  maker_orders: [
    {
      asset_id: '21742633143463906290569050155826241533067272736897614950488156847949938836455',
      fee_rate_bps: '0',
      maker_address: '0x629BC4a1E53e1d475beB7ea3D388791e96Dd995A',
      matched_amount: '5',
      order_id: '0xa39ab90ec5515224a2a39c9ef967b51d10bda754902a318cac84135018b5885a',
      outcome: 'Yes',
      owner: 'ce168652-c146-2d93-a45c-f36cc52ae6f6',
      price: '0.52',
    },
  ],
  market: '0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917',
  match_time: '1725958681',
  outcome: 'Yes',
  owner: '3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe',
  price: '0.52',
  side: 'BUY',
  size: '5',
  status: 'MATCHED',
  taker_order_id: '0x5b605a0e8e40f3402d3cb3bc19edad6733ed23fbc079d2a09ee399c3487ace81',
  timestamp: '1725958682125',
  trade_owner: '3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe',
  trader_side: 'TAKER',
  transaction_hash: '0xa667ef3b363b70731c59e3d4fff50d7bdb3d6b165d49e448032cab68c82e3c66',
  type: 'TRADE',
};

const ALICE = { apiKey: '11111111-1111-4111-8111-111111111111', secret: 'c2VjcmV0LWFsaWNlLTMyLWJ5dGVzLWxvbmctLS0tLS0=', passphrase: 'aa'.repeat(32), address: '0x' + 'a1'.repeat(20) };
const BOB = { apiKey: '22222222-2222-4222-8222-222222222222', secret: 'c2VjcmV0LWJvYi0zMi1ieXRlcy1sb25nLS0tLS0tLS0=', passphrase: 'bb'.repeat(32), address: '0x' + 'b2'.repeat(20) };
/** A second key of Alice's account (keys are per nonce). */
const ALICE2 = { ...ALICE, apiKey: '33333333-3333-4333-8333-333333333333', secret: 'YW5vdGhlci1zZWNyZXQtb2YtYWxpY2UtLS0tLS0tLS0=' };
const creds = (k: typeof ALICE) => ({ apiKey: k.apiKey, secret: k.secret, passphrase: k.passphrase });

let app: FastifyInstance;
let exchange: Exchange;
let store: ApiKeyStore;
let url: string;
let M0: string;
let M1: string;
let baseListeners = 0;
const tmp = tempDataDir('pbsim-userws');
const clients: WsClient[] = [];
let seq = 0;

const listenerCount = () => (exchange as unknown as { userListeners: Set<unknown> }).userListeners.size;
const emit = (address: string, event: WsUserOrder | WsUserTrade) =>
  (exchange as unknown as { emitUser(ev: UserEvent): void }).emitUser({ address, event });
/** A sample event with a unique id, on the given market. */
function order(market: string, base: WsUserOrder = ORDER_PLACEMENT): WsUserOrder {
  return { ...base, market, id: `0x${(++seq).toString(16).padStart(64, '0')}` };
}
function trade(market: string): WsUserTrade {
  return { ...TRADE_MATCHED, market, id: `trade-${++seq}` };
}

beforeAll(async () => {
  const config = loadConfig(SimConfig, {
    env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_SIM_PORT: '0', POLYBOT_LOG_LEVEL: 'silent', POLYBOT_SIM_MARKETS: '2', POLYBOT_SIM_EVENT_RATE: '0' },
    envFile: false,
  });
  const log = createLogger('sim-test', { level: 'silent' });
  exchange = new Exchange({ seed: 7, markets: 2, startBalance: 10_000_000_000n });
  [M0, M1] = exchange.markets.map((m) => m.conditionId) as [string, string];
  store = createApiKeyStore();
  for (const k of [ALICE, BOB, ALICE2]) store.put({ ...k, nonce: 0, createdAt: 0 });
  app = await buildServer({ exchange, hub: new MarketHub(exchange, log), log, config, auth: store, dataDir: tmp.dir });
  await app.listen({ host: '127.0.0.1', port: 0 });
  baseListeners = listenerCount(); // other routes may hold their own user listeners
  const addr = app.server.address();
  url = `ws://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/ws/user`;
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await app?.close();
  tmp.cleanup();
});

interface UserClient extends WsClient {
  closed: Promise<{ code: number; reason: string }>;
}
async function open(): Promise<UserClient> {
  const c = (await WsClient.open(url)) as UserClient;
  c.closed = new Promise((resolve) => c.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  clients.push(c);
  return c;
}
/** PING/PONG is answered in order, so after it every earlier frame of ours has been applied. */
async function sync(c: WsClient): Promise<void> {
  const n = c.texts.length;
  c.send('PING');
  await waitFor(() => c.texts.length > n, { what: 'PONG' });
}
async function login(k: typeof ALICE, markets?: string[]): Promise<UserClient> {
  const c = await open();
  c.send(markets ? { auth: creds(k), markets, type: 'user' } : { auth: creds(k), type: 'user' });
  await sync(c);
  return c;
}

describe('user WebSocket', () => {
  it("delivers the account's order and trade events, valid against the schemas, and nobody else's", async () => {
    const alice = await login(ALICE);
    const bob = await login(BOB);
    const before = userWsMetrics(exchange);
    expect(before.clients).toBeGreaterThanOrEqual(2);

    const mine = [order(M0), order(M1, ORDER_PARTIAL), trade(M0)];
    const bobs = order(M0);
    emit(BOB.address, bobs);
    emit(ALICE.address.toUpperCase().replace('0X', '0x'), mine[0]!); // addresses match case-insensitively
    await waitFor(() => alice.events.length >= 1, { what: 'first event' });
    // Several events of one tick leave as one array frame.
    const frames = alice.frames;
    emit(ALICE.address, mine[1]!);
    emit(ALICE.address, mine[2]!);
    await waitFor(() => alice.events.length >= 3, { what: 'batched events' });
    expect(alice.frames).toBe(frames + 1);

    expect(alice.events.map((e) => e.id)).toEqual(mine.map((e) => e.id));
    for (const e of alice.events) {
      const schema = e.event_type === 'trade' ? WsUserTrade : WsUserOrder;
      expect(Value.Check(schema, e), JSON.stringify(e)).toBe(true);
    }
    expect(alice.events[2]).toEqual(mine[2]);
    await waitFor(() => bob.events.length >= 1, { what: "bob's event" });
    expect(bob.events.map((e) => e.id)).toEqual([bobs.id]);
    expect(alice.events.some((e) => e.id === bobs.id)).toBe(false);

    const after = userWsMetrics(exchange);
    expect(after.eventsSent - before.eventsSent).toBe(4);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('sends the events of one account to every key and socket of it', async () => {
    const a1 = await login(ALICE);
    const a2 = await login(ALICE2, [M1]);
    const ev = order(M1);
    emit(ALICE.address, ev);
    await waitFor(() => a1.events.length >= 1 && a2.events.length >= 1, { what: 'both sockets' });
    expect(a1.events[0]).toEqual(ev);
    expect(a2.events[0]).toEqual(ev);
    await Promise.all([a1.close(), a2.close()]);
  });

  it('filters by condition id and follows subscribe / unsubscribe', async () => {
    const c = await login(ALICE, [M0]);
    const ids = () => c.events.map((e) => e.id);
    const e1 = order(M1);
    const e0 = order(M0);
    emit(ALICE.address, e1);
    emit(ALICE.address, e0);
    await waitFor(() => c.events.length >= 1, { what: 'M0 event' });
    await sync(c);
    expect(ids()).toEqual([e0.id]);

    c.send({ operation: 'subscribe', markets: [M1] });
    await sync(c);
    const e1b = trade(M1);
    emit(ALICE.address, e1b);
    await waitFor(() => c.events.length >= 2, { what: 'M1 event after subscribe' });
    expect(ids()).toEqual([e0.id, e1b.id]);

    c.send({ operation: 'unsubscribe', markets: [M0] });
    await sync(c);
    const e0b = order(M0);
    const e1c = order(M1);
    emit(ALICE.address, e0b);
    emit(ALICE.address, e1c);
    await waitFor(() => c.events.length >= 3, { what: 'M1 event after unsubscribe' });
    await sync(c);
    expect(ids()).toEqual([e0.id, e1b.id, e1c.id]);

    // Unsubscribing the last market leaves an empty filter, which means every market again.
    c.send({ operation: 'unsubscribe', markets: [M1] });
    await sync(c);
    const e0c = order(M0);
    emit(ALICE.address, e0c);
    await waitFor(() => c.events.length >= 4, { what: 'event with empty filter' });
    expect(ids().at(-1)).toBe(e0c.id);
    await c.close();
  });

  it('answers PING with PONG and counts invalid frames after auth without dropping the socket', async () => {
    const c = await login(ALICE);
    const before = userWsMetrics(exchange).invalidFrames;
    c.send('{not json');
    c.send({ operation: 'subscribe', markets: 'nope' });
    c.send({ operation: 'resubscribe', markets: [M0] });
    c.send(Buffer.from([1, 2, 3]));
    c.send('PING');
    await waitFor(() => c.texts.length >= 2, { what: 'second PONG' });
    expect(c.texts).toEqual(['PONG', 'PONG']);
    expect(userWsMetrics(exchange).invalidFrames - before).toBe(4);
    const ev = order(M0);
    emit(ALICE.address, ev);
    await waitFor(() => c.events.length >= 1, { what: 'event after garbage' });
    expect(c.events[0].id).toBe(ev.id);
    await c.close();
  });

  it('closes with 1008 on missing or wrong credentials, and on PING before auth', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['wrong secret', { auth: { ...creds(ALICE), secret: BOB.secret }, type: 'user' }, 'invalid api credentials'],
      ['wrong passphrase', { auth: { ...creds(ALICE), passphrase: 'cc'.repeat(32) }, type: 'user' }, 'invalid api credentials'],
      ['unknown key', { auth: { ...creds(ALICE), apiKey: '99999999-9999-4999-8999-999999999999' }, type: 'user' }, 'invalid api credentials'],
      ["another key's secret", { auth: { ...creds(BOB), secret: ALICE.secret, passphrase: ALICE.passphrase }, type: 'user' }, 'invalid api credentials'],
      ['missing auth', { markets: [M0], type: 'user' }, 'auth required'],
      ['partial auth', { auth: { apiKey: ALICE.apiKey }, type: 'user' }, 'auth required'],
      ['market frame', { assets_ids: [], type: 'market' }, 'auth required'],
      ['wrong channel', { auth: creds(ALICE), type: 'market' }, 'wrong channel type'],
      ['PING first', 'PING', 'auth required'],
      ['garbage', '{oops', 'auth required'],
      ['subscribe first', { operation: 'subscribe', markets: [M0] }, 'auth required'],
    ];
    const before = userWsMetrics(exchange).authFailures;
    for (const [what, frame, reason] of cases) {
      const c = await open();
      c.send(frame);
      const closed = await c.closed;
      expect(closed, what).toEqual({ code: 1008, reason });
      expect(c.texts, what).toEqual([]); // no PONG before auth
    }
    expect(userWsMetrics(exchange).authFailures - before).toBe(cases.length);
  });

  it('accepts the upper-case type of the old docs and a null markets filter', async () => {
    const c = await open();
    c.send({ auth: creds(BOB), markets: null, type: 'USER' });
    await sync(c);
    const ev = trade(M1);
    emit(BOB.address, ev);
    await waitFor(() => c.events.length >= 1, { what: 'event' });
    expect(c.events[0]).toEqual(ev);
    await c.close();
  });

  it('holds an exchange listener only while an authenticated client is connected', async () => {
    await waitFor(() => userWsMetrics(exchange).clients === 0, { what: 'earlier clients gone' });
    expect(listenerCount()).toBe(baseListeners);
    const pending = await open();
    await waitFor(() => userWsMetrics(exchange).pending >= 1, { what: 'pending client' });
    expect(listenerCount()).toBe(baseListeners);
    const a = await login(ALICE);
    const b = await login(BOB);
    expect(listenerCount()).toBe(baseListeners + 1);
    await a.close();
    await waitFor(() => userWsMetrics(exchange).clients === 1, { what: 'one client left' });
    expect(listenerCount()).toBe(baseListeners + 1);
    await b.close();
    await waitFor(() => userWsMetrics(exchange).clients === 0, { what: 'no client left' });
    expect(listenerCount()).toBe(baseListeners);
    await pending.close();
    await waitFor(() => userWsMetrics(exchange).pending === 0, { what: 'pending gone' });
  });
});
