import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { waitFor } from '@polybot/testkit';
import { MarketWsClient, parseMarketFrame, type WsMarketEvent } from '../src/index.js';

// <repo>/packages/polymarket/test → <repo>/../shared/polymarket/samples
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const samples = resolve(repoRoot, '../shared/polymarket/samples');
const sample = (p: string) => readFileSync(resolve(samples, p), 'utf8');

describe('parseMarketFrame', () => {
  it('parses or skips-and-counts every recorded market-channel line without throwing', () => {
    const lines = sample('ws_market_messages.jsonl').split('\n').filter((l) => l.trim());
    expect(lines.length).toBeGreaterThan(10);
    let events = 0;
    for (const line of lines) {
      const r = parseMarketFrame(line);
      // Every object of the line is accounted for exactly once.
      const raw: unknown = JSON.parse(line);
      const objects = Array.isArray(raw) ? raw.length : 1;
      expect(r.events.length + r.invalid + r.unknown).toBe(objects);
      events += r.events.length;
    }
    expect(events).toBeGreaterThan(8);
  });

  it('normalizes the flat 2024 and the legacy changes[] price_change into the current form', () => {
    const flat = parseMarketFrame(sample('ws_market/price_change_legacy_flat_2024.json'));
    expect(flat.events).toHaveLength(1);
    const f = flat.events[0]!;
    expect(f.event_type).toBe('price_change');
    if (f.event_type !== 'price_change') throw new Error('unreachable');
    expect(f.price_changes).toEqual([
      {
        asset_id: '48331043336612883890938759509493159234755048973500640148014422747788308965732',
        price: '0.514',
        size: '21574.08',
        side: 'SELL',
        hash: 'bf32b3746fff40c76c98021b7f3f07261169dd26',
      },
    ]);
    const legacy = parseMarketFrame(sample('docs_examples/price_change_legacy_changes_array_pre_2025-09-15.json'));
    const l = legacy.events[0]!;
    if (l.event_type !== 'price_change') throw new Error('expected price_change');
    expect(l.timestamp).toBe('1729084877448');
    expect(l.price_changes[0]).toMatchObject({ asset_id: '71321045679252212594626385532706912750332728571942532289631379312455583992563', price: '0.4', side: 'SELL', size: '3300' });
  });

  it('handles array frames, current price_change, book, trade and tick size samples', () => {
    const batch = parseMarketFrame(sample('ws_market/rs_batch_array_frame.json'));
    expect(batch.events.map((e) => e.event_type)).toEqual(['book', 'price_change', 'last_trade_price']);
    const cur = parseMarketFrame(sample('ws_market/price_change_two_assets_synthetic.json'));
    expect(cur.events[0]?.event_type).toBe('price_change');
    expect(parseMarketFrame(sample('ws_market/book_recorded_2024.json')).events[0]?.event_type).toBe('book');
    expect(parseMarketFrame(sample('ws_market/tick_size_change_recorded_2025.json')).events[0]?.event_type).toBe('tick_size_change');
    expect(parseMarketFrame(sample('ws_market/best_bid_ask.json')).events[0]?.event_type).toBe('best_bid_ask');
  });

  it('skips PONG, garbage and schema failures', () => {
    expect(parseMarketFrame('PONG')).toMatchObject({ pong: true, events: [] });
    expect(parseMarketFrame('{not json')).toMatchObject({ invalid: 1, events: [] });
    expect(parseMarketFrame('42')).toMatchObject({ invalid: 1 });
    expect(parseMarketFrame('null')).toMatchObject({ invalid: 1 });
    expect(parseMarketFrame('[1,"x",{"event_type":"book"}]')).toMatchObject({ invalid: 3, events: [] });
    expect(parseMarketFrame('{"event_type":"mystery"}')).toMatchObject({ unknown: 1 });
    expect(parseMarketFrame('{"event_type":"price_change","market":"m","timestamp":"1","price_changes":[{"asset_id":"a","price":"abc","side":"BUY"}]}')).toMatchObject({ invalid: 1 });
    expect(parseMarketFrame('')).toMatchObject({ invalid: 1 });
  });
});

describe('MarketWsClient', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function fakeVenue() {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/ws/market' });
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
        if (text === 'PING' && answerPings) s.send('PONG');
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
      broadcast: (text: string) => {
        for (const s of wss.clients) s.send(text);
      },
      frames: (conn: number) => received.filter((r) => r.conn === conn && r.text !== 'PING').map((r) => JSON.parse(r.text) as Record<string, unknown>),
      pings: (conn: number) => received.filter((r) => r.conn === conn && r.text === 'PING').length,
    };
  }

  it('subscribes, pings, changes subscriptions and delivers events', async () => {
    const venue = await fakeVenue();
    const events: WsMarketEvent[] = [];
    const client = new MarketWsClient({ url: venue.url, onEvent: (e) => events.push(e), pingIntervalMs: 100, initialBackoffMs: 50 });
    cleanups.push(() => client.close());
    client.subscribe(['a1', 'a2']);
    client.start();
    await waitFor(() => venue.frames(1).length >= 1, { what: 'subscribe frame' });
    expect(venue.frames(1)[0]).toEqual({ assets_ids: ['a1', 'a2'], type: 'market', custom_feature_enabled: false });
    await waitFor(() => venue.pings(1) >= 2, { what: 'pings' });
    client.subscribe(['a2', 'a3']);
    client.unsubscribe(['a1']);
    await waitFor(() => venue.frames(1).length >= 3, { what: 'subscription changes' });
    expect(venue.frames(1)[1]).toEqual({ operation: 'subscribe', assets_ids: ['a3'], custom_feature_enabled: false });
    expect(venue.frames(1)[2]).toEqual({ operation: 'unsubscribe', assets_ids: ['a1'] });
    venue.sockets[0]!.send(sample('ws_market/rs_batch_array_frame.json'));
    venue.sockets[0]!.send('garbage');
    await waitFor(() => events.length >= 3, { what: 'events' });
    await waitFor(() => client.stats.invalid >= 1, { what: 'invalid counted' });
    expect(client.stats.pongs).toBeGreaterThan(0);
    expect(client.connected).toBe(true);
  });

  it('does not ping before it has subscribed', async () => {
    const venue = await fakeVenue();
    const client = new MarketWsClient({ url: venue.url, onEvent: () => {}, pingIntervalMs: 50 });
    cleanups.push(() => client.close());
    client.start();
    await waitFor(() => client.connected, { what: 'connect' });
    await new Promise((r) => setTimeout(r, 300));
    expect(venue.pings(1)).toBe(0);
    client.subscribe(['x']);
    await waitFor(() => venue.frames(1).length === 1 && venue.pings(1) > 0, { what: 'subscribe then ping' });
    expect(venue.frames(1)[0]).toMatchObject({ assets_ids: ['x'], type: 'market' });
  });

  it('reconnects after a drop and replays the subscription exactly once per connection', async () => {
    const venue = await fakeVenue();
    const states: string[] = [];
    const client = new MarketWsClient({ url: venue.url, onEvent: () => {}, onStatus: (s) => states.push(s.state), initialBackoffMs: 50, maxBackoffMs: 200, pingIntervalMs: 1000 });
    cleanups.push(() => client.close());
    client.subscribe(['a1']);
    client.start();
    await waitFor(() => venue.frames(1).length === 1, { what: 'first subscribe' });
    client.subscribe(['a2']);
    await waitFor(() => venue.frames(1).length === 2, { what: 'dynamic subscribe' });
    venue.sockets[0]!.terminate();
    await waitFor(() => venue.frames(2).length >= 1, { what: 'resubscribe' });
    await new Promise((r) => setTimeout(r, 200));
    expect(venue.frames(2)).toEqual([{ assets_ids: ['a1', 'a2'], type: 'market', custom_feature_enabled: false }]);
    expect(client.stats.reconnects).toBeGreaterThanOrEqual(1);
    expect(states).toContain('closed');
  });

  it('reconnects when the link goes silent (staleness watchdog)', async () => {
    const venue = await fakeVenue();
    venue.setAnswerPings(false);
    const client = new MarketWsClient({ url: venue.url, onEvent: () => {}, staleMs: 300, pingIntervalMs: 100, initialBackoffMs: 50, maxBackoffMs: 100 });
    cleanups.push(() => client.close());
    client.subscribe(['a1']);
    client.start();
    await waitFor(() => venue.conns() >= 2, { what: 'stale reconnect' });
    expect(client.stats.stale).toBeGreaterThanOrEqual(1);
  });

  it('treats a socket that answers PONG but sends no data as stale', async () => {
    const venue = await fakeVenue();
    const client = new MarketWsClient({ url: venue.url, onEvent: () => {}, staleMs: 300, pingIntervalMs: 50, initialBackoffMs: 50, maxBackoffMs: 100 });
    cleanups.push(() => client.close());
    client.subscribe(['a1']);
    client.start();
    await waitFor(() => venue.conns() >= 2, { what: 'stale reconnect despite PONGs' });
    expect(client.stats.pongs).toBeGreaterThan(0);
    expect(client.stats.stale).toBeGreaterThanOrEqual(1);
  });

  it('hands raw frames to onFrame verbatim, PONG excluded', async () => {
    const venue = await fakeVenue();
    const frames: string[] = [];
    const client = new MarketWsClient({ url: venue.url, onFrame: (t) => frames.push(t), pingIntervalMs: 50 });
    cleanups.push(() => client.close());
    client.subscribe(['a1']);
    client.start();
    await waitFor(() => client.stats.pongs > 0 && venue.conns() >= 1, { what: 'pong' });
    venue.broadcast('{"event_type":"mystery"}');
    venue.broadcast('not json');
    await waitFor(() => frames.length >= 2, { what: 'frames' });
    expect(frames).toEqual(['{"event_type":"mystery"}', 'not json']);
  });

  it('keeps retrying while the venue is down and stops cleanly', async () => {
    const client = new MarketWsClient({ url: 'ws://127.0.0.1:1', onEvent: () => {}, initialBackoffMs: 20, maxBackoffMs: 50 });
    client.subscribe(['a']);
    client.start();
    await waitFor(() => client.stats.reconnects >= 3, { what: 'retries' });
    await client.close();
    const n = client.stats.reconnects;
    await new Promise((r) => setTimeout(r, 200));
    expect(client.stats.reconnects).toBe(n);
    expect(client.stats.state).toBe('stopped');
  });
});
