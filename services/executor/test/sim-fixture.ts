/**
 * Shared setup of the executor tests that run against the real simulator: the scanner's tables
 * filled from the sim's own Gamma listing, the events bus, an executor runner, a recording relay in
 * front of the CLOB REST API, and a second wallet that rests counter-orders.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Wallet } from 'ethers';
import { BusSubscriber, Forwarder, resolveEndpoints, type Endpoints } from '@polybot/bus';
import { createLogger, loadConfig, openDatabase, ServiceRunner } from '@polybot/core';
import {
  buildL2Headers,
  buildSignedOrder,
  ClobAccountClient,
  ClobTradingClient,
  createOrDeriveApiKey,
  type ApiCreds,
  type AuthHeadersFn,
  type CancelResponse,
  type OrderResponse,
} from '@polybot/polymarket';
import type { BusMessage } from '@polybot/protocol';
import { createExecutorService, ExecutorConfig } from '../src/index.js';

// ---------------------------------------------------------------- scanner tables

export interface ScannerMarket {
  conditionId: string;
  question: string;
  negRisk: boolean;
  tickSize: string;
  minOrderSize: string;
  closed?: boolean;
  /** Index-aligned with the outcomes (YES first). */
  tokens: Array<{ tokenId: string; outcome: string }>;
}

/** The scanner's `markets` and `market_tokens` (docs/interfaces.md), filled the way the scanner would. */
export function seedScanner(file: string, markets: readonly ScannerMarket[]): void {
  const db = openDatabase(file);
  db.exec(`
    CREATE TABLE IF NOT EXISTS markets(condition_id TEXT PRIMARY KEY, gamma_id TEXT, question TEXT NOT NULL, slug TEXT,
        active INTEGER NOT NULL, closed INTEGER NOT NULL, neg_risk INTEGER NOT NULL DEFAULT 0,
        tick_size TEXT NOT NULL, min_order_size TEXT NOT NULL, end_date TEXT, updated_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS market_tokens(token_id TEXT PRIMARY KEY, condition_id TEXT NOT NULL REFERENCES markets(condition_id),
        outcome TEXT NOT NULL, outcome_index INTEGER NOT NULL);
  `);
  const m = db.prepare('INSERT INTO markets VALUES (?, NULL, ?, NULL, ?, ?, ?, ?, ?, NULL, ?)');
  const t = db.prepare('INSERT INTO market_tokens VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    for (const x of markets) {
      m.run(x.conditionId, x.question, x.closed ? 0 : 1, x.closed ? 1 : 0, x.negRisk ? 1 : 0, x.tickSize, x.minOrderSize, Date.now());
      x.tokens.forEach((tok, i) => t.run(tok.tokenId, x.conditionId, tok.outcome, i));
    }
  })();
  db.close();
}

/** The simulator's markets as its Gamma API lists them (tick size and minimum as they are now). */
export async function gammaMarkets(base: string): Promise<ScannerMarket[]> {
  const res = await fetch(`${base}/markets?limit=500`);
  if (res.status !== 200) throw new Error(`GET /markets: HTTP ${res.status}`);
  const list = (await res.json()) as Array<Record<string, any>>;
  return list.map((g) => {
    const ids = JSON.parse(g.clobTokenIds as string) as string[];
    const outcomes = JSON.parse(g.outcomes as string) as string[];
    return {
      conditionId: g.conditionId as string,
      question: g.question as string,
      negRisk: g.negRisk === true,
      tickSize: String(g.orderPriceMinTickSize),
      minOrderSize: String(g.orderMinSize),
      closed: g.closed === true,
      tokens: ids.map((tokenId, i) => ({ tokenId, outcome: outcomes[i] ?? String(i) })),
    };
  });
}

// ---------------------------------------------------------------- bus and executor

export type Ev = Record<string, unknown> & { topic: string };

export interface Bus {
  ep: Endpoints;
  /** Everything seen on `events.pub` under `event.` and `status.executor`, in arrival order. */
  events: Ev[];
  close(): Promise<void>;
}

/** The events forwarder of a data dir and a subscriber that keeps every event and executor status. */
export async function startBus(dir: string): Promise<Bus> {
  const ep = resolveEndpoints(dir, {});
  const fwd = new Forwarder({ frontend: ep['events.in'], backend: ep['events.pub'] });
  await fwd.start();
  const events: Ev[] = [];
  const sub = new BusSubscriber({
    endpoints: [ep['events.pub']],
    topics: ['event.', 'status.executor'],
    onMessage: (m: BusMessage, topic: string) => void events.push({ topic, ...(m as unknown as Record<string, unknown>) }),
  });
  sub.start();
  return {
    ep,
    events,
    close: async () => {
      await sub.close();
      await fwd.stop();
    },
  };
}

/** The executor in-process, configured only from `env` (no .env file); `logs` collects every JSON log line. */
export function executorRunner(env: Record<string, string>, logs?: string[]): ServiceRunner<ExecutorConfig> {
  const config = loadConfig(ExecutorConfig, { env: { POLYBOT_STATUS_INTERVAL_MS: '200', ...env }, envFile: false });
  const log = createLogger('executor', { level: logs ? 'debug' : 'silent', destination: { write: (s: string) => void logs?.push(s) } });
  return new ServiceRunner({ name: 'executor', config, create: createExecutorService, env: {}, log });
}

// ---------------------------------------------------------------- recording relay

export interface Posted {
  headers: IncomingHttpHeaders;
  /** The exact request body text. */
  text: string;
  status: number;
  /** The venue's answer text. */
  answer: string;
}

const HOP = new Set(['host', 'connection', 'keep-alive', 'content-length', 'transfer-encoding', 'content-encoding', 'upgrade']);

/**
 * An HTTP relay in front of the sim's REST API that keeps every `POST /order` (headers, exact body,
 * answer), so a test can compare what the executor stored with what reached the venue.
 */
export async function recordingRelay(target: string): Promise<{ url: string; posted: Posted[]; close(): Promise<void> }> {
  const posted: Posted[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const method = req.method ?? 'GET';
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
      void (async () => {
        try {
          const up = await fetch(`${target}${req.url ?? '/'}`, { method, headers, ...(method === 'GET' || method === 'HEAD' ? {} : { body }) });
          const answer = Buffer.from(await up.arrayBuffer());
          if (method === 'POST' && req.url === '/order') posted.push({ headers: req.headers, text: body.toString('utf8'), status: up.status, answer: answer.toString('utf8') });
          const out: Record<string, string> = {};
          up.headers.forEach((v, k) => {
            if (!HOP.has(k)) out[k] = v;
          });
          res.writeHead(up.status, out).end(answer);
        } catch {
          res.destroy();
        }
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    posted,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------- a second wallet

/** Hardhat account #1: public, never funded anywhere; the sim funds it on its first API key. */
export const COUNTERPARTY_KEY = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';

/**
 * Another account at the sim that rests the other side of the executor's orders. It only ever BUYs
 * (pUSD is all a new account holds): the other side of an executor BUY of a token at p is a BUY of
 * the complementary token at 1 − p, which the sim matches by minting the pair.
 */
export class Counterparty {
  private constructor(
    readonly wallet: Wallet,
    private readonly creds: ApiCreds,
    private readonly trading: ClobTradingClient,
    private readonly account: ClobAccountClient,
  ) {}

  static async open(base: string, key = COUNTERPARTY_KEY): Promise<Counterparty> {
    const wallet = new Wallet(key);
    const creds = await createOrDeriveApiKey(base, wallet);
    const auth: AuthHeadersFn = (method, path, body) => ({ ...buildL2Headers(creds, wallet.address, { method, requestPath: path, body }) });
    return new Counterparty(wallet, creds, new ClobTradingClient({ baseUrl: base, authHeaders: auth }), new ClobAccountClient({ baseUrl: base, authHeaders: auth }));
  }

  /** A signed BUY on a 0.01-tick market; throws unless the venue accepts it. */
  async buy(tokenId: string, price: string, size: string, opts: { orderType?: 'GTC' | 'FAK'; negRisk?: boolean } = {}): Promise<OrderResponse> {
    const orderType = opts.orderType ?? 'GTC';
    const order = buildSignedOrder({ wallet: this.wallet, tokenId, side: 'BUY', price, size, orderType, tickSize: '0.01', negRisk: opts.negRisk ?? false });
    const out = await this.trading.postOrder({ order, owner: this.creds.apiKey, orderType });
    if (out.kind !== 'accepted') throw new Error(`counter-order not accepted: ${JSON.stringify(out)}`);
    return out.response;
  }

  cancelAll(): Promise<CancelResponse> {
    return this.account.cancelAll();
  }
}
