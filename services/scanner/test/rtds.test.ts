import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { Codec, PROTOCOL_VERSION, topics, type BusMessage } from '@polybot/protocol';
import { freePort, waitFor } from '@polybot/testkit';
import { startSim, type RunningSim } from '../../sim/test/helpers.js';
import { createRtdsAdapter, rtdsSubscribeFrame, type RtdsAdapter } from '../src/adapters/rtds.js';
import type { RawFrame } from '../src/pipeline/types.js';
import { newerOnly, parseRtdsFrame, processRtdsFrame, refPriceMessage, refPriceTopic, type RefPriceEvent } from '../src/processors/rtds.js';

// <repo>/services/scanner/test → samples live beside the repo in <repo>/../shared.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const samplesDir = resolve(repoRoot, '../shared/polymarket/samples');
const readSample = (p: string) => readFileSync(resolve(samplesDir, p), 'utf8');
const SUBSCRIBE = readSample('rtds/rtds_crypto_prices_subscribe.json');
const UPDATE = readSample('rtds/rtds_crypto_prices_update.json');

describe('RTDS processor', () => {
  it('turns the recorded subscribe dump into one event per point, oldest first', () => {
    const r = parseRtdsFrame(SUBSCRIBE, 1234);
    expect(r.invalid).toBe(0);
    expect(r.pong).toBe(false);
    expect(r.events).toEqual([
      { symbol: 'btcusdt', source: 'binance', value: 61164.12, venueTs: 1780726209000, recvTs: 1234, snapshot: true },
      { symbol: 'btcusdt', source: 'binance', value: 61161.07, venueTs: 1780726210000, recvTs: 1234, snapshot: true },
      { symbol: 'btcusdt', source: 'binance', value: 61150.89, venueTs: 1780726211000, recvTs: 1234, snapshot: true },
    ]);
  });

  it('turns the recorded update into one live event', () => {
    const frame: RawFrame = { source: 'rtds', conn: 0, recvTs: 99, data: UPDATE };
    const r = processRtdsFrame(frame);
    expect(r.invalid).toBe(0);
    expect(r.events).toEqual([{ symbol: 'btcusdt', source: 'binance', value: 61035.86, venueTs: 1780730269000, recvTs: 99, snapshot: false }]);
  });

  it('reads the Chainlink topic, out-of-order dumps and decimal strings', () => {
    const dump = JSON.parse(SUBSCRIBE);
    dump.topic = 'crypto_prices_chainlink';
    dump.payload.symbol = 'BTC/USD';
    dump.payload.data.reverse();
    const r = parseRtdsFrame(JSON.stringify(dump), 1);
    expect(r.events.map((e) => [e.source, e.symbol, e.venueTs])).toEqual([
      ['chainlink', 'btc/usd', 1780726209000],
      ['chainlink', 'btc/usd', 1780726210000],
      ['chainlink', 'btc/usd', 1780726211000],
    ]);
    const upd = JSON.parse(UPDATE);
    upd.topic = 'crypto_prices_chainlink';
    upd.payload = { symbol: 'eth/usd', timestamp: 1780730269000, value: '3012.12345678' };
    const u = parseRtdsFrame(JSON.stringify(upd), 2);
    expect(u.events).toEqual([{ symbol: 'eth/usd', source: 'chainlink', value: 3012.12345678, venueTs: 1780730269000, recvTs: 2, snapshot: false }]);
    // Array frames carry several messages.
    expect(parseRtdsFrame(`[${UPDATE},${UPDATE}]`, 3).events).toHaveLength(2);
  });

  it('counts garbage as invalid and never throws', () => {
    const upd = JSON.parse(UPDATE);
    const bad = (payload: unknown) => JSON.stringify({ ...upd, payload });
    const cases: Array<[string, { invalid: number; ignored?: number; events?: number; pong?: boolean }]> = [
      ['not json', { invalid: 1 }],
      ['{"topic":', { invalid: 1 }],
      ['42', { invalid: 1 }],
      ['[1,"x",null]', { invalid: 3 }],
      [bad(null), { invalid: 1 }],
      [bad({ symbol: 'btcusdt', timestamp: 1 }), { invalid: 1 }],
      [bad({ symbol: 'btcusdt', timestamp: 1, value: -5 }), { invalid: 1 }],
      [bad({ symbol: 'btcusdt', timestamp: 1, value: 0 }), { invalid: 1 }],
      [bad({ symbol: 'btcusdt', timestamp: 1, value: 1e13 }), { invalid: 1 }],
      [bad({ symbol: 'btcusdt', timestamp: 1, value: 'NaN' }), { invalid: 1 }],
      [bad({ symbol: 'btcusdt', timestamp: -1, value: 5 }), { invalid: 1 }],
      [bad({ symbol: '', timestamp: 1, value: 5 }), { invalid: 1 }],
      [bad({ symbol: 'x'.repeat(33), timestamp: 1, value: 5 }), { invalid: 1 }],
      [bad({ symbol: 7, timestamp: 1, value: 5 }), { invalid: 1 }],
      [bad({ symbol: 'btcusdt', data: [{ timestamp: 1, value: 5 }, { timestamp: 2 }, 'x', { timestamp: 3, value: 6 }] }), { invalid: 2, events: 2 }],
      [JSON.stringify({ ...upd, topic: 'activity' }), { invalid: 0, ignored: 1 }],
      ['{"message":"Subscribed","statusCode":200}', { invalid: 0, ignored: 1 }],
      ['{"payload":{"symbol":"btcusdt"}}', { invalid: 1 }],
      ['', { invalid: 0, ignored: 1 }],
      ['pong', { invalid: 0, pong: true }],
      ['PONG', { invalid: 0, pong: true }],
    ];
    for (const [text, want] of cases) {
      const r = parseRtdsFrame(text, 1);
      expect({ text, invalid: r.invalid }).toEqual({ text, invalid: want.invalid });
      expect(r.events.length).toBe(want.events ?? 0);
      if (want.ignored !== undefined) expect(r.ignored).toBe(want.ignored);
      expect(r.pong).toBe(want.pong ?? false);
    }
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ topic: 'crypto_prices_chainlink', type: 'update', payload: v }))), (text) => {
        const r = parseRtdsFrame(text, 1);
        for (const e of r.events) {
          expect(e.value).toBeGreaterThan(0);
          expect(Number.isFinite(e.venueTs)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('keeps only newer points per symbol and builds valid bus messages', () => {
    const last = new Map<string, number>();
    const dump = parseRtdsFrame(SUBSCRIBE, 1).events;
    expect(newerOnly(dump, last)).toHaveLength(3);
    // A reconnect repeats the dump: nothing new in it.
    expect(newerOnly(dump, last)).toHaveLength(0);
    expect(newerOnly(parseRtdsFrame(UPDATE, 2).events, last)).toHaveLength(1);

    const e: RefPriceEvent = { symbol: 'btc/usd', source: 'chainlink', value: 90123.456789, venueTs: 1780730269000, recvTs: 1780730269123, snapshot: false };
    const msg = refPriceMessage(e);
    expect(msg).toEqual({ type: 'ref_price', symbol: 'btc/usd', source: 'chainlink', value: 90123.456789, venue_ts: 1780730269000, recv_ts: 1780730269123 });
    expect(refPriceTopic(e)).toBe(topics.ref('btc/usd'));
    expect(refPriceTopic(e)).toBe('ref.btc-usd');
    const stamped = { ...msg, v: PROTOCOL_VERSION, src: 'test', seq: 1, ts: Date.now() } as BusMessage;
    expect(new Codec().check(stamped)).toBeNull();
  });
});

// ---------------------------------------------------------------- adapter

function collector() {
  const frames: RawFrame[] = [];
  const events: RefPriceEvent[] = [];
  let invalid = 0;
  const sink = (f: RawFrame) => {
    frames.push(f);
    const r = processRtdsFrame(f);
    invalid += r.invalid;
    events.push(...r.events);
  };
  return { frames, events, sink, invalid: () => invalid };
}

describe('RTDS adapter against the simulator', () => {
  let sim: RunningSim | undefined;
  let adapter: RtdsAdapter | undefined;
  afterAll(async () => {
    await adapter?.stop();
    await sim?.stop();
  });

  it('subscribes the four Chainlink symbols, streams them, and reconnects after the server drops it', async () => {
    const port = await freePort();
    const env = { POLYBOT_SIM_PORT: String(port), POLYBOT_SIM_MARKETS: '1', POLYBOT_SIM_EVENT_RATE: '0' };
    sim = await startSim(env);
    const c = collector();
    adapter = createRtdsAdapter({ url: `ws://127.0.0.1:${port}/ws/rtds`, sink: c.sink, pingIntervalMs: 200, initialBackoffMs: 100, maxBackoffMs: 1000 });
    adapter.start();
    const symbols = ['btc/usd', 'eth/usd', 'sol/usd', 'xrp/usd'];
    await waitFor(() => symbols.every((s) => c.events.some((e) => e.symbol === s && e.snapshot)), { timeoutMs: 30_000, what: 'subscribe dumps' });
    await waitFor(() => symbols.every((s) => c.events.some((e) => e.symbol === s && !e.snapshot)), { timeoutMs: 30_000, what: 'live updates' });
    await waitFor(() => c.frames.some((f) => f.data === 'pong'), { timeoutMs: 30_000, what: 'a pong' });
    expect(c.invalid()).toBe(0);
    expect(c.frames.every((f) => f.source === 'rtds' && f.conn === 0 && f.recvTs > 0)).toBe(true);
    expect(new Set(c.events.map((e) => e.source))).toEqual(new Set(['chainlink']));
    expect(adapter.connected).toBe(true);
    const before = c.frames.length;

    // The venue goes away (close 1001), then comes back on the same address.
    await sim.stop();
    sim = undefined;
    await waitFor(() => Number(adapter!.stats().reconnects) >= 1, { timeoutMs: 30_000, what: 'a reconnect attempt' });
    expect(adapter.connected).toBe(false);
    sim = await startSim(env);
    await waitFor(() => adapter!.stats().connects === 2, { timeoutMs: 60_000, what: 'the second connection' });
    await waitFor(
      () => symbols.every((s) => c.frames.slice(before).some((f) => processRtdsFrame(f).events.some((e) => e.symbol === s && !e.snapshot))),
      { timeoutMs: 30_000, what: 'updates on the new connection' },
    );
    const st = adapter.stats();
    // Replayed once per connection, never more.
    expect(st.subscribe_frames).toBe(st.connects);
    expect(Number(st.pings)).toBeGreaterThan(0);
    expect(c.invalid()).toBe(0);
  });
});

describe('RTDS adapter against a quiet server', () => {
  let wss: WebSocketServer | undefined;
  let adapter: RtdsAdapter | undefined;
  afterEach(async () => {
    await adapter?.stop();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    wss = undefined;
  });

  it('answers pongs but sends no prices: the watchdog reconnects; one subscription per connection', async () => {
    const conns: Array<{ socket: ServerSocket; received: string[] }> = [];
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss!.once('listening', () => r()));
    wss.on('connection', (socket) => {
      const conn = { socket, received: [] as string[] };
      conns.push(conn);
      socket.on('message', (d) => {
        const t = d.toString();
        conn.received.push(t);
        if (t === 'ping') socket.send('pong');
      });
    });
    const addr = wss.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const c = collector();
    adapter = createRtdsAdapter({
      url: `ws://127.0.0.1:${port}/`,
      sink: c.sink,
      symbols: ['BTC/USD', 'eth/usd'],
      pingIntervalMs: 50,
      staleMs: 400,
      initialBackoffMs: 50,
      maxBackoffMs: 200,
    });
    adapter.start();
    await waitFor(() => conns.length >= 3 && Number(adapter!.stats().stale) >= 2, { timeoutMs: 30_000, what: 'stale reconnects' });
    await adapter.stop();
    adapter = undefined;
    const expected = rtdsSubscribeFrame('crypto_prices_chainlink', ['btc/usd', 'eth/usd']);
    expect(JSON.parse(expected)).toEqual({
      action: 'subscribe',
      subscriptions: [
        { topic: 'crypto_prices_chainlink', type: '*', filters: '{"symbol":"btc/usd"}' },
        { topic: 'crypto_prices_chainlink', type: '*', filters: '{"symbol":"eth/usd"}' },
      ],
    });
    // The last connection may have been cut by stop() before its subscription arrived.
    conns.forEach((conn, i) => {
      const subs = conn.received.filter((t) => t !== 'ping');
      if (i < conns.length - 1 || subs.length > 0) expect(subs).toEqual([expected]);
    });
    // Pongs kept coming, yet they are not data: the link was still judged stale.
    expect(c.frames.some((f) => f.data === 'pong')).toBe(true);
    expect(c.events).toHaveLength(0);
  });
});
