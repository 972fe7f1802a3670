import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusPublisher, BusRequester, Forwarder, resolveEndpoints, type Endpoints } from '@polybot/bus';
import { loadConfig, ServiceRunner } from '@polybot/core';
import { topics, type ServiceState, type StatusMessage, type Unstamped } from '@polybot/protocol';
import { freePort, tempDataDir, waitFor } from '@polybot/testkit';
import { ApiConfig, buildApp, createApiService, createDbReader, HealthRegistry, WsHub, type ApiService } from '../src/index.js';
import { METRICS_CONTENT_TYPE } from '../src/metrics.js';

let tmp: ReturnType<typeof tempDataDir>;
let ep: Endpoints;
const closers: Array<() => Promise<unknown> | unknown> = [];

beforeEach(() => {
  tmp = tempDataDir('pbmet');
  ep = resolveEndpoints(tmp.dir, {});
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  tmp.cleanup();
});

// --- A small parser of the text exposition format 0.0.4, strict enough to catch what Prometheus would reject. ---

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  line: string;
}
interface Family {
  help?: string;
  type?: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:NaN|[+-]Inf|[+-]?(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?)';
const PAIR = `${LABEL}=${LABEL_VALUE}`;
const SAMPLE_LINE = new RegExp(`^(${NAME})(?:\\{((?:${PAIR})(?:,${PAIR})*)?\\})? (${VALUE})$`);
const HELP_LINE = new RegExp(`^# HELP (${NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`);
const TYPE_LINE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const PAIR_G = new RegExp(`(${LABEL})=(${LABEL_VALUE})`, 'g');

const unescapeLabel = (quoted: string) => quoted.slice(1, -1).replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

function parseExposition(text: string): Map<string, Family> {
  expect(text.endsWith('\n'), 'exposition ends with a newline').toBe(true);
  const families = new Map<string, Family>();
  const order: string[] = [];
  const series = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, line: string) => {
    if (name !== current) {
      expect(families.has(name), `family ${name} is contiguous: ${line}`).toBe(false);
      families.set(name, { samples: [] });
      order.push(name);
      current = name;
    }
    return families.get(name)!;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = HELP_LINE.exec(line))) {
      const f = enter(m[1]!, line);
      expect(f.help, `one HELP for ${m[1]}`).toBeUndefined();
      expect(f.samples, `HELP before samples of ${m[1]}`).toHaveLength(0);
      f.help = m[2]!;
    } else if ((m = TYPE_LINE.exec(line))) {
      const f = enter(m[1]!, line);
      expect(f.type, `one TYPE for ${m[1]}`).toBeUndefined();
      expect(f.samples, `TYPE before samples of ${m[1]}`).toHaveLength(0);
      f.type = m[2]!;
    } else if ((m = SAMPLE_LINE.exec(line))) {
      const f = enter(m[1]!, line);
      const labels: Record<string, string> = {};
      for (const p of (m[2] ?? '').matchAll(PAIR_G)) {
        expect(labels[p[1]!], `label ${p[1]} once in ${line}`).toBeUndefined();
        labels[p[1]!] = unescapeLabel(p[2]!);
      }
      const id = `${m[1]!}${JSON.stringify(Object.entries(labels).sort())}`;
      expect(series.has(id), `series once: ${line}`).toBe(false);
      series.add(id);
      f.samples.push({ name: m[1]!, labels, value: parseValue(m[3]!), line });
    } else {
      expect.fail(`not a valid exposition line: ${JSON.stringify(line)}`);
    }
  }
  expect(order, 'families sorted').toEqual([...order].sort());
  for (const [name, f] of families) {
    expect(f.help, `HELP for ${name}`).toBeDefined();
    expect(f.type, `TYPE for ${name}`).toBe(name.endsWith('_total') ? 'counter' : 'gauge');
  }
  return families;
}

function sample(fams: Map<string, Family>, name: string, labels: Record<string, string>): Sample | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return fams.get(name)?.samples.find((s) => JSON.stringify(Object.entries(s.labels).sort()) === want);
}

const value = (fams: Map<string, Family>, name: string, labels: Record<string, string>) => sample(fams, name, labels)?.value;

async function scrape(base: string): Promise<{ text: string; fams: Map<string, Family>; contentType: string | null }> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, fams: parseExposition(text), contentType: res.headers.get('content-type') };
}

// --- The API as it runs, fed over a real forwarder. ---

async function startApi(env: Record<string, string>): Promise<{ svc: ApiService; base: string }> {
  const port = await freePort();
  const config = loadConfig(ApiConfig, {
    env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_LOG_LEVEL: 'silent', POLYBOT_API_PORT: String(port), POLYBOT_STATUS_INTERVAL_MS: '200', ...env },
    envFile: false,
  });
  let svc: ApiService | undefined;
  const runner = new ServiceRunner({ name: 'api', config, create: (ctx) => (svc = createApiService(ctx)), env: {} });
  await runner.start();
  closers.push(() => runner.stop());
  return { svc: svc!, base: `http://127.0.0.1:${port}` };
}

const status = (service: string, state: ServiceState, metrics: Record<string, number | string>, opts: { intervalMs?: number; since?: number } = {}): Unstamped<StatusMessage> => ({
  type: 'status', service, state, since: opts.since ?? Date.now(), pid: 4242, interval_ms: opts.intervalMs ?? 60_000, metrics,
});

describe('GET /metrics', () => {
  it('exports every service status, typed per-type series, info labels and the api counters', async () => {
    const fwd = new Forwarder({ frontend: ep['events.in'], backend: ep['events.pub'] });
    await fwd.start();
    closers.push(() => fwd.stop());
    const { base } = await startApi({ POLYBOT_EXPECTED_SERVICES: 'scanner,executor,api' });
    const pub = new BusPublisher({ endpoint: ep['events.in'], mode: 'connect', src: 'test' });
    await pub.start();
    closers.push(() => pub.close());

    const weirdType = 'we"ird\\type\nx';
    const scanner = status('scanner', 'running', {
      'events_per_s:price_change': 12.5,
      'events_per_s:book': 3,
      'lag_p99_ms:book': 7,
      'lag_p99_ms:price_change': 2,
      events: 100,
      big: 1e21,
      neg: -0.5,
      'odd key-with.dots': 2,
      [`lag_ms:${weirdType}`]: 5,
      '!!!': 1,
      'x:': 2,
      ws_state: 'open',
    }, { since: Date.now() - 5000 });
    const mode = 'paper "quoted" \\ back\nslash';
    const strategy = status('strategy:threshold', 'degraded', { signals_total: 4, 'fills_total:BUY': 2, 'fills_total:SELL': 1, mode });

    // Heartbeats until the api's subscription has joined (slow joiner).
    await waitFor(async () => {
      pub.publish(topics.status('scanner'), scanner);
      return value((await scrape(base)).fams, 'polybot_service_up', { service: 'scanner' }) === 1;
    }, { what: 'scanner status in /metrics', intervalMs: 100 });
    pub.publish(topics.status('strategy:threshold'), strategy);
    await waitFor(async () => value((await scrape(base)).fams, 'polybot_service_up', { service: 'strategy:threshold' }) === 1, { what: 'strategy status' });
    expect((await fetch(`${base}/api/nope`)).status).toBe(404);

    // Requests are counted once their response has gone out, which may trail the client by a moment.
    const { text, fams, contentType } = await waitFor(async () => {
      const s = await scrape(base);
      return value(s.fams, 'polybot_api_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }) === 1 ? s : undefined;
    }, { what: 'the 404 to be counted' });
    expect(contentType).toBe(METRICS_CONTENT_TYPE);

    // Lifecycle: one state series per state, 1 only for the current one; never-heard expected services are down.
    for (const [service, state, up] of [['scanner', 'running', 1], ['strategy:threshold', 'degraded', 1], ['executor', 'down', 0], ['api', 'running', 1]] as const) {
      expect(value(fams, 'polybot_service_up', { service }), service).toBe(up);
      const states = fams.get('polybot_service_state')!.samples.filter((s) => s.labels.service === service);
      expect(states.map((s) => s.labels.state).sort(), service).toEqual(['degraded', 'down', 'faulted', 'running', 'starting', 'stopped', 'stopping']);
      expect(states.filter((s) => s.value === 1).map((s) => s.labels.state), service).toEqual([state]);
    }
    expect(value(fams, 'polybot_service_uptime_seconds', { service: 'scanner' })).toBeGreaterThanOrEqual(5);
    expect(value(fams, 'polybot_service_status_age_seconds', { service: 'scanner' })).toBeGreaterThanOrEqual(0);
    expect(sample(fams, 'polybot_service_uptime_seconds', { service: 'executor' })).toBeUndefined();

    // Per-type keys become one labelled family.
    const scn = { service: 'scanner' };
    expect(fams.get('polybot_scanner_events_per_s')!.samples).toHaveLength(2);
    expect(value(fams, 'polybot_scanner_events_per_s', { ...scn, type: 'price_change' })).toBe(12.5);
    expect(value(fams, 'polybot_scanner_events_per_s', { ...scn, type: 'book' })).toBe(3);
    expect(value(fams, 'polybot_scanner_lag_p99_ms', { ...scn, type: 'book' })).toBe(7);
    expect(value(fams, 'polybot_scanner_lag_p99_ms', { ...scn, type: 'price_change' })).toBe(2);
    expect(value(fams, 'polybot_scanner_events', scn)).toBe(100);
    expect(value(fams, 'polybot_scanner_big', scn)).toBe(1e21);
    expect(value(fams, 'polybot_scanner_neg', scn)).toBe(-0.5);
    expect(value(fams, 'polybot_scanner_odd_key_with_dots', scn)).toBe(2);
    expect(value(fams, 'polybot_scanner_info', { ...scn, ws_state: 'open' })).toBe(1);
    expect(text.match(/^# (HELP|TYPE) polybot_scanner_events_per_s /gm)).toHaveLength(2);

    // Label values are escaped on the wire and come back intact.
    expect(value(fams, 'polybot_scanner_lag_ms', { ...scn, type: weirdType })).toBe(5);
    expect(text).toContain('polybot_scanner_lag_ms{service="scanner",type="we\\"ird\\\\type\\nx"} 5\n');
    // `!!!` and `x:` cannot be named.
    expect(value(fams, 'polybot_metrics_skipped', scn)).toBe(2);
    expect(text).not.toMatch(/^polybot_scanner_x[{ ]/m);

    // Strategies share a family per metric, told apart by service and strategy labels.
    const strat = { service: 'strategy:threshold', strategy: 'threshold' };
    expect(fams.get('polybot_strategy_signals_total')!.type).toBe('counter');
    expect(value(fams, 'polybot_strategy_signals_total', strat)).toBe(4);
    expect(value(fams, 'polybot_strategy_fills_total', { ...strat, type: 'BUY' })).toBe(2);
    expect(value(fams, 'polybot_strategy_fills_total', { ...strat, type: 'SELL' })).toBe(1);
    expect(value(fams, 'polybot_strategy_info', { ...strat, mode })).toBe(1);
    expect(value(fams, 'polybot_metrics_skipped', { service: 'strategy:threshold' })).toBe(0);

    // The api's own figures: its live status metrics and HTTP requests by route pattern.
    const api = { service: 'api' };
    expect(value(fams, 'polybot_api_ws_clients', api)).toBe(0);
    expect(value(fams, 'polybot_api_events_received', api)).toBeGreaterThan(0);
    expect(value(fams, 'polybot_api_bus_invalid', api)).toBe(0);
    expect(fams.get('polybot_api_http_requests_total')!.type).toBe('counter');
    expect(value(fams, 'polybot_api_http_requests_total', { method: 'GET', route: '/metrics', status: '200' })).toBeGreaterThanOrEqual(2);
    expect(value(fams, 'polybot_api_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
  });

  it('shows a service that went silent as up 0 and state down, without its stale figures', async () => {
    const fwd = new Forwarder({ frontend: ep['events.in'], backend: ep['events.pub'] });
    await fwd.start();
    closers.push(() => fwd.stop());
    const { base } = await startApi({ POLYBOT_EXPECTED_SERVICES: 'bus,api' });
    const pub = new BusPublisher({ endpoint: ep['events.in'], mode: 'connect', src: 'test' });
    await pub.start();
    closers.push(() => pub.close());

    // A 100 ms heartbeat interval: stale 300 ms after the last one, whenever the scrape happens to run.
    await waitFor(async () => {
      pub.publish(topics.status('bus'), status('bus', 'running', { uptime_s: 3 }, { intervalMs: 100 }));
      return sample((await scrape(base)).fams, 'polybot_service_status_age_seconds', { service: 'bus' });
    }, { what: 'bus status in /metrics', intervalMs: 100 });
    const { fams } = await waitFor(async () => {
      const s = await scrape(base);
      return value(s.fams, 'polybot_service_up', { service: 'bus' }) === 0 ? s : undefined;
    }, { what: 'bus to go stale' });
    expect(value(fams, 'polybot_service_state', { service: 'bus', state: 'down' })).toBe(1);
    expect(value(fams, 'polybot_service_state', { service: 'bus', state: 'running' })).toBe(0);
    expect(value(fams, 'polybot_service_status_age_seconds', { service: 'bus' })).toBeGreaterThan(0.3);
    expect(sample(fams, 'polybot_service_uptime_seconds', { service: 'bus' })).toBeUndefined();
    expect(fams.has('polybot_bus_uptime_s')).toBe(false);
    expect(value(fams, 'polybot_service_up', { service: 'api' })).toBe(1);

    // A stopped service is fresh but not up.
    pub.publish(topics.status('bus'), status('bus', 'stopped', { uptime_s: 4 }));
    const stopped = await waitFor(async () => {
      const s = await scrape(base);
      return value(s.fams, 'polybot_service_state', { service: 'bus', state: 'stopped' }) === 1 ? s.fams : undefined;
    }, { what: 'bus stopped' });
    expect(value(stopped, 'polybot_service_up', { service: 'bus' })).toBe(0);
    expect(value(stopped, 'polybot_bus_uptime_s', { service: 'bus' })).toBe(4);
  });

  it('never fails on odd names and values: NaN and infinities, clashes, non-numbers, hostile labels', async () => {
    const requester = new BusRequester({ endpoint: ep['analytics.rep'], src: 'test', timeoutMs: 200 });
    closers.push(() => requester.close());
    const health = new HealthRegistry(['api', 'sim'], {
      name: 'api',
      since: Date.now(),
      metrics: () => ({ nan: NaN, inf: Infinity, ninf: -Infinity, ok_total: 3 }),
    });
    // Straight into the registry: the bus schema would refuse most of this, the exposition must survive it anyway.
    const odd = (service: string, metrics: Record<string, unknown>, state = 'running') =>
      health.record({ type: 'status', service, state, since: Date.now(), pid: 1, interval_ms: 60_000, metrics, v: 1, src: 't', seq: 0, ts: 0 } as unknown as StatusMessage);
    odd('service', { up: 5, other: 1 });
    odd('weird"svc\\na\nme:inst"x', { ok: 1, service: 'clash', 'a-b': 'one', 'a.b': 'two' });
    odd('scanner', {
      obj: { nested: 1 },
      flag: true,
      nil: null,
      ['k'.repeat(200)]: 1,
      '🚀': 2,
      '🚀rocket': 3,
      '9lives': 'cat',
      ':book': 1,
      '__proto__x': 'p',
      '': 1,
    });
    odd('faulty', { x: 1 }, 'exploded');

    const db = createDbReader(join(tmp.dir, 'polybot.db'));
    const app = await buildApp({ db, analytics: requester, health, hub: new WsHub(), uiDir: join(tmp.dir, 'no-ui') });
    closers.push(() => app.close());
    const port = await freePort();
    await app.listen({ host: '127.0.0.1', port });
    const { fams, text } = await scrape(`http://127.0.0.1:${port}`);

    const api = { service: 'api' };
    expect(value(fams, 'polybot_api_nan', api)).toBeNaN();
    expect(value(fams, 'polybot_api_inf', api)).toBe(Infinity);
    expect(value(fams, 'polybot_api_ninf', api)).toBe(-Infinity);
    expect(text).toContain('polybot_api_nan{service="api"} NaN\n');
    expect(text).toContain('polybot_api_inf{service="api"} +Inf\n');
    expect(text).toContain('polybot_api_ninf{service="api"} -Inf\n');
    expect(value(fams, 'polybot_api_ok_total', api)).toBe(3);

    // A service called `service` cannot overwrite the lifecycle series; its own `up` is left out.
    expect(value(fams, 'polybot_service_up', { service: 'service' })).toBe(1);
    expect(value(fams, 'polybot_service_other', { service: 'service' })).toBe(1);
    expect(value(fams, 'polybot_metrics_skipped', { service: 'service' })).toBe(1);

    const weird = 'weird"svc\\na\nme:inst"x';
    const w = { service: weird, weird_svc_na_me: 'inst"x' };
    expect(value(fams, 'polybot_service_up', { service: weird })).toBe(1);
    expect(value(fams, 'polybot_weird_svc_na_me_ok', w)).toBe(1);
    // `service` would clash with the service label; `a.b` sanitizes to the same label as `a-b`.
    expect(value(fams, 'polybot_weird_svc_na_me_info', { ...w, a_b: 'one' })).toBe(1);
    expect(value(fams, 'polybot_metrics_skipped', { service: weird })).toBe(2);

    const scn = { service: 'scanner' };
    expect(value(fams, 'polybot_scanner__rocket', scn)).toBe(3);
    expect(value(fams, 'polybot_scanner_info', { ...scn, _9lives: 'cat', __proto__x: 'p' })).toBeUndefined();
    expect(value(fams, 'polybot_scanner_info', { ...scn, _9lives: 'cat' })).toBe(1);
    // obj, flag, nil, the 200-character key, 🚀, :book, __proto__x and '' are left out.
    expect(value(fams, 'polybot_metrics_skipped', scn)).toBe(8);

    // An unknown state is not up and matches no state series.
    expect(value(fams, 'polybot_service_up', { service: 'faulty' })).toBe(0);
    expect(fams.get('polybot_service_state')!.samples.filter((s) => s.labels.service === 'faulty' && s.value === 1)).toHaveLength(0);
    expect(value(fams, 'polybot_service_up', { service: 'sim' })).toBe(0);
    expect(value(fams, 'polybot_service_state', { service: 'sim', state: 'down' })).toBe(1);
  });
});
