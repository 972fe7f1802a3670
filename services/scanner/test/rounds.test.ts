import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { BusPublisher, BusSubscriber } from '@polybot/bus';
import type { MarketInfo } from '@polybot/polymarket';
import type { BusMessage, RoundMessage, Unstamped } from '@polybot/protocol';
import { sleep, tempDataDir, waitFor } from '@polybot/testkit';
import { startSim, type RunningSim } from '../../sim/test/helpers.js';
import type { RawFrame } from '../src/pipeline/types.js';
import {
  createGammaRoundLookup,
  createRoundWatchers,
  roundLengthLabel,
  roundSlug,
  winnerIndex,
  type RoundLookup,
  type RoundWatchers,
  type RoundWatchersOptions,
} from '../src/rounds.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const samplesDir = resolve(repoRoot, '../shared/polymarket/samples');
const template = JSON.parse(readFileSync(resolve(samplesDir, 'gamma/market_btc_updown_5m_2026.json'), 'utf8')) as Record<string, unknown>;

describe('round slugs and outcomes', () => {
  it('spell slugs as the venue does', () => {
    expect(roundLengthLabel(900)).toBe('15m');
    expect(roundLengthLabel(300)).toBe('5m');
    expect(roundLengthLabel(3600)).toBe('1h');
    expect(roundLengthLabel(30)).toBe('30s');
    expect(roundSlug('BTC', 900, 1774278900)).toBe('btc-updown-15m-1774278900');
    // The recorded 5m market.
    expect(roundSlug('btc', 300, 1773307200)).toBe(template.slug);
  });

  it('read the winner only from decisive outcomePrices', () => {
    expect(winnerIndex('["1","0"]')).toBe(0);
    expect(winnerIndex('["0", "1"]')).toBe(1);
    expect(winnerIndex('["0.505","0.495"]')).toBe(-1);
    expect(winnerIndex('["1","1"]')).toBe(-1);
    expect(winnerIndex('["0","0"]')).toBe(-1);
    expect(winnerIndex('nope')).toBe(-1);
    expect(winnerIndex(undefined)).toBe(-1);
  });
});

// ---------------------------------------------------------------- fake clock and fake Gamma

const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

class FakeClock {
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  constructor(public t: number) {}
  now = () => this.t;
  timers = {
    setTimeout: (fn: () => void, ms: number): unknown => {
      const id = ++this.seq;
      this.pending.set(id, { at: this.t + Math.max(0, ms), fn });
      return id;
    },
    clearTimeout: (h: unknown) => {
      this.pending.delete(h as number);
    },
  };
  /** Runs every timer due up to `target` in time order, letting promises settle in between. */
  async advanceTo(target: number): Promise<void> {
    for (;;) {
      await flush();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending) if (e[1].at <= target && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.pending.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = target;
    await flush();
  }
}

interface FakeMarket {
  listedAt: number;
  closed: boolean;
  outcomePrices: string;
  json: Record<string, unknown>;
}

/** An in-memory Gamma (the venue, not one of our modules) with a clock for listings. */
class FakeGamma implements RoundLookup {
  readonly markets = new Map<string, FakeMarket>();
  readonly asked: Array<{ slug: string; at: number }> = [];
  failSlugs: RegExp | undefined;
  constructor(private readonly clock: FakeClock) {}
  add(slug: string, n: number, listedAt = 0): FakeMarket {
    const m: FakeMarket = {
      listedAt,
      closed: false,
      outcomePrices: '["0.5","0.5"]',
      json: {
        ...template,
        id: String(1000 + n),
        slug,
        conditionId: `0x${n.toString(16).padStart(64, '0')}`,
        clobTokenIds: JSON.stringify([`${n}1`, `${n}2`]),
      },
    };
    this.markets.set(slug, m);
    return m;
  }
  async marketBySlug(slug: string) {
    this.asked.push({ slug, at: this.clock.t });
    if (this.failSlugs?.test(slug)) throw new Error('connect ECONNREFUSED');
    const m = this.markets.get(slug);
    if (!m || this.clock.t < m.listedAt) return { status: 404, text: '{"error":"market not found"}' };
    return { status: 200, text: JSON.stringify({ ...m.json, closed: m.closed, outcomePrices: m.outcomePrices }) };
  }
}

type Published = { topic: string; msg: Unstamped<RoundMessage>; at: number };

function harness(opts: Partial<RoundWatchersOptions> & { assets: string[] }, start: number) {
  const clock = new FakeClock(start);
  const gamma = new FakeGamma(clock);
  const published: Published[] = [];
  const tracked: Array<{ m: MarketInfo; at: number }> = [];
  const untracked: Array<{ m: MarketInfo; at: number }> = [];
  const frames: RawFrame[] = [];
  const hooks = { track: (_m: MarketInfo) => {}, publish: (_t: string) => {} };
  const w = createRoundWatchers(
    { roundSeconds: 900, prefetchMs: 120_000, endingLeadMs: 60_000, resolvePollMs: 5_000, lookupRetryMs: 1000, maxLookupRetryMs: 15_000, ...opts },
    {
      gamma,
      publish: (topic, msg) => {
        hooks.publish(topic);
        published.push({ topic, msg, at: clock.t });
        return true;
      },
      track: (m) => {
        tracked.push({ m, at: clock.t });
        hooks.track(m);
      },
      untrack: (m) => void untracked.push({ m, at: clock.t }),
      onFrame: (f) => void frames.push(f),
      now: clock.now,
      timers: clock.timers,
    },
  );
  return { clock, gamma, published, tracked, untracked, frames, w, hooks };
}

// A 15-minute boundary: 2026-03-23T15:15:00Z.
const S1 = 1774278900_000;
const L = 900_000;

describe('round watchers on a fake clock', () => {
  it('look up ahead, track before the start, announce start, ending and resolution on time, then untrack', async () => {
    const h = harness({ assets: ['BTC'], includeCurrent: false }, S1 - 800_000);
    const slug = 'btc-updown-15m-1774278900';
    const mk = h.gamma.add(slug, 7);
    h.gamma.add('btc-updown-15m-1774279800', 8);
    h.w.start();
    await h.clock.advanceTo(S1 - 120_001);
    expect(h.gamma.asked).toHaveLength(0);
    await h.clock.advanceTo(S1 - 120_000);
    expect(h.gamma.asked).toEqual([{ slug, at: S1 - 120_000 }]);
    expect(h.tracked.map((t) => [t.m.slug, t.at])).toEqual([[slug, S1 - 120_000]]);
    expect(h.tracked[0]!.m.tokens.map((t) => [t.tokenId, t.outcome])).toEqual([
      ['71', 'Up'],
      ['72', 'Down'],
    ]);
    expect(h.frames).toHaveLength(1);
    expect(h.frames[0]).toMatchObject({ source: 'round', conn: 0, recvTs: S1 - 120_000 });
    expect(JSON.parse(h.frames[0]!.data).slug).toBe(slug);
    expect(h.published).toHaveLength(0);

    await h.clock.advanceTo(S1);
    expect(h.published).toEqual([
      {
        topic: 'round.BTC',
        at: S1,
        msg: { type: 'round', event: 'started', asset: 'BTC', slug, market: mk.json.conditionId, up_token_id: '71', down_token_id: '72', start_ts: S1, end_ts: S1 + L },
      },
    ]);
    await h.clock.advanceTo(S1 + L - 60_001);
    expect(h.published).toHaveLength(1);
    await h.clock.advanceTo(S1 + L - 60_000);
    expect(h.published[1]).toMatchObject({ at: S1 + L - 60_000, msg: { event: 'ending', slug } });

    // The venue takes a while to name the winner; the watcher polls until it does.
    await h.clock.advanceTo(S1 + L + 12_000);
    expect(h.published.filter((p) => p.msg.slug === slug)).toHaveLength(2);
    mk.closed = true;
    mk.outcomePrices = '["0","1"]';
    await h.clock.advanceTo(S1 + L + 20_000);
    const resolved = h.published.filter((p) => p.msg.event === 'resolved');
    expect(resolved).toHaveLength(1);
    expect(resolved[0]!.msg).toMatchObject({ slug, winner: 'Down', winning_token_id: '72', market: mk.json.conditionId });
    expect(resolved[0]!.at).toBeLessThanOrEqual(S1 + L + 12_000 + 5_000);
    expect(h.untracked.map((u) => u.m.slug)).toEqual([slug]);
    // The next window was planned and announced as well.
    expect(h.published.some((p) => p.msg.slug === 'btc-updown-15m-1774279800' && p.msg.event === 'started' && p.at === S1 + L)).toBe(true);
    const st = h.w.stats().BTC!;
    expect(st).toMatchObject({ rounds_started: 2, rounds_ending: 1, rounds_resolved: 1, late_starts: 0, last_start_delay_ms: 0, callback_errors: 0 });
    await h.w.stop();
  });

  it('retries lookups with backoff until listed, never sleeping through the start; a late listing starts late', async () => {
    const h = harness({ assets: ['ETH'], includeCurrent: false }, S1 - 200_000);
    const a = h.gamma.add('eth-updown-15m-1774278900', 1, S1 - 30_000);
    h.gamma.add('eth-updown-15m-1774279800', 2, S1 + L + 5_000);
    h.w.start();
    await h.clock.advanceTo(S1);
    const first = h.gamma.asked.filter((x) => x.slug === 'eth-updown-15m-1774278900');
    expect(first.length).toBeGreaterThan(3);
    expect(first.length).toBeLessThan(30);
    // Backoff: the gaps grow (jittered within the upper half of each step).
    const gaps = first.slice(1).map((x, i) => x.at - first[i]!.at);
    expect(Math.max(...gaps)).toBeGreaterThan(2_000);
    expect(h.tracked[0]!.at).toBeGreaterThanOrEqual(S1 - 30_000);
    expect(h.tracked[0]!.at).toBeLessThan(S1);
    expect(h.published[0]).toMatchObject({ at: S1, msg: { event: 'started', market: a.json.conditionId } });

    // The next window is listed 5 s after its start: announced as soon as it is found.
    await h.clock.advanceTo(S1 + L + 30_000);
    const late = h.published.find((p) => p.msg.slug === 'eth-updown-15m-1774279800');
    expect(late?.msg.event).toBe('started');
    const foundAt = h.frames.filter((f) => JSON.parse(f.data).slug === 'eth-updown-15m-1774279800')[0]?.recvTs;
    expect(foundAt).toBeGreaterThanOrEqual(S1 + L + 5_000);
    expect(late!.at).toBe(foundAt);
    // The backoff started over at the window start, so the listing was noticed within seconds.
    expect(foundAt).toBeLessThan(S1 + L + 5_000 + 8_000);
    const st = h.w.stats().ETH!;
    expect(st.late_starts).toBe(1);
    expect(st.lookup_not_found).toBeGreaterThan(3);
    expect(st.last_error).toMatch(/not listed/);
    await h.w.stop();
  });

  it('resolves once: from the market channel first, Gamma later changes nothing', async () => {
    const h = harness({ assets: ['SOL'], includeCurrent: false }, S1 - 200_000);
    const mk = h.gamma.add('sol-updown-15m-1774278900', 3);
    h.w.start();
    await h.clock.advanceTo(S1 + L + 1);
    expect(h.w.notifyResolved('0xunknown', '31')).toBe(false);
    expect(h.w.notifyResolved(String(mk.json.conditionId).toUpperCase().replace('0X', '0x'), '31')).toBe(true);
    expect(h.w.notifyResolved(String(mk.json.conditionId), '31')).toBe(false);
    mk.closed = true;
    mk.outcomePrices = '["1","0"]';
    await h.clock.advanceTo(S1 + L + 60_000);
    const resolved = h.published.filter((p) => p.msg.event === 'resolved');
    expect(resolved).toHaveLength(1);
    expect(resolved[0]!.msg).toMatchObject({ winner: 'Up', winning_token_id: '31' });
    expect(h.untracked).toHaveLength(1);
    expect(h.w.stats().SOL).toMatchObject({ rounds_resolved: 1, resolved_by_notify: 1 });
    await h.w.stop();
  });

  it('keeps watchers apart: failing lookups, a throwing track and a throwing publish stay with their asset', async () => {
    const h = harness({ assets: ['BTC', 'ETH', 'XRP', 'DOGE'], includeCurrent: false }, S1 - 200_000);
    for (const [i, a] of ['btc', 'eth', 'xrp'].entries()) h.gamma.add(`${a}-updown-15m-1774278900`, 10 + i);
    h.gamma.failSlugs = /^doge-/;
    h.hooks.track = (m) => {
      if (m.slug.startsWith('eth-')) throw new Error('track exploded');
    };
    h.hooks.publish = (topic) => {
      if (topic === 'round.XRP') throw new Error('publish exploded');
    };
    h.w.start();
    await h.clock.advanceTo(S1 + 1);
    expect(h.published.filter((p) => p.msg.event === 'started').map((p) => p.msg.asset).sort()).toEqual(['BTC', 'ETH']);
    const st = h.w.stats();
    expect(st.BTC).toMatchObject({ rounds_started: 1, callback_errors: 0, lookup_errors: 0, last_error: '' });
    expect(st.ETH).toMatchObject({ rounds_started: 1, callback_errors: 1 });
    expect(st.ETH!.last_error).toMatch(/track exploded/);
    expect(st.XRP!.publish_failures).toBe(1);
    expect(st.DOGE!.lookup_errors).toBeGreaterThan(0);
    expect(st.DOGE!.last_error).toMatch(/ECONNREFUSED/);
    // DOGE never found: skipped at its end, nothing published or tracked for it.
    await h.clock.advanceTo(S1 + L + 1);
    expect(h.w.stats().DOGE!.abandoned).toBe(1);
    expect(h.tracked.some((t) => t.m.slug.startsWith('doge'))).toBe(false);
    await h.w.stop();
  });
});

// ---------------------------------------------------------------- against the simulator

const ASSETS = ['BTC', 'ETH', 'SOL', 'XRP'];
const ROUND_S = 10; // the smallest round the simulator accepts

describe('round watchers against the simulator', () => {
  let sim: RunningSim | undefined;
  let pub: BusPublisher | undefined;
  let sub: BusSubscriber | undefined;
  let watchers: RoundWatchers | undefined;
  let marketWs: WebSocket | undefined;
  const tmp = tempDataDir('pbrnd');
  afterAll(async () => {
    await watchers?.stop();
    marketWs?.terminate();
    await sub?.close();
    await pub?.close(0);
    await sim?.stop();
    tmp.cleanup();
  });

  it('announce every asset’s rounds with the venue’s ids and winners; a bogus asset fails alone', async () => {
    sim = await startSim({
      POLYBOT_SIM_ROUND_ASSETS: ASSETS.join(','),
      POLYBOT_SIM_ROUND_SECONDS: String(ROUND_S),
      POLYBOT_SIM_ROUNDS_AHEAD: '2',
      POLYBOT_SIM_MARKETS: '1',
      POLYBOT_SIM_EVENT_RATE: '5',
    });
    const endpoint = `ipc://${tmp.dir}/rounds.pub`;
    pub = new BusPublisher({ endpoint, mode: 'bind', src: 'scanner-test' });
    await pub.start();
    const got: Array<{ msg: RoundMessage; topic: string; at: number }> = [];
    sub = new BusSubscriber({
      endpoints: [endpoint],
      topics: ['round.'],
      onMessage: (msg: BusMessage, topic) => void got.push({ msg: msg as RoundMessage, topic, at: Date.now() }),
    });
    sub.start();
    // ZeroMQ subscriptions take a moment to reach the publisher.
    await sleep(500);

    // The market channel as the scanner would use it: tracked tokens subscribed, market_resolved → notifyResolved.
    const wsEvents: string[] = [];
    const order: string[] = [];
    marketWs = new WebSocket(sim.wsUrl);
    await new Promise<void>((res, rej) => {
      marketWs!.once('open', () => res());
      marketWs!.once('error', rej);
    });
    marketWs.send(JSON.stringify({ assets_ids: [], type: 'market', custom_feature_enabled: true }));
    marketWs.on('message', (d) => {
      const text = d.toString();
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        return;
      }
      for (const ev of Array.isArray(v) ? v : [v]) {
        if (ev?.event_type === 'market_resolved') {
          wsEvents.push(ev.slug);
          watchers?.notifyResolved(ev.market, ev.winning_asset_id);
        }
      }
    });

    const frames: RawFrame[] = [];
    const t0 = Date.now();
    watchers = createRoundWatchers(
      { assets: [...ASSETS, 'DOGE'], roundSeconds: ROUND_S, prefetchMs: 8_000, endingLeadMs: 3_000, resolvePollMs: 1_000 },
      {
        gamma: createGammaRoundLookup(sim.base, { timeoutMs: 5_000 }),
        publish: (topic, msg) => pub!.publish(topic, msg),
        track: (m) => {
          order.push(`track ${m.slug}`);
          marketWs!.send(JSON.stringify({ operation: 'subscribe', assets_ids: m.tokens.map((t) => t.tokenId), custom_feature_enabled: true }));
        },
        untrack: (m) => void order.push(`untrack ${m.slug}`),
        onFrame: (f) => void frames.push(f),
      },
    );
    watchers.start();

    const of = (asset: string, event: string, slug?: string) =>
      got.find((g) => g.msg.asset === asset && g.msg.event === event && (slug ? g.msg.slug === slug : g.msg.start_ts > t0));
    // The first window that starts after the watchers did, per asset, through to its resolution.
    for (const asset of ASSETS) {
      const started = await waitFor(() => of(asset, 'started'), { timeoutMs: 60_000, what: `round.started for ${asset}` });
      const slug = started.msg.slug;
      await waitFor(() => of(asset, 'resolved', slug), { timeoutMs: 90_000, what: `round.resolved for ${slug}` });
    }
    // A moment for any duplicate to show up.
    await sleep(1_500);

    for (const asset of ASSETS) {
      const started = of(asset, 'started')!;
      const { slug } = started.msg;
      const startS = started.msg.start_ts / 1000;
      expect(started.topic).toBe(`round.${asset}`);
      expect(slug).toBe(`${asset.toLowerCase()}-updown-${ROUND_S}s-${startS}`);
      expect(startS % ROUND_S).toBe(0);
      expect(started.msg.end_ts - started.msg.start_ts).toBe(ROUND_S * 1000);
      // Ids as the venue lists them (closed by now, so ask for closed markets).
      const res = await fetch(`${sim.base}/markets?slug=${slug}&closed=true`);
      const [g] = (await res.json()) as Array<Record<string, any>>;
      expect(g).toBeDefined();
      const tokenIds = JSON.parse(g!.clobTokenIds) as string[];
      expect(JSON.parse(g!.outcomes)).toEqual(['Up', 'Down']);
      expect(started.msg).toMatchObject({ market: g!.conditionId, up_token_id: tokenIds[0], down_token_id: tokenIds[1] });

      const events = got.filter((x) => x.msg.slug === slug);
      expect(events.map((e) => e.msg.event)).toEqual(['started', 'ending', 'resolved']);
      const resolved = events[2]!.msg;
      const prices = JSON.parse(g!.outcomePrices) as string[];
      const winnerIdx = prices.indexOf('1');
      expect(prices.map(Number).sort()).toEqual([0, 1]);
      expect(resolved.winner).toBe(winnerIdx === 0 ? 'Up' : 'Down');
      expect(resolved.winning_token_id).toBe(tokenIds[winnerIdx]);
      // Subscribed before the start was announced, released after the resolution.
      const iTrack = order.indexOf(`track ${slug}`);
      const iUntrack = order.indexOf(`untrack ${slug}`);
      expect(iTrack).toBeGreaterThanOrEqual(0);
      expect(iUntrack).toBeGreaterThan(iTrack);
      expect(frames.some((f) => f.source === 'round' && JSON.parse(f.data).slug === slug)).toBe(true);
    }

    // Exactly one resolution per round, whichever source came first.
    const resolvedSlugs = got.filter((x) => x.msg.event === 'resolved').map((x) => x.msg.slug);
    expect(new Set(resolvedSlugs).size).toBe(resolvedSlugs.length);

    const st = watchers.stats();
    for (const asset of ASSETS) {
      expect(st[asset]!.rounds_started).toBeGreaterThanOrEqual(1);
      expect(st[asset]!.callback_errors).toBe(0);
      expect(st[asset]!.publish_failures).toBe(0);
    }
    expect(st.DOGE!.rounds_started).toBe(0);
    expect(st.DOGE!.lookup_not_found).toBeGreaterThan(0);
    expect(st.DOGE!.last_error).toMatch(/not listed: doge-updown-10s-/);
    expect(got.some((x) => x.msg.asset === 'DOGE')).toBe(false);
    expect(order.some((o) => o.includes('doge'))).toBe(false);
    expect(sub.stats.invalid).toBe(0);
    // The market channel did report resolutions (the first source to arrive won).
    expect(wsEvents.length).toBeGreaterThan(0);
  });
});
