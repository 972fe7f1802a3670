import { BusPublisher, resolveEndpoints, type Endpoints } from '@polybot/bus';
import { topics, type ServiceState, type StatusMessage, type Unstamped } from '@polybot/protocol';
import type { BaseConfig } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { dataPaths, type DataPaths } from './paths.js';

/** What a service factory returns. `start` may throw to refuse to start; `stop` must be idempotent. */
export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Figures put on the periodic status message (and the API's /metrics). */
  metrics?(): Record<string, number | string>;
  /** A running service may report itself degraded with a reason. */
  health?(): { state: 'running' | 'degraded'; message?: string };
}

export interface ServiceContext<C extends BaseConfig = BaseConfig> {
  name: string;
  config: C;
  log: Logger;
  endpoints: Endpoints;
  paths: DataPaths;
  /** Publisher connected to `events.in`, shared by the service for its own events. */
  events: BusPublisher;
}

export interface StartOptions<C extends BaseConfig> {
  name: string;
  config: C;
  create: (ctx: ServiceContext<C>) => Service | Promise<Service>;
  log?: Logger;
  env?: Record<string, string | undefined>;
}

/**
 * Runs one service: builds its context, starts it, and publishes its lifecycle state on the
 * events bus every few seconds. Separate from process wiring so tests can run services in-process.
 */
export class ServiceRunner<C extends BaseConfig = BaseConfig> {
  readonly log: Logger;
  readonly events: BusPublisher;
  readonly endpoints: Endpoints;
  private state: ServiceState = 'starting';
  private since = Date.now();
  private message?: string;
  private service?: Service;
  private timer?: NodeJS.Timeout;
  private stopping?: Promise<void>;

  constructor(private readonly opts: StartOptions<C>) {
    this.log = opts.log ?? createLogger(opts.name, { level: opts.config.POLYBOT_LOG_LEVEL });
    this.endpoints = resolveEndpoints(opts.config.POLYBOT_DATA_DIR, opts.env ?? process.env);
    this.events = new BusPublisher({ endpoint: this.endpoints['events.in'], mode: 'connect', src: opts.name, log: this.log });
  }

  get currentState(): ServiceState {
    return this.state;
  }

  private setState(state: ServiceState, message?: string): void {
    if (state !== this.state) {
      this.state = state;
      this.since = Date.now();
      this.log.info({ state, message }, `state ${state}`);
    }
    this.message = message;
    this.publishStatus();
  }

  private publishStatus(): void {
    let metrics: Record<string, number | string> = {};
    try {
      metrics = this.service?.metrics?.() ?? {};
    } catch (err) {
      this.log.warn({ err }, 'metrics failed');
    }
    const msg: Unstamped<StatusMessage> = {
      type: 'status',
      service: this.opts.name,
      state: this.state,
      since: this.since,
      pid: process.pid,
      interval_ms: this.opts.config.POLYBOT_STATUS_INTERVAL_MS,
      metrics,
      ...(this.message ? { message: this.message.slice(0, 1000) } : {}),
    };
    this.events.publish(topics.status(this.opts.name), msg);
  }

  private tick(): void {
    if (this.state === 'running' || this.state === 'degraded') {
      try {
        const h = this.service?.health?.();
        if (h) {
          this.setState(h.state, h.message);
          return;
        }
      } catch (err) {
        this.setState('degraded', `health check failed: ${(err as Error).message}`);
        return;
      }
    }
    this.publishStatus();
  }

  async start(): Promise<void> {
    await this.events.start();
    this.publishStatus();
    this.timer = setInterval(() => this.tick(), this.opts.config.POLYBOT_STATUS_INTERVAL_MS);
    this.timer.unref();
    const ctx: ServiceContext<C> = {
      name: this.opts.name,
      config: this.opts.config,
      log: this.log,
      endpoints: this.endpoints,
      paths: dataPaths(this.opts.config.POLYBOT_DATA_DIR),
      events: this.events,
    };
    try {
      this.service = await this.opts.create(ctx);
      await this.service.start();
    } catch (err) {
      this.setState('faulted', (err as Error).message);
      throw err;
    }
    this.setState('running');
  }

  /** Graceful stop: the service stops intake and finishes or persists in-flight work first. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.setState('stopping');
      try {
        await this.service?.stop();
        this.setState('stopped');
      } catch (err) {
        this.setState('faulted', `stop failed: ${(err as Error).message}`);
        throw err;
      } finally {
        if (this.timer) clearInterval(this.timer);
        await this.events.close(500);
      }
    })();
    return this.stopping;
  }

  /** Marks the service faulted and publishes that before the process exits. */
  async fault(message: string): Promise<void> {
    this.setState('faulted', message);
    await this.events.close(300).catch(() => undefined);
  }
}

export interface RunOptions<C extends BaseConfig> extends StartOptions<C> {
  /** Longest graceful stop before the process exits anyway (pm2 kill_timeout is larger). */
  stopTimeoutMs?: number;
}

/**
 * Process entry point for a service: start, tell pm2 it is ready, stop gracefully on SIGINT or
 * SIGTERM, and exit non-zero (so pm2 restarts it) on a fatal error.
 */
export async function runService<C extends BaseConfig>(opts: RunOptions<C>): Promise<ServiceRunner<C>> {
  const runner = new ServiceRunner(opts);
  const log = runner.log;
  let exiting = false;

  const exit = (code: number) => {
    log.flush?.();
    // exitCode covers the case where the loop empties before the timer fires (the timer is unref'd
    // so a clean stop is not held up); the timer forces exit past handles a library left open.
    process.exitCode = code;
    setTimeout(() => process.exit(code), 50).unref();
  };

  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    log.info({ signal }, 'stopping');
    const guard = setTimeout(() => {
      log.error({ timeoutMs: opts.stopTimeoutMs ?? 10_000 }, 'graceful stop timed out; exiting');
      exit(1);
    }, opts.stopTimeoutMs ?? 10_000);
    guard.unref();
    runner.stop().then(
      () => exit(0),
      (err) => {
        log.error({ err }, 'stop failed');
        exit(1);
      },
    );
  };

  const fatal = (kind: string) => (err: unknown) => {
    log.fatal({ err }, kind);
    if (exiting) return;
    exiting = true;
    void runner.fault(`${kind}: ${(err as Error)?.message ?? String(err)}`).finally(() => exit(1));
  };

  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('uncaughtException', fatal('uncaught exception'));
  process.on('unhandledRejection', fatal('unhandled rejection'));

  try {
    await runner.start();
  } catch (err) {
    log.fatal({ err }, 'failed to start');
    exit(1);
    return runner;
  }
  log.info('running');
  process.send?.('ready');
  return runner;
}
