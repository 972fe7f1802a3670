import { readFileSync } from 'node:fs';
import websocket from '@fastify/websocket';
import { createLogger } from '@polybot/core';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Exchange } from '../src/exchange.js';
import { registerRtds } from '../src/routes/rtds.js';
import { parseFilters, ReferencePrices } from '../src/rtds.js';
import { micros } from './helpers.js';

const sample = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/rtds/${name}`, import.meta.url), 'utf8'));
const UPDATE = sample('rtds_crypto_prices_update.json');
const SNAPSHOT = sample('rtds_crypto_prices_subscribe.json');
const SUB_BINANCE = sample('rtds_subscribe_binance.json');
const SUB_CHAINLINK = sample('rtds_subscribe_chainlink.json');

const keys = (o: object) => Object.keys(o).sort();

class Client {
  readonly msgs: any[] = [];
  readonly texts: string[] = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const t = d.toString();
      if (t === 'pong' || t === 'PONG') this.texts.push(t);
      else this.msgs.push(JSON.parse(t));
    });
  }
  static open(url: string): Promise<Client> {
    return new Promise((res, rej) => {
      const ws = new WebSocket(url);
      ws.once('open', () => res(new Client(ws)));
      ws.once('error', rej);
    });
  }
  async until(pred: () => boolean, ms = 2000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

describe('reference prices', () => {
  it('walk per second from realistic levels, deterministically', () => {
    const a = new ReferencePrices(5, 1_700_000_000_000);
    const b = new ReferencePrices(5, 1_700_000_000_000);
    a.advanceTo(1_700_000_100_000);
    b.advanceTo(1_700_000_050_000);
    b.advanceTo(1_700_000_100_000);
    for (const asset of a.assets) expect(a.current(asset)).toEqual(b.current(asset));
    const btc = a.current(a.find('btcusdt')!);
    expect(btc.second).toBe(1_700_000_100);
    expect(btc.binance).toBeGreaterThan(80_000);
    expect(btc.binance).toBeLessThan(100_000);
    expect(a.recent(a.find('btc/usd')!)).toHaveLength(60);
    expect(parseFilters('solusdt,btcusdt')).toEqual(['solusdt', 'btcusdt']);
    expect(parseFilters('{"symbol":"eth/usd"}')).toEqual(['eth/usd']);
    expect(parseFilters(undefined)).toEqual([]);
  });
});

describe('GET /ws/rtds', () => {
  const now = { t: 1_780_730_269_000 };
  let app: FastifyInstance;
  let url: string;
  let ex: Exchange;
  beforeAll(async () => {
    ex = new Exchange({ seed: 2, markets: 1, startBalance: micros('1'), now: () => now.t, timers: false });
    app = Fastify();
    await app.register(websocket);
    registerRtds(app, { exchange: ex, log: createLogger('rtds-test', { level: 'silent' }) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    url = `ws://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/ws/rtds`;
  });
  afterAll(async () => {
    await app?.close();
    ex?.close();
  });

  it('sends a snapshot then one update per second on crypto_prices, shaped like the samples', async () => {
    const c = await Client.open(url);
    c.ws.send(JSON.stringify({ action: 'subscribe', subscriptions: [{ topic: 'crypto_prices', type: 'update', filters: 'btcusdt' }] }));
    await c.until(() => c.msgs.length === 1);
    const snap = c.msgs[0];
    expect(keys(snap)).toEqual(keys(SNAPSHOT));
    expect(keys(snap.payload)).toEqual(keys(SNAPSHOT.payload));
    expect(snap).toMatchObject({ topic: 'crypto_prices', type: 'subscribe', payload: { symbol: 'btcusdt' } });
    expect(typeof snap.payload.data[0].value).toBe('number');
    expect(keys(snap.payload.data[0])).toEqual(keys(SNAPSHOT.payload.data[0]));

    now.t += 2_000;
    ex.tick(now.t);
    await c.until(() => c.msgs.length === 3);
    const [u1, u2] = c.msgs.slice(1);
    for (const u of [u1, u2]) {
      expect(keys(u)).toEqual(keys(UPDATE));
      expect(keys(u.payload)).toEqual(keys(UPDATE.payload));
      expect(u).toMatchObject({ topic: 'crypto_prices', type: 'update', timestamp: now.t, payload: { symbol: 'btcusdt' } });
      expect(typeof u.payload.value).toBe('number');
      expect(u.payload.full_accuracy_value).toBe(u.payload.value.toFixed(8));
    }
    expect(u2.payload.timestamp - u1.payload.timestamp).toBe(1000);
    expect(u2.payload.timestamp).toBe(now.t);

    c.ws.send('ping');
    await c.until(() => c.texts.length === 1);
    expect(c.texts).toEqual(['pong']);
    c.ws.send(JSON.stringify({ action: 'unsubscribe', subscriptions: [{ topic: 'crypto_prices', filters: 'btcusdt' }] }));
    c.ws.send('ping');
    await c.until(() => c.texts.length === 2);
    now.t += 1_000;
    ex.tick(now.t);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.msgs).toHaveLength(3);
    c.ws.close();
  });

  it('serves the docs examples: several Binance symbols, and Chainlink with a JSON filter', async () => {
    const c = await Client.open(url);
    c.ws.send(JSON.stringify(SUB_BINANCE));
    c.ws.send(JSON.stringify(SUB_CHAINLINK));
    await c.until(() => c.msgs.length === 4);
    expect(c.msgs.map((m) => [m.topic, m.type, m.payload.symbol])).toEqual([
      ['crypto_prices', 'subscribe', 'btcusdt'],
      ['crypto_prices', 'subscribe', 'ethusdt'],
      ['crypto_prices', 'subscribe', 'solusdt'],
      ['crypto_prices_chainlink', 'subscribe', 'eth/usd'],
    ]);
    now.t += 1_000;
    ex.tick(now.t);
    await c.until(() => c.msgs.length === 8);
    const updates = c.msgs.slice(4);
    expect(updates.map((m) => `${m.topic}:${m.payload.symbol}`).sort()).toEqual(
      ['crypto_prices:btcusdt', 'crypto_prices:ethusdt', 'crypto_prices:solusdt', 'crypto_prices_chainlink:eth/usd'].sort(),
    );
    const cl = updates.find((m) => m.topic === 'crypto_prices_chainlink');
    expect(keys(cl.payload)).toEqual(['symbol', 'timestamp', 'value']);
    const bin = updates.find((m) => m.payload.symbol === 'ethusdt');
    expect(Math.abs(cl.payload.value - bin.payload.value)).toBeLessThan(0.01);
    c.ws.send('{"nope":1}');
    c.ws.send('ping');
    await c.until(() => c.texts.length === 1);
    c.ws.close();
  });
});
