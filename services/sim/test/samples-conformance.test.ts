/**
 * The simulator's wire output against recorded venue samples (copies of shared/polymarket/samples
 * under fixtures/samples): for every kind the sim emits, each field the sample has and the sim also
 * sends must have the same JSON type (nested objects and array items compared recursively), and the
 * fields the sim leaves out — or adds — must be exactly the ones listed below, so that a dropped or
 * renamed field is caught. The sim is driven the way a real client drives the venue: L1-created API
 * key, L2-signed requests, EIP-712-signed orders, authenticated user channel (auth required).
 */
import { existsSync, readFileSync } from 'node:fs';
import { buildL2Headers, buildSignedOrder, createOrDeriveApiKey, type ApiCreds, type VenueOrderType } from '@polybot/polymarket';
import { waitFor } from '@polybot/testkit';
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, startSim, WsClient, type RunningSim } from './helpers.js';

// ------------------------------------------------------------------ shape comparison

type Kind = 'string' | 'number' | 'boolean' | 'null' | 'array' | 'object';
const kindOf = (v: unknown): Kind => (v === null ? 'null' : Array.isArray(v) ? 'array' : (typeof v as Kind));

interface Shape {
  kinds: Set<Kind>;
  fields: Map<string, Shape>;
  item?: Shape;
}

/** The merged shape of several sample values of one kind (unions of field sets and of types). */
function shapeOf(values: unknown[]): Shape {
  const s: Shape = { kinds: new Set(), fields: new Map() };
  const items: unknown[] = [];
  const objs: Array<Record<string, unknown>> = [];
  for (const v of values) {
    s.kinds.add(kindOf(v));
    if (Array.isArray(v)) items.push(...v);
    else if (v && typeof v === 'object') objs.push(v as Record<string, unknown>);
  }
  const keys = new Set(objs.flatMap((o) => Object.keys(o)));
  for (const k of keys) s.fields.set(k, shapeOf(objs.filter((o) => k in o).map((o) => o[k])));
  if (items.length > 0) s.item = shapeOf(items);
  return s;
}

interface Diff {
  mismatches: string[];
  missing: Set<string>;
  extra: Set<string>;
  compared: number;
}

const join = (path: string, k: string) => (path ? `${path}.${k}` : k);

function diffShape(shape: Shape, ours: unknown, path: string, accept: Record<string, Kind[]>, d: Diff): void {
  const k = kindOf(ours);
  const allowed = new Set<Kind>([...shape.kinds, ...(accept[path] ?? [])]);
  d.compared++;
  if (!allowed.has(k)) {
    d.mismatches.push(`${path || '<root>'}: sample ${[...shape.kinds].join('|')}, sim ${k} (${JSON.stringify(ours)?.slice(0, 80)})`);
    return;
  }
  if (k === 'object' && shape.kinds.has('object')) {
    const o = ours as Record<string, unknown>;
    for (const [f, fs] of shape.fields) {
      if (f in o) diffShape(fs, o[f], join(path, f), accept, d);
      else d.missing.add(join(path, f));
    }
    for (const f of Object.keys(o)) if (!shape.fields.has(f)) d.extra.add(join(path, f));
  } else if (k === 'array' && shape.item) {
    for (const el of ours as unknown[]) diffShape(shape.item, el, `${path}[]`, accept, d);
  }
}

/** Objects keyed by data (order ids, spender addresses) become the list of their values. */
function mapsToLists(v: unknown, maps: Set<string>, path = ''): unknown {
  if (Array.isArray(v)) return v.map((x) => mapsToLists(x, maps, `${path}[]`));
  if (!v || typeof v !== 'object') return v;
  if (maps.has(path)) return Object.values(v).map((x) => mapsToLists(x, maps, `${path}[]`));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapsToLists(x, maps, join(path, k))]));
}

interface Known {
  /** Paths of objects keyed by data (ids, addresses): their values are compared, not their keys. */
  maps?: string[];
  /** Sample fields the sim does not send, with the reason. */
  missing?: Record<string, string>;
  /** Fields the sim sends that the samples lack, with the reason. */
  extra?: Record<string, string>;
  /** Per path: extra JSON types accepted because the samples disagree with the documented type. */
  accept?: Record<string, { kinds: Kind[]; why: string }>;
}

/**
 * Compares every captured instance of one kind with the merged shape of its samples: no type
 * mismatch, and the union of omitted / added fields equal to the allow-lists. Returns how many
 * values were compared.
 */
function conform(what: string, samples: unknown[], ours: unknown[], known: Known = {}): number {
  expect(samples.length, `${what}: samples`).toBeGreaterThan(0);
  expect(ours.length, `${what}: nothing captured from the sim`).toBeGreaterThan(0);
  const maps = new Set(known.maps ?? []);
  const shape = shapeOf(samples.map((v) => mapsToLists(v, maps)));
  const accept = Object.fromEntries(Object.entries(known.accept ?? {}).map(([p, a]) => [p, a.kinds]));
  const d: Diff = { mismatches: [], missing: new Set(), extra: new Set(), compared: 0 };
  for (const v of ours) diffShape(shape, mapsToLists(v, maps), '', accept, d);
  expect(d.mismatches, `${what}: JSON types differ from the samples`).toEqual([]);
  expect([...d.missing].sort(), `${what}: sample fields the sim omits`).toEqual(Object.keys(known.missing ?? {}).sort());
  expect([...d.extra].sort(), `${what}: fields the sim adds`).toEqual(Object.keys(known.extra ?? {}).sort());
  return d.compared;
}

// ------------------------------------------------------------------ samples

const SAMPLES = new URL('./fixtures/samples/', import.meta.url);
const sample = (name: string): any => JSON.parse(readFileSync(new URL(name, SAMPLES), 'utf8'));
/** shared/ beside the repo (as in CI); the fixtures are byte copies of files there. */
const SHARED = new URL('../../../../shared/polymarket/samples/', import.meta.url);
const FIXTURES = [
  'ws_market/book_recorded_2024.json',
  'ws_market/price_change_array_v2_nautilus.json',
  'docs_examples/price_change_current.json',
  'ws_market/last_trade_price_recorded_2024.json',
  'ws_market/rs_last_trade_price_2025.json',
  'ws_market/tick_size_change_recorded_2025.json',
  'ws_user/order_placement_recorded_2024.json',
  'ws_user/order_cancel_recorded_2024.json',
  'ws_user/trade_matched_recorded_2024.json',
  'ws_user/trade_mined_recorded_2024.json',
  'ws_user/trade_confirmed_maker_side_2025.json',
  'ws_user/trade_multi_maker_2025.json',
  'rest/clob_book_recorded_2024.json',
  'rest/http_order_response_ok.json',
  'rest/http_order_response_failed.json',
  'rest/http_open_order.json',
  'rest/http_open_orders_page.json',
  'rest/data_trades_recorded_like.json',
  'rest/http_trades_page.json',
  'rest/http_cancel_response_ok.json',
  'rest/http_cancel_response_failed.json',
  'rest/http_balance_allowance_collateral.json',
  'docs_examples/error_envelope.json',
  'gamma/market_btc_updown_5m_2026.json',
  'gamma/event_negrisk_2026.json',
];

describe('fixtures', () => {
  it.skipIf(!existsSync(SHARED))('are byte copies of ../shared/polymarket/samples', () => {
    for (const f of FIXTURES) expect(readFileSync(new URL(f, SAMPLES), 'utf8'), f).toBe(readFileSync(new URL(f, SHARED), 'utf8'));
  });
});

// ------------------------------------------------------------------ the drive

// Hardhat accounts #0 and #1: public test keys, never funded anywhere.
const walletA = new Wallet('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
const walletB = new Wallet('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');

let sim: RunningSim;
let credsA: ApiCreds;
let credsB: ApiCreds;
let yes: string;
let market: WsClient;
let userA: WsClient;
let userB: WsClient;
let salt = 1_000;

/** What the sim answered, by kind. */
const rest: Record<string, unknown[]> = {};
const keep = (kind: string, v: unknown) => (rest[kind] ??= []).push(v);

async function call(creds: ApiCreds | undefined, wallet: Wallet, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = creds ? { ...buildL2Headers(creds, wallet.address, { method, requestPath: path, body: text ?? null }) } : {};
  if (text !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${sim.base}${path}`, { method, headers, ...(text !== undefined ? { body: text } : {}) });
  const raw = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = raw;
  }
  return { status: res.status, body: json };
}

async function place(creds: ApiCreds, wallet: Wallet, side: 'BUY' | 'SELL', price: string, size: string, orderType: VenueOrderType = 'GTC') {
  const order = buildSignedOrder({ wallet, tokenId: yes, side, price, size, orderType, tickSize: '0.01', negRisk: false, salt: salt++ });
  const r = await call(creds, wallet, 'POST', '/order', { order, owner: creds.apiKey, orderType, deferExec: false, postOnly: false });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { success: boolean; orderID: string; status?: string; errorMsg: string; tradeIDs?: string[] };
}

/** Every frame the server sent before its PONG has arrived: PING is a barrier on one socket. */
async function barrier(c: WsClient): Promise<void> {
  const n = c.texts.length;
  c.send('PING');
  await waitFor(() => c.texts.length > n, { what: 'PONG' });
}

async function book(tokenId: string) {
  const r = await getJson<any>(`${sim.base}/book?token_id=${tokenId}`);
  expect(r.status).toBe(200);
  return r.body;
}

beforeAll(async () => {
  sim = await startSim({
    POLYBOT_SIM_REQUIRE_AUTH: 'true',
    POLYBOT_SIM_MARKETS: '4',
    POLYBOT_SIM_EVENT_RATE: '0',
    POLYBOT_SIM_MINE_MS: '50',
    POLYBOT_SIM_CONFIRM_MS: '100',
  });
  credsA = await createOrDeriveApiKey(sim.base, walletA);
  credsB = await createOrDeriveApiKey(sim.base, walletB);
  const m = sim.service.exchange.markets[0]!;
  yes = m.tokenIds[0];

  market = await WsClient.open(sim.wsUrl);
  market.send({ assets_ids: [m.tokenIds[0], m.tokenIds[1]], type: 'market' });
  await waitFor(() => market.events.filter((e) => e.event_type === 'book').length >= 2, { what: 'initial books' });
  const userUrl = sim.wsUrl.replace('/ws/market', '/ws/user');
  userA = await WsClient.open(userUrl);
  userA.send({ auth: { apiKey: credsA.apiKey, secret: credsA.secret, passphrase: credsA.passphrase }, markets: [], type: 'user' });
  userB = await WsClient.open(userUrl);
  userB.send({ auth: { apiKey: credsB.apiKey, secret: credsB.secret, passphrase: credsB.passphrase }, markets: [], type: 'user' });
  await barrier(userA);
  await barrier(userB);

  keep('book', await book(yes));

  // A rests a BUY at the best bid, behind the makers there.
  const b0 = await book(yes);
  const bid = b0.bids.at(-1) as { price: string; size: string };
  const resting = await place(credsA, walletA, 'BUY', bid.price, '10');
  expect(resting).toMatchObject({ success: true, status: 'live' });
  keep('order', resting);
  const one = await call(credsA, walletA, 'GET', `/data/order/${resting.orderID}`);
  expect(one.status).toBe(200);
  keep('openOrder', one.body);
  const page = await call(credsA, walletA, 'GET', '/data/orders');
  expect(page.status).toBe(200);
  keep('openOrdersPage', page.body);

  // B buys shares from the makers (B is a taker), then sells the whole bid level plus A's 10 into it
  // (A's resting order is hit: A sees a MAKER trade, B a TAKER trade with several maker orders).
  const levelShares = Number(bid.size) + 10; // the makers' level (read before A joined) plus A's 10
  const ask = b0.asks.at(-1) as { price: string };
  const worst = (Math.min(99, Math.round(Number(ask.price) * 100) + 10) / 100).toFixed(2);
  const bought = await place(credsB, walletB, 'BUY', worst, String(Math.ceil(levelShares) + 1), 'FAK');
  expect(bought).toMatchObject({ success: true, status: 'matched' });
  keep('order', bought);
  const sold = await place(credsB, walletB, 'SELL', bid.price, String(levelShares), 'FAK');
  expect(sold).toMatchObject({ success: true, status: 'matched' });
  keep('order', sold);

  // A rejection (no shares to sell) and the HTTP error envelope (a bad L2 signature).
  const rejected = await place(credsA, walletA, 'SELL', '0.99', '1000000');
  expect(rejected.success).toBe(false);
  keep('orderRejected', rejected);
  const unauth = await fetch(`${sim.base}/data/orders`, { headers: { ...buildL2Headers({ ...credsA, secret: credsB.secret }, walletA.address, { method: 'GET', requestPath: '/data/orders' }) } });
  expect(unauth.status).toBe(401);
  keep('error', await unauth.json());

  // Cancel: a fresh resting order, then once more (already canceled).
  const low = await place(credsA, walletA, 'BUY', '0.01', '10');
  expect(low.success).toBe(true);
  const c1 = await call(credsA, walletA, 'DELETE', '/order', { orderID: low.orderID });
  expect(c1.status).toBe(200);
  expect(c1.body.canceled).toEqual([low.orderID]);
  keep('cancelOk', c1.body);
  const c2 = await call(credsA, walletA, 'DELETE', '/order', { orderID: low.orderID });
  expect(Object.keys(c2.body.not_canceled)).toEqual([low.orderID]);
  keep('cancelFailed', c2.body);

  // Let the trades reach CONFIRMED, then read the records.
  await waitFor(() => userA.events.some((e) => e.event_type === 'trade' && e.status === 'CONFIRMED'), { what: "A's trade CONFIRMED" });
  await waitFor(() => sim.service.exchange.pendingTrades === 0, { what: 'all trades final' });
  for (const [creds, w] of [[credsA, walletA], [credsB, walletB]] as const) {
    const t = await call(creds, w, 'GET', '/data/trades');
    expect(t.status).toBe(200);
    expect(t.body.data.length).toBeGreaterThan(0);
    keep('tradesPage', t.body);
    for (const rec of t.body.data) keep('trade', rec);
  }
  const bal = await call(credsA, walletA, 'GET', '/balance-allowance?asset_type=COLLATERAL&signature_type=0');
  expect(bal.status).toBe(200);
  keep('balance', bal.body);
  const cond = await call(credsB, walletB, 'GET', `/balance-allowance?asset_type=CONDITIONAL&token_id=${yes}&signature_type=0`);
  expect(cond.status).toBe(200);
  keep('balance', cond.body);
  keep('book', await book(yes));

  for (const c of [market, userA, userB]) await barrier(c);
}, 120_000);

afterAll(async () => {
  for (const c of [market, userA, userB]) await c?.close();
  await sim?.stop();
});

const marketEvents = (type: string) => market.events.filter((e) => e.event_type === type);
const userEvents = (type: string, pred: (e: any) => boolean = () => true) =>
  [...userA.events, ...userB.events].filter((e) => e.event_type === type && pred(e));

// ------------------------------------------------------------------ the comparisons

/** Fields the 2024 recordings predate and PROTOCOL.md §1.2 / §3 documents as newer. */
const NEWER_BOOK_FIELDS = {
  min_order_size: 'newer book field (PROTOCOL §1.2), absent from the 2024 recording',
  tick_size: 'newer book field (PROTOCOL §1.2), absent from the 2024 recording',
  neg_risk: 'newer book field (PROTOCOL §1.2), absent from the 2024 recording',
  last_trade_price: 'newer book field (PROTOCOL §1.2), absent from the 2024 recording',
};

/**
 * Gamma bookkeeping the sim does not model (UI flags, rolling volumes, UMA/rewards/deployment state,
 * tag audit fields). Listed so that a field the sim drops later is noticed. Special cases:
 * `feeType` / `markets[].feeType` — the venue sends null without fees, the sim leaves it out (it sends
 * "crypto_fees" on fee markets); `negRiskMarketID` / `negRiskRequestID` — only meaningful for neg-risk
 * events, which these 4 generated markets are not.
 */
const GAMMA_MARKET_OMITTED = [
  'acceptingOrdersTimestamp', 'approved', 'automaticallyActive', 'clearBookOnStart', 'competitive', 'cyom', 'deploying',
  'eventStartTime', 'events[].competitive', 'events[].series[].volume24hr', 'events[].startTime', 'events[].volume1mo',
  'events[].volume1wk', 'events[].volume1yr', 'events[].volume24hr', 'featured', 'feeType', 'funded', 'groupItemThreshold',
  'hasReviewedDates', 'holdingRewardsEnabled', 'icon', 'image', 'liquidityClob', 'makerBaseFee', 'makerRebatesFeeShareBps',
  'manualActivation', 'marketMakerAddress', 'negRiskOther', 'new', 'pagerDutyNotificationEnabled', 'pendingDeployment', 'ready',
  'requiresTranslation', 'restricted', 'rewardsMaxSpread', 'rewardsMinSize', 'rfqEnabled', 'showGmpOutcome', 'showGmpSeries',
  'takerBaseFee', 'umaResolutionStatuses', 'volume1mo', 'volume1moClob', 'volume1wk', 'volume1wkClob', 'volume1yr',
  'volume1yrClob', 'volume24hr', 'volume24hrClob', 'volumeClob',
];
const GAMMA_EVENT_OMITTED = [
  'competitive', 'countryName', 'cumulativeMarkets', 'deployingTimestamp', 'electionType', 'estimateValue', 'gmpChartMode',
  'markets[].acceptingOrdersTimestamp', 'markets[].approved', 'markets[].automaticallyActive', 'markets[].clearBookOnStart',
  'markets[].clobRewards', 'markets[].competitive', 'markets[].customLiveness', 'markets[].cyom', 'markets[].deploying',
  'markets[].deployingTimestamp', 'markets[].featured', 'markets[].feeType', 'markets[].funded', 'markets[].groupItemThreshold',
  'markets[].groupItemTitle', 'markets[].hasReviewedDates', 'markets[].holdingRewardsEnabled', 'markets[].icon',
  'markets[].image', 'markets[].liquidityClob', 'markets[].manualActivation', 'markets[].marketMakerAddress',
  'markets[].negRiskMarketID', 'markets[].negRiskOther', 'markets[].negRiskRequestID', 'markets[].new',
  'markets[].oneDayPriceChange', 'markets[].oneMonthPriceChange', 'markets[].oneWeekPriceChange',
  'markets[].pagerDutyNotificationEnabled', 'markets[].pendingDeployment', 'markets[].ready', 'markets[].requiresTranslation',
  'markets[].resolvedBy', 'markets[].restricted', 'markets[].rewardsMaxSpread', 'markets[].rewardsMinSize',
  'markets[].rfqEnabled', 'markets[].seriesColor', 'markets[].showGmpOutcome', 'markets[].showGmpSeries',
  'markets[].submitted_by', 'markets[].umaBond', 'markets[].umaResolutionStatuses', 'markets[].umaReward', 'markets[].volume1mo',
  'markets[].volume1moClob', 'markets[].volume1wk', 'markets[].volume1wkClob', 'markets[].volume1yr', 'markets[].volume1yrClob',
  'markets[].volume24hr', 'markets[].volume24hrClob', 'markets[].volumeClob', 'negRiskMarketID', 'sortBy', 'startTime',
  'tags[].createdAt', 'tags[].createdBy', 'tags[].forceHide', 'tags[].forceShow', 'tags[].isCarousel', 'tags[].publishedAt',
  'tags[].requiresTranslation', 'tags[].updatedAt', 'tags[].updatedBy', 'volume1mo', 'volume1wk', 'volume1yr', 'volume24hr',
];
const omitted = (paths: string[]) => Object.fromEntries(paths.map((p) => [p, 'Gamma field the sim does not model']));
const FEE_SCHEDULE = 'documented Gamma field of fee markets (PROTOCOL §5.5, §6); absent from the samples';
const GAMMA_MARKET: Known = {
  missing: omitted(GAMMA_MARKET_OMITTED),
  extra: { feeSchedule: FEE_SCHEDULE, 'events[].tags': 'the sample market embeds its event without tags; /events items carry them' },
};
const GAMMA_EVENT: Known = {
  missing: omitted(GAMMA_EVENT_OMITTED),
  extra: {
    'markets[].feeSchedule': FEE_SCHEDULE,
    series: 'recurring-series events carry series (gamma/market_btc_updown_5m_2026 events[].series); the neg-risk sample has none',
    seriesSlug: 'as series',
  },
  accept: { 'markets[].feeType': { kinds: ['string'], why: 'null without fees, "crypto_fees" with (gamma/market_btc_updown_5m_2026)' } },
};

describe('market channel vs recorded samples', () => {
  it('book (initial dump and post-trade) matches ws_market/book_recorded_2024', () => {
    const books = marketEvents('book');
    expect(books.length).toBeGreaterThanOrEqual(3); // 2 initial + at least one after the trades
    expect(conform('ws book', [sample('ws_market/book_recorded_2024.json')], books, { extra: NEWER_BOOK_FIELDS })).toBeGreaterThan(10);
  });

  it('price_change (current price_changes[] form) matches the v2 sample and the docs example', () => {
    const pcs = marketEvents('price_change');
    expect(pcs.length).toBeGreaterThan(0);
    for (const p of pcs) expect(p).not.toHaveProperty('changes'); // not the legacy form
    const samples = [sample('ws_market/price_change_array_v2_nautilus.json'), sample('docs_examples/price_change_current.json')];
    expect(conform('price_change', samples, pcs)).toBeGreaterThan(10);
  });

  it('last_trade_price matches the 2024 recording and the 2025 rs-clob-client sample', () => {
    const samples = [sample('ws_market/last_trade_price_recorded_2024.json'), sample('ws_market/rs_last_trade_price_2025.json')];
    expect(conform('last_trade_price', samples, marketEvents('last_trade_price'))).toBeGreaterThan(8);
  });

  it('tick_size_change matches the 2025 recording (driven: a bid above 0.96 puts the market on the 0.001 tick)', async () => {
    // The token quoted highest: lift every ask up to 0.97 and rest a bid there.
    let pick: { tokenId: string; asks: Array<{ price: string; size: string }> } | undefined;
    for (const m of sim.service.exchange.markets.filter((x) => !x.negRisk)) {
      for (const t of m.tokenIds) {
        const b = await book(t);
        if (b.asks.length === 0 || b.bids.length === 0 || b.tick_size !== '0.01') continue;
        if (!pick || Number(b.asks.at(-1).price) > Number(pick.asks.at(-1)!.price)) pick = { tokenId: t, asks: b.asks };
      }
    }
    const tokenId = pick!.tokenId;
    const ws = await WsClient.open(sim.wsUrl);
    try {
      ws.send({ assets_ids: [tokenId], type: 'market' });
      await waitFor(() => ws.events.some((e) => e.event_type === 'book'), { what: 'book' });
      const below = pick!.asks.filter((l) => Number(l.price) <= 0.97).reduce((n, l) => n + Number(l.size), 0);
      const order = buildSignedOrder({ wallet: walletA, tokenId, side: 'BUY', price: '0.97', size: String(Math.ceil(below) + 5), orderType: 'GTC', tickSize: '0.01', negRisk: false, salt: salt++ });
      const r = await call(credsA, walletA, 'POST', '/order', { order, owner: credsA.apiKey, orderType: 'GTC' });
      expect(r.body).toMatchObject({ success: true });
      await waitFor(() => ws.events.some((e) => e.event_type === 'tick_size_change'), { what: 'tick_size_change', timeoutMs: 5000 });
      await barrier(ws);
      const changes = ws.events.filter((e) => e.event_type === 'tick_size_change');
      expect(changes[0]).toMatchObject({ asset_id: tokenId, old_tick_size: '0.01', new_tick_size: '0.001' });
      conform('tick_size_change', [sample('ws_market/tick_size_change_recorded_2025.json')], changes);
    } finally {
      await ws.close();
    }
  });
});

/** Recorded order events carry `associate_trades: null`; PROTOCOL §2 and the samples README: null, [] or a list. */
const ORDER_ACCEPT: Known['accept'] = {
  associate_trades: { kinds: ['array'], why: 'array or null (PROTOCOL §2); the recordings happen to have null' },
};

describe('user channel vs recorded samples', () => {
  it('order events (PLACEMENT / UPDATE / CANCELLATION) match the recorded placement and cancel', () => {
    const samples = [sample('ws_user/order_placement_recorded_2024.json'), sample('ws_user/order_cancel_recorded_2024.json')];
    const orders = userEvents('order');
    expect(new Set(orders.map((o) => o.type))).toEqual(new Set(['PLACEMENT', 'UPDATE', 'CANCELLATION']));
    expect(conform('ws order', samples, orders, { accept: ORDER_ACCEPT })).toBeGreaterThan(50);
  });

  it('MATCHED trade events match the recorded MATCHED trade', () => {
    const matched = userEvents('trade', (e) => e.status === 'MATCHED');
    expect(new Set(matched.map((e) => e.trader_side))).toEqual(new Set(['TAKER', 'MAKER']));
    conform('ws trade MATCHED', [sample('ws_user/trade_matched_recorded_2024.json')], matched, {
      missing: {
        transaction_hash: 'the sim adds it on MINED; the recorded MATCHED event already carries it',
      },
      extra: { 'maker_orders[].side': 'newer field (trade_confirmed_maker_side_2025, PROTOCOL §2)' },
    });
  });

  it('MINED / CONFIRMED trade events match the recorded mined and the 2025 maker-side trades', () => {
    const done = userEvents('trade', (e) => e.status === 'MINED' || e.status === 'CONFIRMED');
    expect(new Set(done.map((e) => e.status))).toEqual(new Set(['MINED', 'CONFIRMED']));
    const samples = [
      sample('ws_user/trade_mined_recorded_2024.json'),
      sample('ws_user/trade_confirmed_maker_side_2025.json'),
      sample('ws_user/trade_multi_maker_2025.json'),
    ];
    expect(conform('ws trade final', samples, done)).toBeGreaterThan(100);
  });
});

describe('CLOB REST vs samples', () => {
  it('GET /book matches rest/clob_book_recorded_2024', () => {
    conform('GET /book', [sample('rest/clob_book_recorded_2024.json')], rest.book ?? [], { extra: NEWER_BOOK_FIELDS });
  });

  it('POST /order success matches rest/http_order_response_ok (synthetic: no recorded success response exists)', () => {
    conform('POST /order ok', [sample('rest/http_order_response_ok.json')], rest.order ?? [], {
      accept: { errorMsg: { kinds: ['string'], why: 'the synthetic sample has null; PROTOCOL §3 shows "errorMsg":"" on success' } },
      extra: {
        status: 'PROTOCOL §3 response field (the synthetic sample is trimmed)',
        makingAmount: 'PROTOCOL §3 response field (the synthetic sample is trimmed)',
        takingAmount: 'PROTOCOL §3 response field (the synthetic sample is trimmed)',
        transactionsHashes: 'PROTOCOL §3 response field (the synthetic sample is trimmed)',
        tradeIDs: 'PROTOCOL §3 response field (the synthetic sample is trimmed)',
      },
    });
  });

  it('POST /order rejection matches rest/http_order_response_failed', () => {
    conform('POST /order rejected', [sample('rest/http_order_response_failed.json')], rest.orderRejected ?? []);
  });

  it('HTTP errors use the documented {"error"} envelope', () => {
    conform('error envelope', [sample('docs_examples/error_envelope.json')], rest.error ?? []);
  });

  it('open orders (GET /data/order/:id, GET /data/orders) match the open-order samples', () => {
    const accept: Known['accept'] = {
      expiration: { kinds: ['string'], why: 'unix-seconds string, "0" or null (PROTOCOL §2); the synthetic samples have null' },
      'data[].expiration': { kinds: ['string'], why: 'as above' },
    };
    conform('open order', [sample('rest/http_open_order.json'), ...sample('rest/http_open_orders_page.json').data], rest.openOrder ?? [], { accept });
    conform('open orders page', [sample('rest/http_open_orders_page.json')], rest.openOrdersPage ?? [], {
      accept,
      extra: { limit: 'paged answer (PROTOCOL §3: {data,next_cursor,limit,count})', count: 'as limit' },
    });
  });

  it('trade records (GET /data/trades) match rest/data_trades_recorded_like', () => {
    const trades = rest.trade ?? [];
    expect(new Set(trades.map((t: any) => t.trader_side))).toEqual(new Set(['TAKER', 'MAKER']));
    conform('trade record', [sample('rest/data_trades_recorded_like.json')], trades, {
      extra: {
        match_time_nano: 'PROTOCOL §3: /data/trades adds match_time_nano',
        err_msg: 'PROTOCOL §3: /data/trades adds err_msg',
        timestamp: 'user-channel trade field (PROTOCOL §2), kept in the REST record',
        trade_owner: 'user-channel trade field (PROTOCOL §2), kept in the REST record',
        'maker_orders[].side': 'newer field (PROTOCOL §2)',
      },
    });
    conform('trades page', [sample('rest/http_trades_page.json')], rest.tradesPage ?? [], {
      extra: {
        limit: 'paged answer (PROTOCOL §3)',
        count: 'paged answer (PROTOCOL §3)',
        'data[].match_time_nano': 'PROTOCOL §3',
        'data[].err_msg': 'PROTOCOL §3',
        'data[].timestamp': 'user-channel trade field (PROTOCOL §2)',
        'data[].trade_owner': 'user-channel trade field (PROTOCOL §2)',
      },
    });
  });

  it('cancel responses match rest/http_cancel_response_ok and _failed', () => {
    const maps = ['not_canceled'];
    conform('cancel ok', [sample('rest/http_cancel_response_ok.json')], rest.cancelOk ?? [], { maps });
    conform('cancel failed', [sample('rest/http_cancel_response_failed.json')], rest.cancelFailed ?? [], { maps });
    expect(rest.cancelFailed?.[0]).toMatchObject({ canceled: [] });
  });

  it('balance-allowance matches rest/http_balance_allowance_collateral', () => {
    conform('balance-allowance', [sample('rest/http_balance_allowance_collateral.json')], rest.balance ?? [], {
      maps: ['allowances'],
      missing: { allowance: "the sample's older single field; current clients read the `allowances` map (samples README)" },
      extra: { allowances: 'current shape: {spender: amount} (PROTOCOL §3)' },
    });
  });
});

describe('Gamma vs recorded samples', () => {
  it('GET /markets/:id matches gamma/market_btc_updown_5m_2026', async () => {
    const ms = [];
    for (const m of sim.service.exchange.markets) {
      const r = await getJson<any>(`${sim.base}/markets/${m.gammaId}`);
      expect(r.status).toBe(200);
      ms.push(r.body);
    }
    conform('gamma market', [sample('gamma/market_btc_updown_5m_2026.json')], ms, GAMMA_MARKET);
  });

  it('GET /events matches gamma/event_negrisk_2026', async () => {
    const r = await getJson<any[]>(`${sim.base}/events?limit=500`);
    expect(r.status).toBe(200);
    expect(r.body.length).toBeGreaterThan(0);
    conform('gamma event', sample('gamma/event_negrisk_2026.json'), r.body, GAMMA_EVENT);
  });
});
