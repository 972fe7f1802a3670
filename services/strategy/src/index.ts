import Type, { type Static } from 'typebox';
import { BusPusher, BusRequester, BusSubscriber } from '@polybot/bus';
import { ConfigError, serviceConfig, type Service, type ServiceContext } from '@polybot/core';
import { topics, type BookStatusMessage, type EventMessage, type PriceMessage } from '@polybot/protocol';
import {
  getStrategy,
  listStrategies,
  parseStrategyConfig,
  StrategyConfigError,
  StrategyRunner,
  type AnyStrategyDefinition,
  type LogLevel,
} from '@polybot/strategies';

export const StrategyHostConfig = serviceConfig({
  POLYBOT_STRATEGY: Type.String({ pattern: '^[a-z][a-z0-9_-]{0,47}$', default: 'threshold', description: 'strategy id from the registry' }),
  POLYBOT_STRATEGY_CONFIG: Type.Optional(Type.String({ maxLength: 65_536, description: "JSON object validated by the strategy's configSchema" })),
  POLYBOT_STRATEGY_TIMER_MS: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000, description: 'period of onTimer' }),
  POLYBOT_STRATEGY_WAIT_POSITIONS: Type.Boolean({
    default: true,
    description: "hold prices back from the strategy until the executor's positions are loaded",
  }),
});
export type StrategyHostConfig = Static<typeof StrategyHostConfig>;

const EVENT_KINDS = ['order', 'fill', 'position', 'signal'] as const;
const POSITIONS_TIMEOUT_MS = 1000;
const POSITIONS_RETRY_MAX_MS = 5000;

/**
 * Picks the strategy and validates its config. Throws a ConfigError naming the variable (and
 * the config field), like any other bad setting, so `main.ts` can exit with it before starting.
 */
export function resolveStrategy(cfg: StrategyHostConfig): { definition: AnyStrategyDefinition; config: unknown } {
  const definition = getStrategy(cfg.POLYBOT_STRATEGY);
  if (!definition) {
    const known = listStrategies().map((s) => s.id).join(', ');
    throw new ConfigError([`POLYBOT_STRATEGY: unknown strategy ${JSON.stringify(cfg.POLYBOT_STRATEGY)} (known: ${known})`]);
  }
  let raw: unknown;
  if (cfg.POLYBOT_STRATEGY_CONFIG !== undefined && cfg.POLYBOT_STRATEGY_CONFIG.trim() !== '') {
    try {
      raw = JSON.parse(cfg.POLYBOT_STRATEGY_CONFIG);
    } catch (err) {
      throw new ConfigError([`POLYBOT_STRATEGY_CONFIG: not valid JSON (${(err as Error).message})`]);
    }
  }
  try {
    return { definition, config: parseStrategyConfig(definition, raw) };
  } catch (err) {
    if (err instanceof StrategyConfigError) {
      throw new ConfigError(err.problems.map((p) => `POLYBOT_STRATEGY_CONFIG.${p}`));
    }
    throw err;
  }
}

/**
 * Hosts one registered strategy: prices and this strategy's executor events in, signals out.
 * All trading logic lives in the strategy; this process only moves messages and keeps state
 * the strategy reads through its context (clock, positions).
 */
export function createStrategyHost(ctx: ServiceContext<StrategyHostConfig>): Service {
  const cfg = ctx.config;
  const { definition, config } = resolveStrategy(cfg);
  const id = definition.id;
  const log = ctx.log.child({ strategy: id });

  const pusher = new BusPusher({ endpoint: ctx.endpoints['signals.push'], src: ctx.name, log, maxQueue: 1000 });
  const runner = new StrategyRunner({
    definition,
    config,
    now: () => Date.now(),
    send: (signal) => pusher.push(topics.signal(), signal),
    log: (level: LogLevel, msg, fields) => log[level](fields ?? {}, msg),
  });

  let positionsLoaded = false;
  let positionsAttempts = 0;
  let pricesHeld = 0;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let wakeRetry: (() => void) | undefined;
  let loading: Promise<void> | undefined;

  const prices = new BusSubscriber({
    endpoints: [ctx.endpoints['prices.pub']],
    topics: ['price.', 'book.status.'],
    name: 'prices.pub',
    log,
    onMessage: (msg) => {
      if (msg.type === 'book_status') {
        const st = msg as BookStatusMessage;
        runner.onBookStatus(st.token_id, st.trusted);
        return;
      }
      if (msg.type !== 'price') return;
      // Trading before we know our holdings could breach position caps after a restart.
      if (cfg.POLYBOT_STRATEGY_WAIT_POSITIONS && !positionsLoaded) {
        pricesHeld++;
        return;
      }
      runner.onPrice(msg as PriceMessage);
    },
  });

  const events = new BusSubscriber({
    endpoints: [ctx.endpoints['events.pub']],
    // Topic prefixes also match longer ids (`threshold2`); the runner checks `strategy` exactly.
    topics: EVENT_KINDS.map((k) => topics.event(k, id)),
    name: 'events.pub',
    log,
    onMessage: (msg) => {
      if (msg.type === 'event') runner.onEvent(msg as EventMessage);
    },
  });

  const requester = new BusRequester({ endpoint: ctx.endpoints['executor.rep'], src: ctx.name, timeoutMs: POSITIONS_TIMEOUT_MS, log });

  /** Asks the executor for our holdings until it answers; runs in the background so start() is not held up. */
  const loadPositions = async () => {
    let delay = 250;
    while (!stopping) {
      positionsAttempts++;
      try {
        const res = await requester.call('positions.list', { strategy: id });
        const n = runner.seedPositions(res.positions);
        positionsLoaded = true;
        log.info({ positions: n, attempts: positionsAttempts }, 'positions loaded from executor');
        return;
      } catch (err) {
        if (stopping) return;
        if (positionsAttempts === 1 || positionsAttempts % 10 === 0) {
          log.warn({ err: (err as Error).message, attempts: positionsAttempts }, 'executor did not answer positions.list; retrying');
        }
      }
      await new Promise<void>((resolve) => {
        wakeRetry = resolve;
        retryTimer = setTimeout(resolve, delay);
      });
      delay = Math.min(delay * 2, POSITIONS_RETRY_MAX_MS);
    }
  };

  return {
    async start() {
      await pusher.start();
      events.start();
      prices.start();
      loading = loadPositions();
      timer = setInterval(() => runner.onTimer(), cfg.POLYBOT_STRATEGY_TIMER_MS);
      timer.unref();
      log.info({ config, prices: ctx.endpoints['prices.pub'], events: ctx.endpoints['events.pub'] }, `strategy ${id} started`);
    },

    async stop() {
      if (stopping) return;
      stopping = true;
      // Stop intake first so nothing new is emitted, then flush signals already queued.
      if (timer) clearInterval(timer);
      if (retryTimer) clearTimeout(retryTimer);
      wakeRetry?.();
      await prices.close();
      await events.close();
      await requester.close().catch(() => undefined);
      await loading;
      await pusher.close(2000);
    },

    metrics: () => ({
      ...runner.metrics(),
      prices_held_back: pricesHeld,
      positions_loaded: positionsLoaded ? 1 : 0,
      signals_queued: pusher.stats.queued,
      price_gaps: prices.stats.gaps,
      invalid_frames: prices.stats.invalid + events.stats.invalid,
    }),

    health() {
      if (!positionsLoaded) {
        return { state: 'degraded', message: `waiting for positions from the executor (${positionsAttempts} attempts)` };
      }
      const queued = pusher.stats.queued;
      if (queued > 0) return { state: 'degraded', message: `${queued} signals waiting for the executor` };
      return { state: 'running' };
    },
  };
}
