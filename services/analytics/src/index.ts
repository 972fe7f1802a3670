import { dirname } from 'node:path';
import { DuckDBInstance, DuckDBTimestampMillisecondsValue, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import { BusReplier, BusSubscriber, RpcFailure } from '@polybot/bus';
import { ensureDir, serviceConfig, type Service, type ServiceContext } from '@polybot/core';
import type { BusMessage, PriceMessage, RpcParams, RpcResult } from '@polybot/protocol';
import Type, { type Static } from 'typebox';

export const AnalyticsConfig = serviceConfig({
  POLYBOT_ANALYTICS_FLUSH_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
});
export type AnalyticsConfig = Static<typeof AnalyticsConfig>;

/** The DuckDB schema this service owns (docs/interfaces.md). */
export const PRICE_HISTORY_DDL = `CREATE TABLE IF NOT EXISTS price_history (
  ts TIMESTAMP_MS, token_id VARCHAR, market VARCHAR, bid DOUBLE, ask DOUBLE, mid DOUBLE,
  bid_size DOUBLE, ask_size DOUBLE)`;

export interface AnalyticsService extends Service {
  /** Commits buffered rows now (also done on a timer, before every query and on stop). */
  flush(): void;
}

/**
 * Single writer of `analytics.duckdb`: appends every top of book from `prices.pub` through the
 * DuckDB Appender and answers history queries on `analytics.rep`.
 */
export function createAnalyticsService(ctx: ServiceContext<AnalyticsConfig>): AnalyticsService {
  const log = ctx.log.child({ component: 'analytics' });
  let instance: DuckDBInstance | undefined;
  // Writes and reads use separate connections: the appender's connection is never shared with
  // an asynchronous query running on DuckDB's worker threads.
  let writeConn: DuckDBConnection | undefined;
  let readConn: DuckDBConnection | undefined;
  let appender: DuckDBAppender | undefined;
  let sub: BusSubscriber | undefined;
  let replier: BusReplier | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  let appended = 0;
  let pending = 0;
  let flushes = 0;
  let queries = 0;
  let appendErrors = 0;
  let rateMark = { at: Date.now(), rows: 0 };

  async function openAppender(): Promise<void> {
    appender = await writeConn!.createAppender('price_history');
  }

  /** A failed appender is unusable; rows not yet committed are lost, so count and recreate it. */
  function appenderFailed(err: unknown, what: string): void {
    appendErrors++;
    if (appendErrors <= 5) log.error({ err, lost: pending }, `appender ${what} failed; recreating it`);
    pending = 0;
    try {
      appender?.clear();
    } catch {
      // already broken
    }
    appender = undefined;
    if (!stopped) void openAppender().catch((e: unknown) => log.error({ err: e }, 'cannot recreate appender'));
  }

  function append(msg: PriceMessage): void {
    const a = appender;
    if (!a) return;
    // Venue time when known: a replayed recording keeps its original clock.
    const ts = msg.venue_ts > 0 ? msg.venue_ts : msg.ts;
    try {
      a.appendTimestampMilliseconds(new DuckDBTimestampMillisecondsValue(BigInt(Math.trunc(ts))));
      a.appendVarchar(msg.token_id);
      a.appendVarchar(msg.market);
      for (const v of [msg.bid, msg.ask, msg.mid]) {
        if (v === null) a.appendNull();
        else a.appendDouble(v);
      }
      a.appendDouble(msg.bid_size);
      a.appendDouble(msg.ask_size);
      a.endRow();
      appended++;
      pending++;
    } catch (err) {
      appenderFailed(err, 'append');
    }
  }

  function flush(): void {
    if (!appender || pending === 0) return;
    try {
      appender.flushSync();
      flushes++;
      pending = 0;
    } catch (err) {
      appenderFailed(err, 'flush');
    }
  }

  async function pricesRecent(params: RpcParams<'prices.recent'>): Promise<RpcResult<'prices.recent'>> {
    if (!readConn) throw new RpcFailure('unavailable', 'analytics is not open', true);
    queries++;
    flush();
    const limit = Math.trunc(params.limit ?? 100);
    const values: (string | bigint)[] = [params.token_id];
    let where = 'token_id = $1';
    if (params.since_ts !== undefined) {
      values.push(BigInt(Math.trunc(params.since_ts)));
      where += ' AND ts >= epoch_ms($2::BIGINT)';
    }
    // limit is a validated integer, so it is inlined (DuckDB wants an integer literal there).
    const reader = await readConn.runAndReadAll(
      `SELECT epoch_ms(ts) AS ts, bid, ask, mid FROM price_history WHERE ${where} ORDER BY ts DESC, rowid DESC LIMIT ${limit}`,
      values,
    );
    const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
    return {
      token_id: params.token_id,
      rows: reader.getRows().map((r) => ({ ts: Number(r[0]), bid: num(r[1]), ask: num(r[2]), mid: num(r[3]) })),
    };
  }

  return {
    flush,

    async start() {
      ensureDir(dirname(ctx.paths.analyticsDb));
      instance = await DuckDBInstance.create(ctx.paths.analyticsDb);
      writeConn = await instance.connect();
      await writeConn.run(PRICE_HISTORY_DDL);
      await openAppender();
      readConn = await instance.connect();

      replier = new BusReplier({
        endpoint: ctx.endpoints['analytics.rep'],
        src: ctx.name,
        log,
        handlers: { 'prices.recent': (p) => pricesRecent(p as RpcParams<'prices.recent'>) },
      });
      await replier.start();

      sub = new BusSubscriber({
        endpoints: [ctx.endpoints['prices.pub']],
        topics: ['price.'],
        name: 'analytics prices',
        log,
        receiveHighWaterMark: 100_000,
        onMessage: (msg: BusMessage) => {
          if (msg.type === 'price') append(msg as PriceMessage);
        },
      });
      sub.start();

      timer = setInterval(flush, ctx.config.POLYBOT_ANALYTICS_FLUSH_MS);
      timer.unref();
      log.info({ db: ctx.paths.analyticsDb, rep: ctx.endpoints['analytics.rep'] }, 'analytics open');
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      // Intake first, then answer in-flight queries, then commit what is buffered.
      await sub?.close();
      if (timer) clearInterval(timer);
      await replier?.close();
      try {
        flush();
        appender?.closeSync();
      } catch (err) {
        log.error({ err, lost: pending }, 'closing the appender failed');
      }
      appender = undefined;
      readConn?.closeSync();
      writeConn?.closeSync();
      instance?.closeSync();
      readConn = writeConn = instance = undefined;
      log.info({ appended, flushes }, 'analytics closed');
    },

    metrics() {
      const now = Date.now();
      const dt = (now - rateMark.at) / 1000;
      const rate = dt > 0 ? (appended - rateMark.rows) / dt : 0;
      rateMark = { at: now, rows: appended };
      return {
        rows_appended: appended,
        rows_per_s: Math.round(rate * 10) / 10,
        rows_pending: pending,
        flushes,
        queries,
        append_errors: appendErrors,
        prices_received: sub?.stats.received ?? 0,
        prices_invalid: sub?.stats.invalid ?? 0,
        prices_gaps: sub?.stats.gaps ?? 0,
      };
    },
  };
}
