import { serviceConfig, type Service, type ServiceContext } from '@polybot/core';
import { toMicros } from '@polybot/protocol';
import type { FastifyInstance } from 'fastify';
import Type, { type Static } from 'typebox';
import { Exchange, type ExchangeOptions } from './exchange.js';
import { autosave, openExchange, type Autosave } from './persist.js';
import { MarketHub } from './market-ws.js';
import { buildServer } from './server.js';
import { loadWallet } from '@polybot/polymarket';
import { createApiKeyStore } from './auth.js';
import { Traders } from './traders.js';
import { faultMetrics } from './faults.js';
import { rtdsMetrics } from './routes/rtds.js';
import { userWsMetrics } from './routes/user-ws.js';

export { Exchange } from './exchange.js';
export type { AccountView, ExchangeEvent, ExchangeOptions } from './exchange.js';

export const SimConfig = serviceConfig({
  POLYBOT_SIM_SEED: Type.Integer({ minimum: 0, maximum: 4_294_967_295, default: 42 }),
  POLYBOT_SIM_MARKETS: Type.Integer({ minimum: 1, maximum: 500, default: 12 }),
  POLYBOT_SIM_EVENT_RATE: Type.Number({ minimum: 0, maximum: 10_000, default: 20, description: 'maker events per second, all markets together' }),
  POLYBOT_SIM_START_BALANCE: Type.String({ pattern: '^[0-9]+(\\.[0-9]{1,6})?$', default: '10000', description: 'pUSD each new owner starts with' }),
  POLYBOT_SIM_REQUIRE_AUTH: Type.Boolean({ default: true, description: 'private routes demand L2 (HMAC) auth, as the venue does' }),
  POLYBOT_SIM_AUTH_SKEW_S: Type.Integer({ minimum: 1, maximum: 3600, default: 300, description: 'accepted clock skew of L1/L2 timestamps' }),
  POLYBOT_SIM_HEARTBEAT_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 15_000, description: 'silence after which an account with heartbeats gets its orders cancelled' }),
  POLYBOT_SIM_MINE_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 1000, description: 'MATCHED → MINED delay of a trade' }),
  POLYBOT_SIM_CONFIRM_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 3000, description: 'MINED → CONFIRMED delay of a trade' }),
  POLYBOT_SIM_FAIL_RATE: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'share of trades that end FAILED, their fills reverted' }),
  POLYBOT_SIM_WS_MAX_ASSETS: Type.Integer({ minimum: 1, maximum: 100_000, default: 500, description: 'assets one market-channel connection may hold; beyond it no snapshots, as on the venue' }),
  POLYBOT_SIM_ROUND_SECONDS: Type.Integer({ minimum: 10, maximum: 86_400, default: 900, description: 'length of the crypto up/down rounds (e.g. 60 for demos)' }),
  POLYBOT_SIM_ROUND_ASSETS: Type.String({ pattern: '^(none|[A-Za-z]{2,10}(,[A-Za-z]{2,10})*)$', default: 'BTC,ETH,SOL,XRP', description: "assets with up/down rounds, or 'none'" }),
  POLYBOT_SIM_ROUNDS_AHEAD: Type.Integer({ minimum: 0, maximum: 96, default: 2, description: 'windows listed ahead of the current one' }),
  POLYBOT_SIM_NEG_RISK: Type.Boolean({ default: true, description: 'add the multi-outcome neg-risk event' }),
  POLYBOT_SIM_TRADERS: Type.Integer({ minimum: 0, maximum: 200, default: 20, description: 'simulated trader wallets (0 = none, else at least 2); the first is an arbitrageur' }),
  POLYBOT_SIM_TRADER_RATE: Type.Number({ minimum: 0, maximum: 1000, default: 4, description: 'simulated trader decisions per second, all wallets together' }),
  POLYBOT_SIM_PERSIST: Type.Boolean({ default: true, description: 'keep books, orders, balances and trades in <data dir>/sim/state.json across restarts' }),
  POLYBOT_SIM_SAVE_INTERVAL_S: Type.Number({ minimum: 0, maximum: 3600, default: 5, description: 'seconds between state saves (0 = only on stop)' }),
  POLYBOT_SIM_ADMIN_SECRET: Type.Optional(Type.String({ minLength: 16, description: 'enables /admin (faults, funding) for callers sending it as x-admin-secret' })),
});
export type SimConfig = Static<typeof SimConfig>;

export interface SimService extends Service {
  /** The bound HTTP port (useful with POLYBOT_SIM_PORT=0); 0 before start. */
  readonly port: number;
  readonly exchange: Exchange;
}

/** Maker events run on a short timer; a stalled loop catches up at most this many per tick. */
const TICK_MS = 50;
const MAX_EVENTS_PER_TICK = 500;

/** The Polymarket-compatible simulator: Gamma + CLOB REST + market WebSocket on one port. */
export function createSimService(ctx: ServiceContext<SimConfig>): SimService {
  const cfg = ctx.config;
  const roundAssets = (cfg.POLYBOT_SIM_ROUND_ASSETS === 'none' ? '' : cfg.POLYBOT_SIM_ROUND_ASSETS).split(',').map((a) => a.trim().toUpperCase()).filter(Boolean);
  const exchangeOptions: ExchangeOptions = {
    seed: cfg.POLYBOT_SIM_SEED,
    markets: cfg.POLYBOT_SIM_MARKETS,
    startBalance: toMicros(cfg.POLYBOT_SIM_START_BALANCE),
    mineMs: cfg.POLYBOT_SIM_MINE_MS,
    confirmMs: cfg.POLYBOT_SIM_CONFIRM_MS,
    failRate: cfg.POLYBOT_SIM_FAIL_RATE,
    negRisk: cfg.POLYBOT_SIM_NEG_RISK,
    rounds: roundAssets.length > 0 ? { assets: roundAssets, roundSeconds: cfg.POLYBOT_SIM_ROUND_SECONDS, ahead: cfg.POLYBOT_SIM_ROUNDS_AHEAD } : false,
  };
  const { exchange, restored, extras } = cfg.POLYBOT_SIM_PERSIST
    ? openExchange(exchangeOptions, { dataDir: ctx.paths.root, log: ctx.log })
    : { exchange: new Exchange(exchangeOptions), restored: false, extras: {} as Record<string, unknown> };
  let saver: Autosave | undefined;
  const hub = new MarketHub(exchange, ctx.log.child({ component: 'ws-market' }), { maxAssetsPerConnection: cfg.POLYBOT_SIM_WS_MAX_ASSETS });
  const auth = createApiKeyStore({ dataDir: ctx.paths.root });
  let traders: Traders | undefined;
  if (cfg.POLYBOT_SIM_TRADERS > 0) {
    const opened = Traders.open(
      exchange,
      {
        seed: cfg.POLYBOT_SIM_SEED,
        count: cfg.POLYBOT_SIM_TRADERS,
        rate: cfg.POLYBOT_SIM_TRADER_RATE,
        // Only used when starting fresh: restored wallets keep their balances (no top-up).
        ...(restored ? { bankroll: 0n } : {}),
        onError: (err) => ctx.log.warn({ err }, 'simulated trader step failed'),
      },
      restored ? extras.traders : undefined,
    );
    if (opened.reason) ctx.log.warn({ reason: opened.reason }, `saved simulated traders not restored (${opened.reason}): starting them fresh`);
    else if (opened.restored) ctx.log.info({ fills: opened.traders.stats.fills }, 'simulated traders restored');
    traders = opened.traders;
  }
  const unsubscribe = exchange.on((ev) => hub.publish(ev));
  let app: FastifyInstance | undefined;
  let timer: NodeJS.Timeout | undefined;
  let port = 0;
  let invalidOrders = 0;
  let rateMark = { at: Date.now(), frames: 0 };

  const startLoop = () => {
    const rate = cfg.POLYBOT_SIM_EVENT_RATE;
    if (rate <= 0) return;
    const t0 = Date.now();
    let done = 0;
    timer = setInterval(() => {
      const due = Math.floor(((Date.now() - t0) * rate) / 1000);
      const n = Math.min(due - done, MAX_EVENTS_PER_TICK);
      for (let i = 0; i < n; i++) exchange.step();
      done = due; // after a stall, skip the backlog instead of bursting it
    }, TICK_MS);
  };

  return {
    get port() {
      return port;
    },
    exchange,
    async start() {
      // The development wallet every local client can trade with; the executor signs with it unless
      // POLYBOT_PRIVATE_KEY says otherwise. Only its address and file are logged, never the key.
      const dev = loadWallet({ venue: 'sim', keysDir: ctx.paths.keys });
      ctx.log.info(
        { address: dev.wallet.address, keyFile: dev.path, created: dev.source === 'dev-generated' },
        `development wallet ${dev.wallet.address}: the executor trades with it; other clients can use the key in ${dev.path}`,
      );
      app = await buildServer({
        exchange,
        hub,
        log: ctx.log,
        onInvalidOrder: () => invalidOrders++,
        config: ctx.config,
        auth,
        dataDir: ctx.paths.root,
        traders,
        onAccountCreated: (address) => void exchange.ensureAccount(address),
        onHeartbeatExpired: (address) => {
          const res = exchange.cancelAll(address);
          ctx.log.info({ address, canceled: res.canceled.length }, 'heartbeats stopped: cancelled the account\'s open orders');
        },
      });
      await app.listen({ host: cfg.POLYBOT_HOST, port: cfg.POLYBOT_SIM_PORT });
      const addr = app.server.address();
      port = typeof addr === 'object' && addr ? addr.port : cfg.POLYBOT_SIM_PORT;
      startLoop();
      traders?.start();
      if (cfg.POLYBOT_SIM_PERSIST) {
        saver = autosave(exchange, {
          dataDir: ctx.paths.root,
          log: ctx.log,
          intervalMs: cfg.POLYBOT_SIM_SAVE_INTERVAL_S * 1000,
          // Taken in the same synchronous save as the exchange, so the two always match.
          extras: () => (traders ? { traders: traders.toSnapshot() } : {}),
        });
      }
      ctx.log.info(
        { host: cfg.POLYBOT_HOST, port, markets: exchange.markets.length, seed: cfg.POLYBOT_SIM_SEED, eventRate: cfg.POLYBOT_SIM_EVENT_RATE },
        'simulator listening',
      );
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      unsubscribe();
      hub.closeAll();
      traders?.stop();
      await app?.close();
      // Last save after intake has stopped, so nothing accepted is lost; the traders still listen
      // until then so their fills match the exchange snapshot.
      saver?.stop();
      saver = undefined;
      traders?.close();
      exchange.close();
      app = undefined;
    },
    metrics() {
      const now = Date.now();
      const frames = hub.stats.framesSent;
      const secs = Math.max(0.001, (now - rateMark.at) / 1000);
      const eventsPerS = Math.round(((frames - rateMark.frames) / secs) * 10) / 10;
      rateMark = { at: now, frames };
      const s = exchange.stats;
      const u = userWsMetrics(exchange);
      const r = rtdsMetrics(exchange);
      return {
        ws_events_per_s: eventsPerS,
        ws_events_sent: frames,
        ws_clients: hub.clientCount,
        ws_invalid_frames: hub.stats.invalidFrames,
        orders_accepted: s.ordersAccepted,
        orders_rejected: s.ordersRejected + invalidOrders,
        trades: s.trades,
        maker_events: s.makerEvents,
        ws_user_clients: u.clients,
        ws_user_events_sent: u.eventsSent,
        ws_user_auth_failures: u.authFailures,
        ...faultMetrics(exchange),
        rtds_clients: r.clients,
        trader_orders: traders?.stats.orders ?? 0,
        trader_fills: traders?.stats.fills ?? 0,
        rtds_frames_sent: r.framesSent,
      };
    },
  };
}
