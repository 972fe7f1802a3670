import type { AddressInfo } from 'node:net';
import { createLogger } from '@polybot/core';
import { waitFor } from '@polybot/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { Exchange } from '../src/exchange.js';
import { MarketHub, type MarketHubOptions } from '../src/market-ws.js';
import { micros, startSim, type RunningSim } from './helpers.js';

// Venue samples (shared/polymarket/samples/ws_market), trimmed to what the routing needs.
const BEST_BID_ASK_SAMPLE = {
  event_type: 'best_bid_ask',
  market: '0x0005c0d312de0be897668695bae9f32b624b4a1ae8b140c49f08447fcc74f442',
  asset_id: '85354956062430465315924116860125388538595433819574542752031640332592237464430',
  best_bid: '0.73',
  best_ask: '0.77',
  spread: '0.04',
  timestamp: '1766789469958',
};
const newMarket = (assets: string[], market: string) => ({
  event_type: 'new_market',
  id: '1031769',
  question: 'Will NVIDIA (NVDA) close above $240 end of January?',
  market,
  slug: 'nvda-above-240-on-january-30-2026',
  description: 'Resolves Yes if ...',
  assets_ids: assets,
  outcomes: ['Yes', 'No'],
  event_message: { id: '125819', ticker: 'nvda', slug: 'nvda', title: 'NVDA', description: '' },
  timestamp: '1766790415550',
});
const marketResolved = (assets: string[], market: string) => ({
  event_type: 'market_resolved',
  id: '1031769',
  market,
  assets_ids: assets,
  winning_asset_id: assets[0],
  winning_outcome: 'Yes',
  timestamp: '1766790415550',
  tags: ['stocks'],
});

/** A market-channel client that keeps JSON events and plain text frames (PONG, INVALID OPERATION) apart. */
class Client {
  readonly events: any[] = [];
  readonly texts: string[] = [];
  readonly frames: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = data.toString();
      this.frames.push(text);
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        this.texts.push(text);
        return;
      }
      if (Array.isArray(v)) this.events.push(...v);
      else this.events.push(v);
    });
    this.closed = new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  }

  static open(url: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new Client(ws)));
      ws.once('error', reject);
    });
  }

  send(v: unknown): void {
    this.ws.send(typeof v === 'string' ? v : JSON.stringify(v));
  }

  /** Everything the server sent before this call has arrived once its PONG is back (frames are ordered). */
  async barrier(): Promise<void> {
    const n = this.texts.filter((t) => t === 'PONG').length;
    this.send('PING');
    await waitFor(() => this.texts.filter((t) => t === 'PONG').length > n, { what: 'PONG barrier' });
  }

  of(type: string): any[] {
    return this.events.filter((e) => e.event_type === type);
  }
}

// ------------------------------------------------------------------ the hub on a bare ws server

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0)) await f();
});

async function setup(opts: MarketHubOptions = {}, markets = 3) {
  const exchange = new Exchange({ seed: 11, markets, startBalance: 0n, timers: false });
  const hub = new MarketHub(exchange, createLogger('sim-test', { level: 'silent' }), opts);
  const off = exchange.on((ev) => hub.publish(ev));
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (s) => hub.accept(s));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const clients: Client[] = [];
  cleanups.push(async () => {
    off();
    for (const c of clients) c.ws.terminate();
    hub.closeAll();
    await new Promise((r) => wss.close(r));
  });
  const connect = async (subscribe?: Record<string, unknown>, books = 0) => {
    const c = await Client.open(url);
    clients.push(c);
    if (subscribe) {
      c.send({ type: 'market', ...subscribe });
      if (books > 0) await waitFor(() => c.of('book').length >= books, { what: 'initial books' });
      else await c.barrier();
    }
    return c;
  };
  const tokens = exchange.markets.map((m) => [...m.tokenIds] as [string, string]);
  return { exchange, hub, connect, tokens, markets: exchange.markets };
}

const priceChange = (market: string, asset: string, bid: string, ask: string, price = bid) => ({
  event_type: 'price_change',
  market,
  timestamp: '1766789469958',
  price_changes: [{ asset_id: asset, price, size: '10', side: 'BUY', hash: '0xabc', best_bid: bid, best_ask: ask }],
});

describe('market channel custom features', () => {
  it('derives best_bid_ask from the live book only for custom-feature connections, in the sample shape', async () => {
    const { exchange, connect, tokens, markets } = await setup();
    const t0 = tokens[0]![0];
    const a = await connect({ assets_ids: [t0], custom_feature_enabled: true }, 1);
    const b = await connect({ assets_ids: [t0] }, 1);
    for (let round = 0; round < 50 && a.of('best_bid_ask').length < 3; round++) {
      for (let i = 0; i < 20; i++) exchange.step();
      await a.barrier();
    }
    const bbas = a.of('best_bid_ask');
    expect(bbas.length).toBeGreaterThanOrEqual(3);
    for (const e of bbas) {
      expect(Object.keys(e).sort()).toEqual(Object.keys(BEST_BID_ASK_SAMPLE).sort());
      for (const v of Object.values(e)) expect(typeof v).toBe('string');
      expect(e).toMatchObject({ market: markets[0]!.conditionId, asset_id: t0 });
      expect(e.timestamp).toMatch(/^\d{13}$/);
      expect(micros(e.spread)).toBe(micros(e.best_ask) - micros(e.best_bid));
      expect(micros(e.best_bid)).toBeLessThan(micros(e.best_ask));
    }
    // Each best_bid_ask is the top the preceding book / price_change reported, and differs from the last one sent.
    let top: [string, string] | undefined;
    let sent: [string, string] | undefined;
    for (const e of a.events) {
      if (e.event_type === 'book') {
        top = [e.bids.at(-1)?.price ?? '0', e.asks.at(-1)?.price ?? '1'];
        sent ??= top; // the snapshot is the starting point
      } else if (e.event_type === 'price_change') {
        const p = e.price_changes.filter((x: any) => x.asset_id === t0).at(-1);
        if (p) top = [p.best_bid, p.best_ask];
      } else if (e.event_type === 'best_bid_ask') {
        expect([micros(e.best_bid), micros(e.best_ask)]).toEqual(top!.map((x) => micros(x)));
        expect(sent && micros(sent[0]) === micros(e.best_bid) && micros(sent[1]) === micros(e.best_ask)).toBe(false);
        sent = [e.best_bid, e.best_ask];
      }
    }
    await b.barrier();
    expect(b.of('price_change').length).toBeGreaterThan(0);
    expect(b.of('best_bid_ask')).toHaveLength(0);

    // A later dynamic frame turns the feature on, even though its asset is already held (and so ignored).
    const books = b.of('book').length;
    b.send({ operation: 'subscribe', assets_ids: [t0], custom_feature_enabled: true });
    await b.barrier();
    expect(b.of('book')).toHaveLength(books); // no second snapshot for a duplicate
    for (let round = 0; round < 50 && b.of('best_bid_ask').length === 0; round++) {
      for (let i = 0; i < 20; i++) exchange.step();
      await b.barrier();
    }
    expect(b.of('best_bid_ask').length).toBeGreaterThan(0);
  });

  it('sends best_bid_ask only when the top moves, from price_change and book events alike', async () => {
    const { hub, connect, tokens, markets } = await setup();
    const [t0, t1] = tokens[0]!;
    const m = markets[0]!.conditionId;
    const a = await connect({ assets_ids: [t0], custom_feature_enabled: true }, 1);
    hub.publish(priceChange(m, t0, '0.11', '0.89'));
    hub.publish(priceChange(m, t0, '0.11', '0.89', '0.05')); // a deeper level changed: same top
    hub.publish(priceChange(m, t1, '0.2', '0.3')); // not subscribed
    hub.publish({ event_type: 'book', market: m, asset_id: t0, timestamp: '1766789470000', hash: 'h', bids: [{ price: '0.1', size: '5' }, { price: '0.2', size: '5' }], asks: [{ price: '0.4', size: '5' }, { price: '0.3', size: '5' }] });
    hub.publish({ event_type: 'book', market: m, asset_id: t0, timestamp: '1766789470001', hash: 'h', bids: [{ price: '0.2', size: '9' }], asks: [] });
    hub.publish({ event_type: 'best_bid_ask', market: m, asset_id: t0, best_bid: '0.5', best_ask: '0.6', spread: '0.1', timestamp: '1' }); // derived here only
    await a.barrier();
    expect(a.of('best_bid_ask')).toEqual([
      { event_type: 'best_bid_ask', market: m, asset_id: t0, best_bid: '0.11', best_ask: '0.89', spread: '0.78', timestamp: '1766789469958' },
      { event_type: 'best_bid_ask', market: m, asset_id: t0, best_bid: '0.2', best_ask: '0.3', spread: '0.1', timestamp: '1766789470000' },
      { event_type: 'best_bid_ask', market: m, asset_id: t0, best_bid: '0.2', best_ask: '1', spread: '0.8', timestamp: '1766789470001' },
    ]);
    expect(hub.stats.bestBidAsk).toBe(3);
  });

  it('sends new_market to every custom-feature connection and market_resolved to those holding one of its assets', async () => {
    const { hub, connect, tokens, markets } = await setup();
    const a = await connect({ assets_ids: [tokens[0]![0]], custom_feature_enabled: true }, 1);
    const b = await connect({ assets_ids: [tokens[1]![0]], custom_feature_enabled: true }, 1);
    const c = await connect({ assets_ids: [tokens[0]![0]] }, 1);
    const d = await connect({ assets_ids: [], custom_feature_enabled: true }); // new-market discovery only
    const created = newMarket(['111', '222'], '0x' + '1'.repeat(64));
    hub.publish(created);
    hub.publish(marketResolved(tokens[0]!, markets[0]!.conditionId));
    hub.publish(marketResolved(['333', '444'], '0x' + '2'.repeat(64))); // nobody holds it
    await Promise.all([a, b, c, d].map((x) => x.barrier()));
    for (const x of [a, b, d]) expect(x.of('new_market')).toEqual([created]);
    expect(c.of('new_market')).toHaveLength(0);
    expect(a.of('market_resolved')).toEqual([marketResolved(tokens[0]!, markets[0]!.conditionId)]);
    for (const x of [b, c, d]) expect(x.of('market_resolved')).toHaveLength(0);

    // Turning the feature off stops them.
    a.send({ operation: 'subscribe', assets_ids: [], custom_feature_enabled: false });
    await a.barrier();
    hub.publish(created);
    await a.barrier();
    expect(a.of('new_market')).toHaveLength(1);
  });

  it('passes tick_size_change to the asset subscribers without the flag', async () => {
    const { hub, connect, tokens, markets } = await setup();
    const t0 = tokens[0]![0];
    const a = await connect({ assets_ids: [t0] }, 1);
    const b = await connect({ assets_ids: [tokens[1]![0]] }, 1);
    const ev = { asset_id: t0, event_type: 'tick_size_change', market: markets[0]!.conditionId, new_tick_size: '0.001', old_tick_size: '0.01', timestamp: '1739068041853' };
    hub.publish(ev);
    await Promise.all([a.barrier(), b.barrier()]);
    expect(a.of('tick_size_change')).toEqual([ev]);
    expect(b.of('tick_size_change')).toHaveLength(0);
  });
});

describe('market channel limits and protocol edges', () => {
  it('subscribes at most maxAssetsPerConnection assets; the rest get no snapshot and no events', async () => {
    const { hub, connect, tokens, markets } = await setup({ maxAssetsPerConnection: 3 });
    const all = tokens.flat(); // 6 tokens
    const c = await connect({ assets_ids: all.slice(0, 5) }, 3);
    await c.barrier();
    expect(c.frames.filter((f) => f.startsWith('['))).toHaveLength(1); // one batched snapshot frame
    expect(c.of('book').map((b) => b.asset_id)).toEqual(all.slice(0, 3));
    expect(hub.stats.assetsOverLimit).toBe(2);

    c.send({ operation: 'subscribe', assets_ids: [all[5], all[0]] }); // over the limit + a duplicate
    await c.barrier();
    expect(c.of('book')).toHaveLength(3);
    expect(c.texts.filter((t) => t !== 'PONG')).toEqual([]); // no error frames about the extra assets
    const tick = (asset: string) => ({ event_type: 'tick_size_change', asset_id: asset, market: markets[0]!.conditionId, old_tick_size: '0.01', new_tick_size: '0.001', timestamp: '1' });
    for (const t of all) hub.publish(tick(t));
    await c.barrier();
    expect(c.of('tick_size_change').map((e) => e.asset_id)).toEqual(all.slice(0, 3));

    // Room made by unsubscribing is usable again.
    c.send({ operation: 'unsubscribe', assets_ids: [all[0]] });
    c.send({ operation: 'subscribe', assets_ids: [all[5]] });
    await waitFor(() => c.of('book').some((b) => b.asset_id === all[5]), { what: 'book after room was made' });
    expect(hub.stats.assetsOverLimit).toBe(3);
    expect(hub.stats.duplicateAssets).toBe(1);
  });

  it('closes a connection that sends PING before any valid subscription with 1008', async () => {
    const { hub, connect } = await setup();
    const bare = await connect();
    bare.send('PING');
    expect(await bare.closed).toEqual({ code: 1008, reason: 'invalid subscription payload' });
    expect(bare.texts).toHaveLength(0);

    // Garbage or an unsubscribe is not a subscription either.
    const junk = await connect();
    junk.send('{nope');
    junk.send({ operation: 'unsubscribe', assets_ids: ['1'] });
    junk.send('PING');
    expect((await junk.closed).code).toBe(1008);
    expect(hub.stats.pingBeforeSubscribe).toBe(2);

    // An empty initial subscription (or a dynamic subscribe first, as rs-clob-client sends) is one.
    const empty = await connect({ assets_ids: [] });
    const dyn = await connect();
    dyn.send({ operation: 'subscribe', assets_ids: [] });
    await Promise.all([empty.barrier(), dyn.barrier()]);
    expect(empty.ws.readyState).toBe(WebSocket.OPEN);
    expect(dyn.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('answers a second initial subscribe frame with INVALID OPERATION and ignores it', async () => {
    const { hub, connect, tokens, markets } = await setup();
    const [t0, t1] = tokens[0]!;
    const c = await connect({ assets_ids: [t0], operation: 'subscribe', initial_dump: true, markets: [] }, 1); // rs-clob-client's first frame
    c.send({ assets_ids: [t1], type: 'market', custom_feature_enabled: true });
    await c.barrier();
    expect(c.texts).toEqual(['INVALID OPERATION', 'PONG']);
    expect(c.frames.filter((f) => f === 'INVALID OPERATION')).toHaveLength(1);
    expect(c.of('book')).toHaveLength(1);
    hub.publish(priceChange(markets[0]!.conditionId, t0, '0.01', '0.99'));
    hub.publish(priceChange(markets[0]!.conditionId, t1, '0.01', '0.99'));
    hub.publish(newMarket(['1', '2'], '0x' + '3'.repeat(64)));
    await c.barrier();
    expect(c.of('price_change').flatMap((e) => e.price_changes.map((p: any) => p.asset_id))).toEqual([t0]);
    expect(c.of('best_bid_ask')).toHaveLength(0); // the ignored frame's flag was not applied
    expect(c.of('new_market')).toHaveLength(0);
    expect(hub.stats.invalidOperations).toBe(1);
  });

  it('counts and ignores malformed frames and unknown unsubscribes without dropping the connection', async () => {
    const { hub, connect, tokens } = await setup();
    const c = await connect({ assets_ids: [tokens[0]![0]] }, 1);
    const before = hub.stats.invalidFrames;
    c.send('{not json');
    c.send('[]');
    c.send({ assets_ids: 'nope' });
    c.send({ operation: 'resubscribe', assets_ids: [] });
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    c.send({ operation: 'unsubscribe', assets_ids: ['no-such-asset', tokens[2]![1]] });
    c.send({ operation: 'subscribe', assets_ids: ['no-such-asset'] });
    await c.barrier();
    expect(hub.stats.invalidFrames - before).toBe(5);
    expect(c.texts.filter((t) => t !== 'PONG')).toEqual([]);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect(hub.clientCount).toBe(1);
  });
});

// ------------------------------------------------------------------ end to end on a running simulator

describe('market WebSocket custom features on the running simulator', () => {
  let sim: RunningSim;
  const clients: Client[] = [];
  beforeAll(async () => {
    sim = await startSim({ POLYBOT_SIM_MARKETS: '2', POLYBOT_SIM_EVENT_RATE: '100' });
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await sim?.stop();
  });

  it('streams best_bid_ask to the custom-feature connection only', async () => {
    const m = sim.service.exchange.markets[0]!;
    const open = async (custom: boolean) => {
      const c = await Client.open(sim.wsUrl);
      clients.push(c);
      c.send({ assets_ids: [...m.tokenIds], type: 'market', custom_feature_enabled: custom });
      return c;
    };
    const on = await open(true);
    const off = await open(false);
    await waitFor(() => on.of('best_bid_ask').length >= 3, { what: 'best_bid_ask events' });
    for (const e of on.of('best_bid_ask')) {
      expect(Object.keys(e).sort()).toEqual(Object.keys(BEST_BID_ASK_SAMPLE).sort());
      expect(m.tokenIds).toContain(e.asset_id);
      expect(e.market).toBe(m.conditionId);
    }
    await off.barrier();
    expect(off.of('price_change').length).toBeGreaterThan(0);
    expect(off.of('best_bid_ask')).toHaveLength(0);

    const bare = await Client.open(sim.wsUrl);
    clients.push(bare);
    bare.send('PING');
    expect((await bare.closed).code).toBe(1008);
  });
});
