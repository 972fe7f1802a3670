import { readdirSync, readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet } from 'ethers';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { waitFor } from '@polybot/testkit';
import { startSim, type RunningSim } from '../../../services/sim/test/helpers.js';
import { buildL2Headers, buildSignedOrder, ClobTradingClient, createOrDeriveApiKey, type ApiCreds } from '../src/index.js';
import {
  parseUserFrame,
  toEpochMs,
  TradeDeduper,
  UserWsClient,
  type UserOrderEvent,
  type UserTradeEvent,
  type UserWsEvent,
  type UserWsStatus,
} from '../src/user-ws.js';

// <repo>/packages/polymarket/test → <repo>/../shared/polymarket
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const shared = resolve(repoRoot, '../shared/polymarket');
const sample = (p: string) => readFileSync(resolve(shared, 'samples', p), 'utf8');
const one = (text: string): UserWsEvent => {
  const r = parseUserFrame(text);
  expect(r, JSON.stringify(r.reasons)).toMatchObject({ invalid: 0, unknown: 0 });
  expect(r.events).toHaveLength(1);
  return r.events[0]!;
};
const order = (file: string) => one(sample(`ws_user/${file}`)) as UserOrderEvent;
const trade = (file: string) => one(sample(`ws_user/${file}`)) as UserTradeEvent;

const DECIMAL = /^[0-9]*\.?[0-9]+$/;
const Y2020 = Date.UTC(2020, 0, 1);
const Y2100 = Date.UTC(2100, 0, 1);

describe('parseUserFrame: the ws_user samples', () => {
  it('recorded PLACEMENT: created_at seconds → ms, timestamp ms kept, null trades → [], "0" expiration → none', () => {
    expect(order('order_placement_recorded_2024.json')).toEqual({
      event_type: 'order',
      id: '0x0f76f4dc6eaf3332f4100f2e8a0b4a927351dd64646b7bb12f37df775c657a78',
      owner: '3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe',
      order_owner: '3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe',
      market: '0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917',
      asset_id: '21742633143463906290569050155826241533067272736897614950488156847949938836455',
      side: 'BUY',
      price: '0.513',
      original_size: '5',
      size_matched: '0',
      outcome: 'Yes',
      type: 'PLACEMENT',
      status: 'LIVE',
      status_known: true,
      raw_status: 'LIVE',
      associate_trades: [],
      maker_address: '0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8',
      order_type: 'GTC',
      created_at_ms: 1_725_842_520_000,
      timestamp_ms: 1_725_842_520_990,
    });
  });

  it('recorded CANCELLATION', () => {
    expect(order('order_cancel_recorded_2024.json')).toMatchObject({
      type: 'CANCELLATION',
      status: 'CANCELED',
      status_known: true,
      side: 'SELL',
      size_matched: '5',
      created_at_ms: 1_725_841_741_000,
      timestamp_ms: 1_725_841_743_272,
    });
  });

  it('killed FOK: CANCELED_<reason> split, empty size_matched/created_at/outcome normalized', () => {
    const e = order('order_fok_killed_reason_suffix.json');
    expect(e).toMatchObject({
      type: 'CANCELLATION',
      status: 'CANCELED',
      status_reason: "order couldn't be fully filled. FOK orders are fully filled or killed.",
      status_known: true,
      raw_status: "CANCELED_order couldn't be fully filled. FOK orders are fully filled or killed.",
      size_matched: '0',
      original_size: '12',
      order_type: 'FOK',
      associate_trades: [],
      timestamp_ms: 1_777_824_065_000,
    });
    expect(e).not.toHaveProperty('created_at_ms');
    expect(e).not.toHaveProperty('outcome');
  });

  it('venue cancel (status INVALID) without event_type; created_at already in ms stays ms', () => {
    expect(order('order_venue_cancel_invalid.json')).toMatchObject({
      event_type: 'order',
      type: 'CANCELLATION',
      status: 'INVALID',
      status_known: true,
      created_at_ms: 1_774_377_384_000,
      timestamp_ms: 1_774_378_800_285,
    });
  });

  it('partial UPDATE and MATCHED UPDATE (synthetic, no event_type, expiration null)', () => {
    const partial = order('order_update_partial_synthetic.json');
    expect(partial).toMatchObject({ type: 'UPDATE', status: 'LIVE', size_matched: '25.0', original_size: '100.0', associate_trades: ['trade-0xabcdef1234'], created_at_ms: 1_703_875_200_000, timestamp_ms: 1_703_875_200_500 });
    expect(partial).not.toHaveProperty('expiration_ms');
    expect(order('order_matched_synthetic.json')).toMatchObject({ type: 'UPDATE', status: 'MATCHED', size_matched: '100.0', associate_trades: ['trade-0xfill1'] });
  });

  it('recorded MINED trade with a complementary-token maker; times to ms, decimals untouched', () => {
    const t = trade('trade_mined_recorded_2024.json');
    expect(t).toMatchObject({
      event_type: 'trade',
      id: '83b5c849-620e-4c23-b63b-2e779c04a6e7',
      status: 'MINED',
      status_known: true,
      terminal: false,
      side: 'BUY',
      size: '1096.87',
      price: '0.518',
      trader_side: 'MAKER',
      match_time_ms: 1_725_868_859_000,
      last_update_ms: 1_725_868_885_000,
      timestamp_ms: 1_725_868_885_871,
      transaction_hash: '0x876310b8e67cacf110abdd4106438968c55f2cce795c13c3c7a0896fc4af730d',
      bucket_index: 0,
    });
    expect(t.maker_orders).toHaveLength(6);
    expect(t.maker_orders[0]).toEqual({
      order_id: '0x3b67d584e1e7ad29b06bda373449638898aa87f0c9fd52a34bdbfb1325a6c184',
      owner: '78132bc3-22af-6aa2-79ae-11929f821cae',
      maker_address: '0xFfd192468b7a05b38c37C82d09fA941289FaEB23',
      matched_amount: '10',
      price: '0.482',
      fee_rate_bps: '0',
      asset_id: '48331043336612883890938759509493159234755048973500640148014422747788308965732',
      outcome: 'No',
    });
  });

  it('recorded MATCHED taker trade', () => {
    expect(trade('trade_matched_recorded_2024.json')).toMatchObject({ status: 'MATCHED', trader_side: 'TAKER', terminal: false, size: '5', price: '0.52', timestamp_ms: 1_725_958_682_125 });
  });

  it('CONFIRMED trades whose timestamp is in seconds; maker_orders[].side kept', () => {
    const t = trade('trade_confirmed_maker_side_2025.json');
    expect(t).toMatchObject({ status: 'CONFIRMED', terminal: true, outcome: 'No', timestamp_ms: 1_762_776_436_000, match_time_ms: 1_762_776_367_000 });
    expect(t.maker_orders[0]!.side).toBe('BUY');
    const multi = trade('trade_multi_maker_2025.json');
    expect(multi).toMatchObject({ side: 'SELL', size: '15', status: 'CONFIRMED' });
    expect(multi.maker_orders.map((m) => [m.price, m.matched_amount])).toEqual([
      ['0.4', '5'],
      ['0.35', '5'],
      ['0.3', '5'],
    ]);
  });

  it('the synthetic ISO-8601 match_time/last_update are read as ISO times (the venue sends unix seconds)', () => {
    const t = trade('trade_confirmed_synthetic.json');
    expect(t).toMatchObject({
      id: 'trade-0xabcdef1234',
      status: 'CONFIRMED',
      size: '25.0',
      match_time_ms: Date.UTC(2024, 0, 1, 0, 0, 0),
      last_update_ms: Date.UTC(2024, 0, 1, 0, 1, 0),
      timestamp_ms: 1_703_875_200_000,
      maker_orders: [],
    });
    expect(t).not.toHaveProperty('transaction_hash');
  });

  it('every sample file and every jsonl line gives exactly one valid event with string decimals and ms times', () => {
    const files = readdirSync(resolve(shared, 'samples/ws_user')).filter((f) => f.endsWith('.json'));
    const lines = sample('ws_user_messages.jsonl').split('\n').filter((l) => l.trim());
    expect(files.length).toBe(11);
    expect(lines.length).toBe(files.length);
    for (const text of [...files.map((f) => sample(`ws_user/${f}`)), ...lines]) {
      const e = one(text);
      expect(e.status_known).toBe(true);
      expect(e.timestamp_ms).toBeGreaterThan(Y2020);
      expect(e.timestamp_ms).toBeLessThan(Y2100);
      if (e.event_type === 'order') {
        for (const v of [e.price, e.original_size, e.size_matched]) expect(v).toMatch(DECIMAL);
        if (e.created_at_ms !== undefined) expect(e.created_at_ms).toBeGreaterThan(Y2020);
      } else {
        for (const v of [e.price, e.size, ...e.maker_orders.flatMap((m) => [m.price, m.matched_amount])]) expect(v).toMatch(DECIMAL);
        expect(e.match_time_ms).toBeGreaterThan(Y2020);
      }
    }
    // The whole jsonl as one array frame, as the venue batches.
    const batch = parseUserFrame(`[${lines.join(',')}]`);
    expect(batch.events).toHaveLength(lines.length);
  });
});

describe('parseUserFrame: statuses, units and bad input', () => {
  const base = JSON.parse(sample('ws_user/order_placement_recorded_2024.json')) as Record<string, unknown>;
  const baseTrade = JSON.parse(sample('ws_user/trade_matched_recorded_2024.json')) as Record<string, unknown>;
  const withOrder = (patch: Record<string, unknown>) => parseUserFrame(JSON.stringify({ ...base, ...patch }));
  const withTrade = (patch: Record<string, unknown>) => parseUserFrame(JSON.stringify({ ...baseTrade, ...patch }));

  it('splits prefixed statuses, upper-cases known ones, keeps and flags unknown ones', () => {
    expect(withOrder({ status: 'CANCELED_MARKET_RESOLVED' }).events[0]).toMatchObject({ status: 'CANCELED', status_reason: 'MARKET_RESOLVED', status_known: true });
    expect(withOrder({ status: 'live' }).events[0]).toMatchObject({ status: 'LIVE', raw_status: 'live', status_known: true });
    for (const s of ['DELAYED', 'UNMATCHED', 'MATCHED']) expect(withOrder({ status: s }).events[0]).toMatchObject({ status: s, status_known: true });
    const odd = withOrder({ status: 'PENDING_REVIEW' });
    expect(odd).toMatchObject({ unknownStatus: 1, invalid: 0 });
    expect(odd.events[0]).toMatchObject({ status: 'PENDING_REVIEW', raw_status: 'PENDING_REVIEW', status_known: false });
    expect(odd.reasons[0]).toContain('unknown status');

    expect(withTrade({ status: 'TRADE_STATUS_CONFIRMED' }).events[0]).toMatchObject({ status: 'CONFIRMED', terminal: true, status_known: true });
    expect(withTrade({ status: 'FAILED' }).events[0]).toMatchObject({ status: 'FAILED', terminal: true });
    expect(withTrade({ status: 'RETRYING' }).events[0]).toMatchObject({ status: 'RETRYING', terminal: false });
    expect(withTrade({ status: 'MATCHED_NOT_BROADCASTED' }).events[0]).toMatchObject({ status: 'MATCHED_NOT_BROADCASTED', status_known: true });
    const weird = withTrade({ status: 'SETTLING' });
    expect(weird).toMatchObject({ unknownStatus: 1, invalid: 0 });
    expect(weird.events[0]).toMatchObject({ status: 'SETTLING', status_known: false, terminal: false });
  });

  it('normalizes seconds, ms, µs, ns and ISO times; rejects junk', () => {
    expect(toEpochMs('1725842520')).toBe(1_725_842_520_000);
    expect(toEpochMs('1725842520990')).toBe(1_725_842_520_990);
    expect(toEpochMs('1725842520990123')).toBe(1_725_842_520_990);
    expect(toEpochMs('1725842520990123456')).toBe(1_725_842_520_990);
    expect(toEpochMs('1725842520.5')).toBe(1_725_842_520_500);
    expect(toEpochMs(1725842520)).toBe(1_725_842_520_000);
    expect(toEpochMs('2024-01-01T00:00:00Z')).toBe(Date.UTC(2024, 0, 1));
    for (const bad of ['', '0', '-5', 'abc', '12e3', '2024-01-01', null, undefined, {}, Number.NaN]) expect(toEpochMs(bad)).toBeUndefined();
  });

  it('an order or trade without a usable timestamp is invalid, with the reason', () => {
    const r = withOrder({ timestamp: 'yesterday' });
    expect(r).toMatchObject({ invalid: 1, events: [] });
    expect(r.reasons[0]).toContain('timestamp');
    expect(withTrade({ timestamp: '' })).toMatchObject({ invalid: 1 });
  });

  it('counts and skips garbage, truncated, wrong-schema, unknown-type and oversized frames without throwing', () => {
    expect(parseUserFrame('PONG')).toMatchObject({ pong: true, events: [], invalid: 0 });
    expect(parseUserFrame('{not json')).toMatchObject({ invalid: 1 });
    expect(parseUserFrame('')).toMatchObject({ invalid: 1 });
    expect(parseUserFrame('null')).toMatchObject({ invalid: 1 });
    expect(parseUserFrame('42')).toMatchObject({ invalid: 1 });
    const text = sample('ws_user/trade_mined_recorded_2024.json');
    expect(parseUserFrame(text.slice(0, Math.floor(text.length / 2)))).toMatchObject({ invalid: 1, events: [] });
    expect(parseUserFrame('{"event_type":"book"}')).toMatchObject({ unknown: 1, invalid: 0 });
    expect(parseUserFrame('{"event_type":"order","id":"x"}')).toMatchObject({ invalid: 1 });
    expect(withOrder({ price: 'NaN' })).toMatchObject({ invalid: 1 });
    expect(withOrder({ side: 'HOLD' })).toMatchObject({ invalid: 1 });
    expect(withTrade({ maker_orders: [{ order_id: 'x' }] })).toMatchObject({ invalid: 1 });
    // A mixed batch: the good objects still come through.
    const mixed = parseUserFrame(`[1, "x", ${JSON.stringify(base)}, {"event_type":"mystery"}, ${JSON.stringify({ ...baseTrade, size: 5 })}]`);
    expect(mixed).toMatchObject({ invalid: 3, unknown: 1 });
    expect(mixed.events).toHaveLength(1);
    // Huge: refused before JSON.parse sees it.
    const huge = JSON.stringify({ ...base, outcome: 'x'.repeat(2_000_000) });
    expect(parseUserFrame(huge, { maxChars: 1_000_000 })).toMatchObject({ invalid: 1, events: [] });
    // Prototype keys are plain data, nothing leaks into Object.prototype.
    const proto = parseUserFrame(JSON.stringify({ ...base }).replace('{', '{"__proto__":{"polluted":true},'));
    expect(proto.events).toHaveLength(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('never throws and accounts for every object, whatever arrives (property)', () => {
    const texts = [sample('ws_user/order_fok_killed_reason_suffix.json'), sample('ws_user/trade_multi_maker_2025.json')];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.tuple(fc.constantFrom(...texts), fc.nat()).map(([t, n]) => t.slice(0, n % t.length)),
          fc.array(fc.oneof(fc.jsonValue(), fc.constantFrom(...texts.map((t) => JSON.parse(t) as unknown)))).map((a) => JSON.stringify(a)),
        ),
        (text) => {
          const r = parseUserFrame(text);
          let objects = 1;
          try {
            const v: unknown = JSON.parse(text.trim());
            if (Array.isArray(v)) objects = v.length;
          } catch {
            // Not JSON: one invalid frame.
          }
          if (!r.pong) expect(r.events.length + r.invalid + r.unknown).toBe(objects);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('TradeDeduper', () => {
  it('passes each lifecycle step once and refuses repeats', () => {
    const d = new TradeDeduper();
    expect(d.accept({ id: 't1', status: 'MATCHED' })).toBe(true);
    expect(d.accept({ id: 't1', status: 'MATCHED' })).toBe(false);
    expect(d.accept({ id: 't1', status: 'MINED' })).toBe(true);
    expect(d.accept({ id: 't2', status: 'MATCHED' })).toBe(true);
    expect(d.accept({ id: 't1', status: 'CONFIRMED' })).toBe(true);
    expect(d.accept({ id: 't1', status: 'CONFIRMED' })).toBe(false);
    // A late replay after the terminal status is stale.
    expect(d.accept({ id: 't1', status: 'MINED' })).toBe(false);
    expect(d.duplicates).toBe(3);
    expect(d.statuses('t1')).toEqual(['MATCHED', 'MINED', 'CONFIRMED']);
  });

  it('lets a trade be mined again after RETRYING, and stops after FAILED', () => {
    const d = new TradeDeduper();
    for (const s of ['MATCHED', 'MINED', 'RETRYING', 'MINED', 'FAILED']) expect(d.accept({ id: 't', status: s })).toBe(true);
    expect(d.accept({ id: 't', status: 'CONFIRMED' })).toBe(false);
  });

  it('keeps memory bounded, forgetting the least recently seen trade', () => {
    const d = new TradeDeduper(3);
    for (const id of ['a', 'b', 'c']) d.accept({ id, status: 'MATCHED' });
    d.accept({ id: 'a', status: 'MINED' }); // a is now the youngest
    d.accept({ id: 'd', status: 'MATCHED' }); // b goes
    expect(d.size).toBe(3);
    expect(d.statuses('b')).toEqual([]);
    expect(d.accept({ id: 'a', status: 'MATCHED' })).toBe(false);
    expect(() => new TradeDeduper(0)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------- client against a fake venue

const CREDS: ApiCreds = {
  apiKey: '0a1b2c3d-aaaa-bbbb-cccc-000011112222',
  secret: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==',
  passphrase: 'f00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeed',
};

interface Logged {
  level: string;
  obj: object;
  msg?: string;
}
function recordingLogger() {
  const lines: Logged[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, ...(msg ? { msg } : {}) });
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn') } };
}

describe('UserWsClient against a fake venue', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function fakeVenue(opts: { rejectAuth?: boolean } = {}) {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/ws/user' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const port = (wss.address() as { port: number }).port;
    const received: Array<{ conn: number; text: string }> = [];
    const sockets: ServerSocket[] = [];
    let conns = 0;
    let answerPings = true;
    wss.on('connection', (s) => {
      const conn = ++conns;
      sockets.push(s);
      s.on('message', (d) => {
        const text = d.toString();
        received.push({ conn, text });
        if (opts.rejectAuth && text.startsWith('{"auth"')) s.close(1008, 'invalid api credentials');
        else if (text === 'PING' && answerPings) s.send('PONG');
      });
    });
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of wss.clients) s.terminate();
          wss.close(() => r());
        }),
    );
    return {
      url: `ws://127.0.0.1:${port}`,
      received,
      sockets,
      conns: () => conns,
      setAnswerPings: (v: boolean) => (answerPings = v),
      last: () => sockets[sockets.length - 1]!,
      frames: (conn: number) => received.filter((r) => r.conn === conn && r.text !== 'PING').map((r) => JSON.parse(r.text) as Record<string, unknown>),
      pings: (conn: number) => received.filter((r) => r.conn === conn && r.text === 'PING').length,
    };
  }

  function client(url: string, extra: Partial<ConstructorParameters<typeof UserWsClient>[0]> = {}) {
    const events: UserWsEvent[] = [];
    const statuses: UserWsStatus[] = [];
    const c = new UserWsClient({
      url,
      creds: CREDS,
      onEvent: (e) => events.push(e),
      onStatus: (s) => statuses.push(s),
      initialBackoffMs: 30,
      maxBackoffMs: 100,
      ...extra,
    });
    cleanups.push(() => c.close());
    return { c, events, statuses, count: (state: string) => statuses.filter((s) => s.state === state).length };
  }

  it('authenticates, pings at once, changes the market filter, delivers normalized events and counts junk', async () => {
    const venue = await fakeVenue();
    const { lines, log } = recordingLogger();
    const { c, events, statuses } = client(venue.url, { markets: ['0xm1'], log, pingIntervalMs: 100 });
    c.start();
    await waitFor(() => c.ready, { what: 'ready after PONG' });
    expect(venue.frames(1)[0]).toEqual({ auth: { apiKey: CREDS.apiKey, secret: CREDS.secret, passphrase: CREDS.passphrase }, markets: ['0xm1'], type: 'user' });
    // The first PING goes right behind the auth frame, not a ping interval later.
    expect(venue.received[1]).toEqual({ conn: 1, text: 'PING' });
    expect(statuses.map((s) => s.state)).toEqual(['connecting', 'open', 'ready']);

    c.subscribe(['0xm1', '0xm2']);
    c.unsubscribe(['0xm1', '0xnever']);
    await waitFor(() => venue.frames(1).length >= 3, { what: 'subscription frames' });
    expect(venue.frames(1).slice(1)).toEqual([
      { operation: 'subscribe', markets: ['0xm2'] },
      { operation: 'unsubscribe', markets: ['0xm1'] },
    ]);
    expect(c.subscriptions).toEqual(['0xm2']);

    const s = venue.last();
    s.send(sample('ws_user/order_fok_killed_reason_suffix.json'));
    s.send(`[${sample('ws_user/trade_matched_recorded_2024.json')},${sample('ws_user/trade_mined_recorded_2024.json')}]`);
    s.send('garbage');
    s.send('{"event_type":"book"}');
    await waitFor(() => events.length >= 3 && c.stats.invalid >= 1 && c.stats.unknown >= 1, { what: 'events and junk' });
    expect(events.map((e) => `${e.event_type}:${e.status}`)).toEqual(['order:CANCELED', 'trade:MATCHED', 'trade:MINED']);
    expect(c.stats).toMatchObject({ connects: 1, orders: 1, trades: 2, events: 3, invalid: 1, unknown: 1, reconnects: 0, reconnected: 0 });
    await waitFor(() => venue.pings(1) >= 3, { what: 'periodic pings' });

    const logged = JSON.stringify(lines);
    expect(logged).not.toContain(CREDS.secret);
    expect(logged).not.toContain(CREDS.passphrase);
    expect(logged).not.toContain(CREDS.apiKey);
    expect(logged).toContain(CREDS.apiKey.slice(0, 8));
  });

  it('a throwing handler is counted and does not stop the stream', async () => {
    const venue = await fakeVenue();
    let n = 0;
    const { c } = client(venue.url, {
      onEvent: () => {
        n++;
        throw new Error('consumer bug');
      },
    });
    c.start();
    await waitFor(() => c.ready, { what: 'ready' });
    venue.last().send(sample('ws_user/order_cancel_recorded_2024.json'));
    venue.last().send(sample('ws_user/order_placement_recorded_2024.json'));
    await waitFor(() => n === 2, { what: 'both events handled' });
    expect(c.stats.handlerErrors).toBe(2);
    expect(c.ready).toBe(true);
  });

  it('a frame above maxPayloadBytes is counted, the socket replaced, and reconnected emitted once with the filter replayed', async () => {
    const venue = await fakeVenue();
    const { c, count, statuses } = client(venue.url, { markets: ['0xa'], maxPayloadBytes: 64 * 1024 });
    c.start();
    await waitFor(() => c.ready, { what: 'ready' });
    c.subscribe(['0xb']);
    await waitFor(() => venue.frames(1).length === 2, { what: 'subscribe' });
    venue.last().send(JSON.stringify({ event_type: 'order', pad: 'x'.repeat(100 * 1024) }));
    await waitFor(() => count('reconnected') === 1 && venue.conns() === 2, { what: 'reconnected' });
    expect(c.stats.oversize).toBe(1);
    expect(c.stats.invalid).toBe(1);
    expect(venue.frames(2)).toEqual([{ auth: { apiKey: CREDS.apiKey, secret: CREDS.secret, passphrase: CREDS.passphrase }, markets: ['0xa', '0xb'], type: 'user' }]);
    const states = statuses.map((s) => s.state);
    expect(states.slice(states.indexOf('closed'))).toEqual(['closed', 'connecting', 'open', 'ready', 'reconnected']);
    expect(statuses.at(-1)!.downMs).toBeGreaterThanOrEqual(0);
  });

  it('reconnects when nothing at all arrives (no PONG) and says reconnected once the new link answers', async () => {
    const venue = await fakeVenue();
    const { c, count } = client(venue.url, { staleMs: 300, pingIntervalMs: 100 });
    c.start();
    await waitFor(() => c.ready, { what: 'ready' });
    venue.setAnswerPings(false);
    await waitFor(() => c.stats.stale >= 1 && venue.conns() >= 2, { what: 'stale reconnect' });
    expect(count('reconnected')).toBe(0);
    venue.setAnswerPings(true);
    await waitFor(() => count('reconnected') >= 1, { what: 'reconnected' });
    expect(c.stats.staleEvents).toBe(0);
  });

  it('treats a socket that answers PONG but withholds an expected event as frozen', async () => {
    const venue = await fakeVenue();
    const { c, count } = client(venue.url, { staleMs: 60_000, pingIntervalMs: 50, eventTimeoutMs: 1000 });
    c.start();
    await waitFor(() => c.ready, { what: 'ready' });
    c.expectEvent();
    await waitFor(() => c.stats.staleEvents === 1 && count('reconnected') === 1, { what: 'frozen socket replaced' });
    // The expectation went with the old socket (the REST refresh settles it): no reconnect loop.
    await new Promise((r) => setTimeout(r, 1300));
    expect(c.stats.staleEvents).toBe(1);
    expect(venue.conns()).toBe(2);
    // Any event settles a fresh expectation.
    venue.last().send(sample('ws_user/order_placement_recorded_2024.json'));
    await waitFor(() => c.stats.orders === 1, { what: 'event' });
    c.expectEvent();
    venue.last().send(sample('ws_user/order_cancel_recorded_2024.json'));
    await waitFor(() => c.stats.orders === 2, { what: 'expected event' });
  });

  it('counts auth rejections (1008), never becomes ready, and keeps retrying until closed', async () => {
    const venue = await fakeVenue({ rejectAuth: true });
    const { lines, log } = recordingLogger();
    const { c, count } = client(venue.url, { log });
    c.start();
    await waitFor(() => c.stats.authRejects >= 2, { what: 'two rejections' });
    expect(count('ready')).toBe(0);
    expect(count('reconnected')).toBe(0);
    await c.close();
    expect(c.currentState).toBe('stopped');
    expect(JSON.stringify(lines)).not.toContain(CREDS.secret);
    expect(lines.some((l) => l.msg === 'user ws auth rejected')).toBe(true);
  });

  it('refuses to start without credentials, naming none', () => {
    expect(() => new UserWsClient({ url: 'ws://x', creds: { apiKey: 'k', secret: '', passphrase: 'p' }, onEvent: () => {} })).toThrow(/L2 credentials/);
  });
});

// ---------------------------------------------------------------- client against the simulator

// The publicly known Hardhat account #0 of the vectors (l1_clob_auth.json, eip712 vectors); never funded anywhere.
const TEST_KEY = (JSON.parse(readFileSync(resolve(shared, 'vectors/l1_clob_auth.json'), 'utf8')) as { cases: Array<{ privateKey: string }> }).cases[0]!.privateKey;

/** A TCP relay in front of the simulator: cutting it drops the WebSocket the way a network does. */
async function relay(targetPort: number): Promise<{ port: number; cut(): number; close(): Promise<void> }> {
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((down) => {
    const up = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [down, up];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.pipe(up);
    up.pipe(down);
    for (const s of pair) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    cut: () => {
      const n = pairs.size;
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
      return n;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        server.close(() => r());
      }),
  };
}

describe('UserWsClient against the simulator (auth required)', () => {
  let sim: RunningSim;
  let creds: ApiCreds;
  let trading: ClobTradingClient;
  let tokenId: string;
  let conditionId: string;
  let proxy: Awaited<ReturnType<typeof relay>>;
  const wallet = new Wallet(TEST_KEY);

  beforeAll(async () => {
    sim = await startSim({ POLYBOT_SIM_REQUIRE_AUTH: 'true', POLYBOT_SIM_MINE_MS: '100', POLYBOT_SIM_CONFIRM_MS: '200' });
    creds = await createOrDeriveApiKey(sim.base, wallet);
    trading = new ClobTradingClient({
      baseUrl: sim.base,
      authHeaders: (method, path, body) => ({ ...buildL2Headers(creds, wallet.address, { method, requestPath: path, body }) }),
    });
    const markets = (await (await fetch(`${sim.base}/markets?limit=5`)).json()) as Array<{ conditionId: string; clobTokenIds: string }>;
    conditionId = markets[0]!.conditionId;
    tokenId = (JSON.parse(markets[0]!.clobTokenIds) as string[])[0]!;
    proxy = await relay(Number(new URL(sim.base).port));
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await sim?.stop();
  });

  async function place(side: 'BUY' | 'SELL', price: string, size: string): Promise<string> {
    const order = buildSignedOrder({ wallet, tokenId, side, price, size, orderType: 'GTC', tickSize: '0.01', negRisk: false });
    const out = await trading.postOrder({ order, owner: creds.apiKey, orderType: 'GTC' });
    if (out.kind !== 'accepted' || !out.response.orderID) throw new Error(`order not accepted: ${JSON.stringify(out)}`);
    return out.response.orderID;
  }

  async function bestPrices(): Promise<{ bid: number; ask: number }> {
    const book = (await (await fetch(`${sim.base}/book?token_id=${tokenId}`)).json()) as { bids: Array<{ price: string }>; asks: Array<{ price: string }> };
    // Best levels are the last ones (bids ascending, asks descending), as on the venue.
    return { bid: Number(book.bids.at(-1)?.price ?? '0.02'), ask: Number(book.asks.at(-1)?.price ?? '0.98') };
  }

  it('receives PLACEMENT and the trade lifecycle, then survives a dropped connection with one reconnected', async () => {
    const events: UserWsEvent[] = [];
    const statuses: UserWsStatus[] = [];
    const { lines, log } = recordingLogger();
    const dedup = new TradeDeduper();
    const client = new UserWsClient({
      url: `ws://127.0.0.1:${proxy.port}`,
      creds,
      markets: [conditionId],
      onEvent: (e) => events.push(e),
      onStatus: (s) => statuses.push(s),
      log,
      initialBackoffMs: 50,
      maxBackoffMs: 200,
    });
    try {
      client.start();
      await waitFor(() => client.ready, { what: 'authenticated user channel' });

      const { bid, ask } = await bestPrices();
      const restingPrice = Math.max(0.01, Math.round((bid - 0.1) * 100) / 100).toFixed(2);
      const restingId = await place('BUY', restingPrice, '5');
      const placement = (await waitFor(() => events.find((e) => e.event_type === 'order' && e.id === restingId), { what: 'PLACEMENT' })) as UserOrderEvent;
      expect(placement).toMatchObject({ type: 'PLACEMENT', status: 'LIVE', status_known: true, market: conditionId, asset_id: tokenId, side: 'BUY', price: restingPrice, original_size: '5', size_matched: '0', owner: creds.apiKey });
      expect(placement.timestamp_ms).toBeGreaterThan(Y2020);
      expect(placement.created_at_ms).toBeGreaterThan(Y2020);

      // Crossing the best ask makes us the taker of a trade that then settles.
      const crossPrice = Math.min(0.99, Math.round((ask + 0.02) * 100) / 100).toFixed(2);
      const takerId = await place('BUY', crossPrice, '5');
      const trades = () => events.filter((e): e is UserTradeEvent => e.event_type === 'trade' && e.taker_order_id === takerId);
      const first = await waitFor(() => trades()[0], { what: 'trade MATCHED' });
      await waitFor(() => trades().some((t) => t.id === first.id && t.status === 'CONFIRMED'), { what: 'trade MATCHED → CONFIRMED' });
      expect(first).toMatchObject({ status: 'MATCHED', trader_side: 'TAKER', side: 'BUY', market: conditionId, status_known: true });
      expect(first.size).toMatch(DECIMAL);
      expect(first.maker_orders.length).toBeGreaterThan(0);
      expect(first.match_time_ms).toBeGreaterThan(Y2020);
      const steps = trades().filter((t) => t.id === first.id && dedup.accept(t)).map((t) => t.status);
      expect(steps).toEqual(['MATCHED', 'MINED', 'CONFIRMED']);

      // Drop the connection under the client.
      expect(proxy.cut()).toBeGreaterThanOrEqual(1);
      await waitFor(() => statuses.some((s) => s.state === 'reconnected'), { what: 'reconnected' });
      const laterId = await place('BUY', restingPrice, '6');
      await waitFor(() => events.some((e) => e.event_type === 'order' && e.id === laterId), { what: 'an event after the reconnect' });
      expect(statuses.filter((s) => s.state === 'reconnected')).toHaveLength(1);
      expect(client.stats).toMatchObject({ connects: 2, reconnected: 1, authRejects: 0, invalid: 0, unknown: 0, unknownStatus: 0 });

      const logged = JSON.stringify(lines);
      expect(logged).not.toContain(creds.secret);
      expect(logged).not.toContain(creds.passphrase);
      expect(logged).not.toContain(creds.apiKey);
    } finally {
      await client.close();
    }
  });

  it('is refused with wrong credentials and says so in its stats', async () => {
    const client = new UserWsClient({ url: sim.base.replace('http', 'ws'), creds: { ...creds, secret: `${creds.secret.slice(0, -4)}AAA=` }, onEvent: () => {}, initialBackoffMs: 50, maxBackoffMs: 100 });
    try {
      client.start();
      await waitFor(() => client.stats.authRejects >= 1, { what: 'auth rejection' });
      expect(client.ready).toBe(false);
    } finally {
      await client.close();
    }
  });
});
