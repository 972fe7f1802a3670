import type { ServiceState } from '@polybot/protocol';
import type { FastifyInstance } from 'fastify';
import type { HealthRegistry, StatusSnapshot } from './health.js';

/**
 * `GET /metrics`: the Prometheus text exposition format 0.0.4, built on each scrape from the latest
 * `status.*` heartbeat of every service plus the API's own counters. Naming rule (also in the README):
 *
 * - numeric status metric `<name>` of service `<svc>` → `polybot_<svc>_<name>{service="<svc>"}`;
 *   anything outside `[a-zA-Z0-9_]` becomes `_`;
 * - a service `<kind>:<instance>` (`strategy:threshold`) → prefix `polybot_<kind>_` and labels
 *   `service="strategy:threshold",strategy="threshold"`, so all strategies share one family per metric;
 * - a key `<name>:<type>` (`events_per_s:book`) → `polybot_<svc>_<name>{type="<type>"}`;
 * - string metrics → one `polybot_<svc>_info{<key>="<value>",...} 1` series per service;
 * - `_total` names are counters, everything else gauges.
 *
 * Keys that cannot be named (empty, no letter or digit, over 128 characters, empty type), values that
 * are neither numbers nor strings, and series that would clash with one already written are left
 * out and counted in `polybot_metrics_skipped{service}`.
 */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Label = readonly [name: string, value: string];
type FamilyType = 'gauge' | 'counter';

interface Family {
  help: string;
  type: FamilyType;
  /** Rendered label block → rendered value. */
  series: Map<string, string>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const HAS_ALNUM = /[a-zA-Z0-9]/;
const MAX_KEY = 128;
/** Labels this module sets itself; a `<kind>` or string-metric label of the same name would be ambiguous. */
const RESERVED_LABELS = new Set(['service', 'type']);

// The Record makes the compiler insist on every lifecycle state; `down` is the /api/health verdict for a silent service.
const LIFECYCLE = { starting: 0, running: 0, degraded: 0, stopping: 0, stopped: 0, faulted: 0 } satisfies Record<ServiceState, 0>;
export const EXPORTED_STATES: readonly string[] = [...Object.keys(LIFECYCLE), 'down'];
/** Alive states; stopped, faulted, down and anything unknown are not up. */
const UP: ReadonlySet<string> = new Set(['starting', 'running', 'degraded', 'stopping']);

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

// Per code point (u flag), so an emoji becomes one `_`, not two.
const sanitize = (s: string): string => s.replace(/[^a-zA-Z0-9_]/gu, '_');
const familyType = (name: string): FamilyType => (name.endsWith('_total') ? 'counter' : 'gauge');
const validLabel = (name: string): boolean => LABEL_NAME.test(name) && !name.startsWith('__');

class Exposition {
  private readonly families = new Map<string, Family>();

  /** False when the name or labels are invalid or the series is already there (the first one wins). */
  add(name: string, help: string, labels: readonly Label[], value: number, type: FamilyType = familyType(name)): boolean {
    if (!METRIC_NAME.test(name)) return false;
    const seen = new Set<string>();
    for (const [k] of labels) {
      if (!validLabel(k) || seen.has(k)) return false;
      seen.add(k);
    }
    let family = this.families.get(name);
    if (!family) {
      family = { help, type, series: new Map() };
      this.families.set(name, family);
    }
    const block = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
    if (family.series.has(block)) return false;
    family.series.set(block, formatValue(value));
    return true;
  }

  render(): string {
    const lines: string[] = [];
    for (const name of [...this.families.keys()].sort()) {
      const family = this.families.get(name)!;
      lines.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`);
      for (const block of [...family.series.keys()].sort()) lines.push(`${name}${block} ${family.series.get(block)!}`);
    }
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }
}

interface ServiceNaming {
  prefix: string;
  kind: string;
  labels: Label[];
}

function serviceNaming(service: string): ServiceNaming {
  const colon = service.indexOf(':');
  const kind = colon > 0 ? service.slice(0, colon) : service;
  const instance = colon > 0 ? service.slice(colon + 1) : '';
  const k = sanitize(kind);
  const labels: Label[] = [['service', service]];
  if (instance !== '' && validLabel(k) && !RESERVED_LABELS.has(k)) labels.push([k, instance]);
  return { prefix: `polybot_${k}_`, kind, labels };
}

/** `<name>` or `<name>:<type>`; undefined when no sensible metric name can be made of it. */
function parseKey(key: string): { name: string; type?: string } | undefined {
  if (key.length === 0 || key.length > MAX_KEY) return undefined;
  const colon = key.indexOf(':');
  const name = colon >= 0 ? key.slice(0, colon) : key;
  if (!HAS_ALNUM.test(name)) return undefined;
  if (colon < 0) return { name: sanitize(name) };
  const type = key.slice(colon + 1);
  return type === '' ? undefined : { name: sanitize(name), type };
}

export type SkipReason = 'name' | 'value' | 'clash';

export interface RenderOptions {
  http?: HttpRequestCounter;
  /** Told about every metric left out, on every scrape. */
  onSkip?: (service: string, key: string, reason: SkipReason) => void;
}

/** Writes one service's status metrics; returns how many were left out. */
function addStatusMetrics(exp: Exposition, service: string, metrics: unknown, onSkip?: RenderOptions['onSkip']): number {
  const { prefix, kind, labels } = serviceNaming(service);
  let skipped = 0;
  const skip = (key: string, reason: SkipReason) => {
    skipped++;
    onSkip?.(service, key, reason);
  };
  const info: Label[] = [];
  const infoKeys: string[] = [];
  const record = metrics !== null && typeof metrics === 'object' ? (metrics as Record<string, unknown>) : {};
  // Sorted so that which of two clashing keys wins does not depend on the sender's key order.
  for (const key of Object.keys(record).sort()) {
    const value = record[key];
    if (typeof value === 'number') {
      const parsed = parseKey(key);
      if (!parsed) {
        skip(key, 'name');
        continue;
      }
      const seriesLabels: Label[] = parsed.type === undefined ? labels : [...labels, ['type', parsed.type]];
      const help = `Status metric ${parsed.name} of ${kind}${parsed.type === undefined ? '' : ', by type'}.`;
      if (!exp.add(prefix + parsed.name, help, seriesLabels, value)) skip(key, 'clash');
    } else if (typeof value === 'string') {
      let label = sanitize(key);
      if (/^[0-9]/.test(label)) label = `_${label}`;
      if (key.length > MAX_KEY || !HAS_ALNUM.test(key) || !validLabel(label)) skip(key, 'name');
      else if (labels.some(([k]) => k === label) || info.some(([k]) => k === label)) skip(key, 'clash');
      else {
        info.push([label, value]);
        infoKeys.push(key);
      }
    } else {
      skip(key, 'value');
    }
  }
  if (info.length > 0 && !exp.add(`${prefix}info`, `Text-valued status metrics of ${kind}, as labels.`, [...labels, ...info], 1, 'gauge')) {
    for (const k of infoKeys) skip(k, 'clash');
  }
  return skipped;
}

/** The exposition for one snapshot; never throws on whatever a peer put in its metrics. */
export function renderMetrics(snap: StatusSnapshot, opts: RenderOptions = {}): string {
  const exp = new Exposition();
  const now = snap.now;
  const names = new Set<string>([...snap.services.keys(), ...snap.expected]);
  if (snap.self) names.add(snap.self.name);
  const skipped: Array<[string, number]> = [];

  for (const service of [...names].sort()) {
    const entry = snap.services.get(service);
    const self = snap.self?.name === service ? snap.self : undefined;
    // The API answering this scrape is running by definition, as on /api/health.
    const state = self ? 'running' : !entry ? 'down' : entry.stale ? 'down' : entry.msg.state;
    const l: Label[] = [['service', service]];
    exp.add('polybot_service_up', 'Whether the service is alive: 1 unless it is silent for 3 heartbeat intervals, never reported, stopped or faulted.', l, UP.has(state) ? 1 : 0);
    for (const s of EXPORTED_STATES) {
      exp.add('polybot_service_state', 'Lifecycle state of the service (1 for the current one); down = silent or never heard, as on /api/health.', [...l, ['state', s]], s === state ? 1 : 0);
    }
    const since = self ? self.since : entry && !entry.stale ? entry.msg.since : undefined;
    if (since !== undefined) {
      // `since` is on the sender's clock; a little skew must not make it negative.
      exp.add('polybot_service_uptime_seconds', 'Seconds since the service entered its current lifecycle state (absent when silent).', l, Math.max(0, now - since) / 1000);
    }
    const lastSeen = self ? now : entry?.lastSeen;
    if (lastSeen !== undefined) {
      exp.add('polybot_service_status_age_seconds', 'Seconds since the last status heartbeat of the service arrived (API clock).', l, Math.max(0, now - lastSeen) / 1000);
    }
    // A silent service's last figures are history, not the present: leave them out rather than repeat them.
    const metrics = self ? self.metrics : entry && !entry.stale ? entry.msg.metrics : undefined;
    if (metrics !== undefined) skipped.push([service, addStatusMetrics(exp, service, metrics, opts.onSkip)]);
  }

  for (const [service, n] of skipped) {
    exp.add('polybot_metrics_skipped', 'Status metrics of the service left out of this exposition: unusable name or value, or a clash with another series.', [['service', service]], n);
  }
  for (const s of opts.http?.series() ?? []) {
    exp.add('polybot_api_http_requests_total', 'HTTP requests answered by the API, by method, route pattern and status.', [['method', s.method], ['route', s.route], ['status', String(s.status)]], s.count, 'counter');
  }
  return exp.render();
}

/** HTTP responses by method, route pattern and status; patterns, not URLs, keep the label set small. */
export class HttpRequestCounter {
  private readonly counts = new Map<string, { method: string; route: string; status: number; count: number }>();

  record(method: string, route: string | undefined, status: number): void {
    const r = route ?? 'unmatched';
    const key = `${method} ${status} ${r}`;
    const c = this.counts.get(key);
    if (c) c.count++;
    else this.counts.set(key, { method, route: r, status, count: 1 });
  }

  series(): Iterable<{ method: string; route: string; status: number; count: number }> {
    return this.counts.values();
  }
}

interface WarnLogger {
  warn(obj: object, msg?: string): void;
}

/** At most this many distinct skipped keys are remembered for warn-once logging. */
const MAX_WARNED = 1000;

/** Adds the request counter hook and `GET /metrics`. */
export function registerMetrics(app: FastifyInstance, deps: { health: HealthRegistry; log?: WarnLogger }): HttpRequestCounter {
  const http = new HttpRequestCounter();
  const warned = new Set<string>();
  const onSkip = (service: string, key: string, reason: SkipReason) => {
    const id = `${service}\0${key}`;
    if (warned.has(id) || warned.size >= MAX_WARNED) return;
    warned.add(id);
    deps.log?.warn({ service, key, reason }, 'status metric left out of /metrics');
  };
  app.addHook('onResponse', async (req, reply) => {
    http.record(req.method, req.routeOptions.url, reply.statusCode);
  });
  app.get('/metrics', async (_req, reply) => reply.type(METRICS_CONTENT_TYPE).send(renderMetrics(deps.health.snapshot(), { http, onSkip })));
  return http;
}
