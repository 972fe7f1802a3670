import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, ServiceRunner } from '@polybot/core';
import type { ApiCreds } from '@polybot/polymarket';
import { createSimService, SimConfig, type SimService } from '../../sim/src/index.js';
import type { ReconciledSnapshot, SessionState, VenueOrderUpdate, VenueSession, VenueSessionLogger, VenueTradeUpdate } from '../src/venue-session.js';

const shared = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/polymarket');

/** The public Hardhat account #0 of the shared vectors; never funded anywhere. */
export const TEST_KEY = (JSON.parse(readFileSync(resolve(shared, 'vectors/l1_clob_auth.json'), 'utf8')) as { cases: Array<{ privateKey: string }> }).cases[0]!.privateKey;

/** The simulator on a chosen port and data dir, so it can be stopped and brought back where it was. */
export async function startSimAt(opts: { port: number; dir: string; env?: Record<string, string> }): Promise<{ service: SimService; base: string; stop(): Promise<void> }> {
  const config = loadConfig(SimConfig, {
    env: {
      POLYBOT_DATA_DIR: opts.dir,
      POLYBOT_SIM_PORT: String(opts.port),
      POLYBOT_LOG_LEVEL: 'silent',
      POLYBOT_SIM_NEG_RISK: 'false',
      POLYBOT_SIM_ROUND_ASSETS: 'none',
      POLYBOT_SIM_TRADERS: '0',
      ...opts.env,
    },
    envFile: false,
  });
  let service: SimService | undefined;
  const runner = new ServiceRunner({ name: 'sim', config, env: { POLYBOT_DATA_DIR: opts.dir }, create: (ctx) => (service = createSimService(ctx)) });
  await runner.start();
  if (!service) throw new Error('service not created');
  return { service, base: `http://127.0.0.1:${service.port}`, stop: () => runner.stop() };
}

/** A TCP relay in front of the simulator: `block` drops the connections and refuses new ones, the way a network outage does. */
export async function relay(targetPort: number): Promise<{ port: number; block(): number; unblock(): void; close(): Promise<void> }> {
  const pairs = new Set<[Socket, Socket]>();
  let blocked = false;
  const server: Server = createServer((down) => {
    if (blocked) {
      down.destroy();
      return;
    }
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
  const cut = () => {
    const n = pairs.size;
    for (const [a, b] of [...pairs]) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
    return n;
  };
  return {
    port,
    block: () => {
      blocked = true;
      return cut();
    },
    unblock: () => {
      blocked = false;
    },
    close: () =>
      new Promise<void>((r) => {
        cut();
        server.close(() => r());
      }),
  };
}

export async function admin(base: string, secret: string, path: string, body: unknown = {}): Promise<any> {
  const res = await fetch(`${base}/admin/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-admin-secret': secret }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`admin ${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

export type FetchFault = 'swallow' | 'lose_answer' | 'miss';

/**
 * Network faults at the fetch boundary, one per matching request in order:
 *  - `swallow` a `POST /order`: the connection "resets" before a byte leaves (the venue never sees it);
 *  - `lose_answer` of a `POST /order`: the venue gets and processes it, the answer is lost;
 *  - `miss` a `GET /data/order/…`: the venue's index does not show the order yet (404).
 */
export function faultyFetch(plan: { post?: FetchFault[]; lookup?: FetchFault[] }) {
  const posts = [...(plan.post ?? [])];
  const lookups = [...(plan.lookup ?? [])];
  const seen = { posts: 0, postedToVenue: 0, lookups: 0 };
  const reset = () => Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) });
  const f: typeof fetch = async (input, init) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    const method = (init?.method ?? 'GET').toUpperCase();
    if (method === 'POST' && url.pathname === '/order') {
      seen.posts++;
      const fault = posts.shift();
      if (fault === 'swallow') throw reset();
      seen.postedToVenue++;
      const res = await fetch(input, init);
      if (fault === 'lose_answer') {
        await res.text();
        throw reset();
      }
      return res;
    }
    if (method === 'GET' && url.pathname.startsWith('/data/order/')) {
      seen.lookups++;
      if (lookups.shift() === 'miss') return new Response(JSON.stringify({ error: 'order not found' }), { status: 404, headers: { 'content-type': 'application/json' } });
    }
    return fetch(input, init);
  };
  return { fetch: f, seen };
}

/** Everything a session emits, in order. */
export function record(session: VenueSession) {
  const orders: VenueOrderUpdate[] = [];
  const trades: VenueTradeUpdate[] = [];
  const states: SessionState[] = [];
  const snapshots: ReconciledSnapshot[] = [];
  session.onOrderUpdate((u) => orders.push(u));
  session.onTradeUpdate((u) => trades.push(u));
  session.onState((s) => states.push(s));
  session.onReconciled((s) => snapshots.push(s));
  return { orders, trades, states, snapshots };
}

/** A logger that keeps every line, to prove no credential reaches a log. */
export function recordingLogger(): { lines: unknown[]; log: VenueSessionLogger } {
  const lines: unknown[] = [];
  const rec = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj: obj instanceof Error ? String(obj) : obj, msg });
  return { lines, log: { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') } };
}

export function expectNoSecrets(text: string, creds: ApiCreds): string[] {
  return [creds.secret, creds.passphrase].filter((s) => text.includes(s));
}
