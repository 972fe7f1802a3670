import { readFileSync } from 'node:fs';
import { GammaMarket } from '@polybot/polymarket';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startSim, type RunningSim } from './helpers.js';
import {
  ErrorBody,
  expectSampleTypes,
  expectSchema,
  fixture,
  GammaEvent,
  GammaEventRef,
  GammaSeriesWithEvents,
  ServedGammaMarket,
} from './public-schemas.js';

// Recorded Gamma samples: a 5m BTC round (its `events[0]` and `events[0].series[0]`) and a neg-risk event.
const BTC = JSON.parse(readFileSync(new URL('./fixtures/gamma_market_btc_updown_5m_2026.json', import.meta.url), 'utf8'));
const BTC_EVENT = BTC.events[0];
const BTC_SERIES = BTC_EVENT.series[0];
const NEGRISK_EVENT = fixture('gamma_event_negrisk_2026.json')[0];
const TRIMMED_EVENT = fixture('gamma_event_trimmed.json');

const N = 7;
let sim: RunningSim;
let markets: any[];
beforeAll(async () => {
  sim = await startSim({ POLYBOT_SIM_MARKETS: String(N), POLYBOT_SIM_EVENT_RATE: '0' });
  markets = (await getJson<any[]>(`${sim.base}/markets`)).body;
});
afterAll(async () => {
  await sim?.stop();
});

/** Drops every `updatedAt` (the answer's clock), at any depth. */
const strip = (v: unknown) => JSON.parse(JSON.stringify(v, (k, x) => (k === 'updatedAt' ? undefined : x)));

describe('Gamma markets', () => {
  it('carry their parent event, shaped like the recorded market', async () => {
    expect(markets).toHaveLength(N);
    for (const m of markets) {
      expectSchema(ServedGammaMarket, m, 'market');
      expect(expectSampleTypes(m, [BTC], 'market')).toBeGreaterThan(20);
      const [ev] = m.events;
      expect(ev.slug).toBe(m.slug);
      expect(ev.markets).toBeUndefined();
      expect(expectSampleTypes(ev, [BTC_EVENT], 'market.events[0]')).toBeGreaterThan(25);
    }
  });

  it('GET /markets/slug/{slug}', async () => {
    const m = markets[2];
    const r = await getJson<any>(`${sim.base}/markets/slug/${m.slug}`);
    expect(r.status).toBe(200);
    expectSchema(ServedGammaMarket, r.body);
    expect(strip(r.body)).toEqual(strip(m));
    const missing = await getJson(`${sim.base}/markets/slug/no-such-market`);
    expect(missing.status).toBe(404);
    expectSchema(ErrorBody, missing.body);
  });
});

describe('Gamma events', () => {
  it('GET /events lists one event per market with the market inside', async () => {
    const { status, body } = await getJson<any[]>(`${sim.base}/events`);
    expect(status).toBe(200);
    expect(body).toHaveLength(N);
    expect(new Set(body.map((e) => e.id)).size).toBe(N);
    for (const [i, e] of body.entries()) {
      expectSchema(GammaEvent, e, 'event');
      expect(expectSampleTypes(e, [NEGRISK_EVENT, BTC_EVENT, TRIMMED_EVENT], 'event')).toBeGreaterThan(30);
      expectSampleTypes(e.series[0], [BTC_SERIES], 'event.series[0]');
      expect(e.markets).toHaveLength(1);
      const m = e.markets[0];
      expectSchema(GammaMarket, m, 'event.markets[0]');
      expectSampleTypes(m, [BTC, NEGRISK_EVENT.markets[0]], 'event.markets[0]');
      expect(m.id).toBe(markets[i].id);
      expect(e).toMatchObject({ slug: m.slug, ticker: m.slug, title: m.question, active: true, closed: false, seriesSlug: 'polybot-sim' });
      expect(e.volume).toBe(Number(m.volume));
      expect(e.liquidity).toBe(Number(m.liquidity));
    }
  });

  it('filters like Gamma', async () => {
    const all = (await getJson<any[]>(`${sim.base}/events`)).body;
    const [a, b] = all;
    const ids = async (qs: string) => (await getJson<any[]>(`${sim.base}/events?${qs}`)).body.map((e) => e.id);
    expect(await ids(`slug=${b.slug}`)).toEqual([b.id]);
    expect(await ids(`id=${a.id}&id=${b.id}`)).toEqual([a.id, b.id]);
    expect(await ids(`id=${a.id},${b.id}`)).toEqual([a.id, b.id]);
    expect(await ids('closed=true')).toEqual([]);
    expect(await ids('closed=false&active=true')).toHaveLength(N);
    expect(await ids('active=false')).toEqual([]);
    expect(await ids('limit=2&offset=3')).toEqual(all.slice(3, 5).map((e) => e.id));
    expect(await ids('series_id=1')).toHaveLength(N);
    expect(await ids('series_id=2')).toEqual([]);
    expect(await ids('tag_slug=sim')).toHaveLength(N);
    expect(await ids('tag_slug=politics')).toEqual([]);
    for (const qs of ['closed=maybe', 'active=x', 'limit=abc', 'offset=-1']) {
      const r = await getJson(`${sim.base}/events?${qs}`);
      expect(r.status, qs).toBe(400);
      expectSchema(ErrorBody, r.body);
    }
  });

  it('GET /events/slug/{slug} and /events/{id}', async () => {
    const e = (await getJson<any[]>(`${sim.base}/events`)).body[4];
    const bySlug = await getJson<any>(`${sim.base}/events/slug/${e.slug}`);
    expect(bySlug.status).toBe(200);
    expectSchema(GammaEvent, bySlug.body);
    expect(bySlug.body.id).toBe(e.id);
    expect((await getJson<any>(`${sim.base}/events/${e.id}`)).body.slug).toBe(e.slug);
    for (const path of ['/events/slug/nope', '/events/1']) {
      const r = await getJson(`${sim.base}${path}`);
      expect(r.status, path).toBe(404);
      expectSchema(ErrorBody, r.body);
    }
  });
});

describe('Gamma series', () => {
  it('GET /series lists the sim series with its events; slug filter; /series/{id}', async () => {
    const { status, body } = await getJson<any[]>(`${sim.base}/series`);
    expect(status).toBe(200);
    expect(body).toHaveLength(1);
    const s = body[0];
    expectSchema(GammaSeriesWithEvents, s);
    expect(expectSampleTypes(s, [BTC_SERIES], 'series')).toBeGreaterThan(15);
    expect(s.events).toHaveLength(N);
    for (const e of s.events) expectSchema(GammaEventRef, e);
    expect((await getJson<any[]>(`${sim.base}/series?slug=polybot-sim`)).body).toHaveLength(1);
    expect((await getJson<any[]>(`${sim.base}/series?slug=btc-up-or-down-15m`)).body).toEqual([]);
    expect((await getJson<any>(`${sim.base}/series/${s.id}`)).body.slug).toBe('polybot-sim');
    expect((await getJson(`${sim.base}/series/999`)).status).toBe(404);
    expect((await getJson(`${sim.base}/series?closed=x`)).status).toBe(400);
  });
});
