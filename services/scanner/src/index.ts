import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { BusPublisher, BusReplier, RpcFailure, type PublishTopic } from '@polybot/bus';
import { venueUrls, type Service, type ServiceContext } from '@polybot/core';
import { GammaClient, type MarketInfo, type MarketWsStatus } from '@polybot/polymarket';
import { Codec, type BusMessage, type RpcResult, type Unstamped } from '@polybot/protocol';
import { csv, DiscoveryAdapter } from './adapters/gamma.js';
import { MarketChannelAdapter } from './adapters/market-ws.js';
import { createRtdsAdapter, type RtdsAdapter } from './adapters/rtds.js';
import { BookKeeper, type BookCheckpoint, type TokenInfo } from './books.js';
import type { ScannerConfig } from './config.js';
import { TypeMetrics } from './metrics.js';
import type { Adapter, RawFrame } from './pipeline/types.js';
import { processGammaFrame } from './processors/gamma.js';
import { processMarketFrame, processMarketValue, processRestBook, type FrameResult } from './processors/market.js';
import { newerOnly, processRtdsFrame, refPriceMessage, refPriceTopic } from './processors/rtds.js';
import { applyRetention, RecordingWriter } from './recording/index.js';
import { MarketRegistry } from './registry.js';
import { ReplayRun, type ReplayStatus } from './replay.js';
import { createGammaRoundLookup, createRoundWatchers, type RoundWatchers } from './rounds.js';

export { L2Book } from './book.js';
export { BookKeeper } from './books.js';
export { ScannerConfig } from './config.js';
export { MarketRegistry, SCANNER_MIGRATIONS } from './registry.js';
export { processMarketFrame, processMarketValue, processRestBook, PROCESSORS, type NormalizedEvent } from './processors/market.js';
export type { RawFrame, RecordingRecord } from './pipeline/types.js';
export { RecordingReader, RecordingWriter, syntheticFrames, syntheticGammaFrame, syntheticMarkets, writeRecording } from './recording/index.js';

/** The scanner service plus a direct way in for benchmarks: frames fed as if an adapter sent them. */
export interface ScannerService extends Service {
  /** Feeds frames through the pipeline, yielding to the event loop every `chunk` frames so publishing keeps up. */
  ingestFrames(frames: Iterable<RawFrame>, chunk?: number): Promise<void>;
  /** Resolves when every published message has been handed to ZeroMQ. */
  drained(timeoutMs?: number): Promise<boolean>;
}

const REST_TIMEOUT_MS = 5000;
/** A token is re-snapshotted over REST at most this often. */
const RESNAPSHOT_MIN_INTERVAL_MS = 2000;
/** REST snapshots in flight at once: a reconnect of 200 assets must not burst the venue's limits. */
const RESNAPSHOT_CONCURRENCY = 8;

/**
 * Market data service. Adapters (Gamma discovery, the sharded market channel, REST re-snapshots)
 * hand raw frames to one pipeline; processors normalize them; the book keeper applies them and
 * publishes top of book, depth, trades and trust changes on `prices.pub`; late joiners ask
 * `scanner.rep` for `books.snapshot`.
 */
export function createScannerService(ctx: ServiceContext<ScannerConfig>): ScannerService {
  const cfg = ctx.config;
  const urls = venueUrls(cfg);
  const log = ctx.log.child({ component: 'scanner' });
  const gamma = new GammaClient(urls.gamma, { timeoutMs: 15_000 });
  const staleMs = cfg.POLYBOT_SCANNER_STALE_MS;

  let registry: MarketRegistry | undefined;
  let publisher: BusPublisher | undefined;
  let replier: BusReplier | undefined;
  let market: MarketChannelAdapter | undefined;
  let discovery: DiscoveryAdapter | undefined;
  let rtds: RtdsAdapter | undefined;
  /** The live sources by name (market, gamma, rtds): started, stopped and reported together. */
  const adapters = new Map<string, Adapter>();
  let rounds: RoundWatchers | undefined;
  /** Last reference-price time per symbol: a reconnect's history dump is not news. */
  const refSeen = new Map<string, number>();
  const roundAssets = cfg.POLYBOT_SCANNER_ROUND_ASSETS === 'none' ? [] : csv(cfg.POLYBOT_SCANNER_ROUND_ASSETS).map((a) => a.toUpperCase());
  let watchdog: NodeJS.Timeout | undefined;
  let flusher: NodeJS.Timeout | undefined;
  let retentionTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  /** `live` follows the venue; `replay` feeds a recording instead (live adapters stopped meanwhile). */
  let mode: 'live' | 'replay' | 'idle' = 'idle';
  let replay: ReplayRun | undefined;
  let lastReplay: ReplayStatus = { state: 'idle', records_done: 0, records_total: 0, events_per_s: 0 };
  let replayClock = 0;
  let recorder: RecordingWriter | undefined;
  let recordingName: string | undefined;
  let recordingStartedAt = 0;
  const codec = new Codec();

  /** Markets from discovery and markets pinned by others (rounds); books follow the union. */
  let discovered: MarketInfo[] = [];
  const pinned = new Map<string, MarketInfo>();
  const metrics = new TypeMetrics();
  const counters = { frames: 0, invalid_frames: 0, unknown_events: 0, resnapshot_errors: 0, gamma_frames: 0, ref_prices: 0, invalid_ref_prices: 0 };
  const unknownLogged = new Set<string>();
  const invalidLogged = new Set<string>();

  const publish = <M extends BusMessage>(topic: string, msg: Unstamped<M>): boolean => publisher?.publish(topic, msg) ?? false;

  // -------------------------------------------------------------- REST re-snapshots

  const lastResnapAt = new Map<string, number>();
  const restQueue: string[] = [];
  const restQueued = new Set<string>();
  let restInFlight = 0;
  const pending = new Set<Promise<unknown>>();

  /** Requests made inside the per-token interval wait for it rather than being dropped. */
  const deferredSnap = new Map<string, NodeJS.Timeout>();
  /** Consecutive failed snapshots per token: retries back off (2 s, 4 s … 30 s) while REST is failing. */
  const snapFailures = new Map<string, number>();

  function requestSnapshot(tokenId: string): void {
    // A replay has its REST answers in the recording; asking the venue now would change history.
    if (mode !== 'live' || stopped || restQueued.has(tokenId) || deferredSnap.has(tokenId)) return;
    const gap = Math.min(30_000, RESNAPSHOT_MIN_INTERVAL_MS * 2 ** (snapFailures.get(tokenId) ?? 0));
    const wait = (lastResnapAt.get(tokenId) ?? -Infinity) + gap - Date.now();
    if (wait > 0) {
      deferredSnap.set(
        tokenId,
        setTimeout(() => {
          deferredSnap.delete(tokenId);
          const b = books.book(tokenId);
          if (b && (!b.trusted || !b.hasSnapshot)) requestSnapshot(tokenId);
        }, wait),
      );
      return;
    }
    restQueued.add(tokenId);
    restQueue.push(tokenId);
    pumpRest();
  }

  function pumpRest(): void {
    while (!stopped && restInFlight < RESNAPSHOT_CONCURRENCY && restQueue.length > 0) {
      const tokenId = restQueue.shift()!;
      restInFlight++;
      lastResnapAt.set(tokenId, Date.now());
      const url = `${urls.clob}/book?token_id=${encodeURIComponent(tokenId)}`;
      const p = fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(REST_TIMEOUT_MS) })
        .then(async (res) => {
          const text = await res.text();
          if (!res.ok) throw new Error(`GET ${url} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
          snapFailures.delete(tokenId);
          if (!stopped && books.tokens.has(tokenId)) ingest({ source: 'rest_book', conn: 0, recvTs: Date.now(), data: text });
        })
        .catch((err: unknown) => {
          counters.resnapshot_errors++;
          snapFailures.set(tokenId, Math.min(10, (snapFailures.get(tokenId) ?? 0) + 1));
          if (counters.resnapshot_errors <= 20 || counters.resnapshot_errors % 100 === 0) {
            log.warn({ token_id: tokenId, err: (err as Error).message, errors: counters.resnapshot_errors }, 're-snapshot failed; will retry');
          }
        })
        .finally(() => {
          restInFlight--;
          restQueued.delete(tokenId);
          pending.delete(p);
          // Still unusable (the answer failed or was itself bad): try again after the interval.
          const b = books.book(tokenId);
          if (b && (!b.trusted || !b.hasSnapshot)) requestSnapshot(tokenId);
          pumpRest();
        });
      pending.add(p);
    }
  }

  // -------------------------------------------------------------- books and pipeline

  const books = new BookKeeper({
    publish,
    publishWritten: (topic, write, handle) => publisher?.publishWritten(topic, write, handle as PublishTopic | undefined) ?? false,
    topicHandle: (topic) => publisher?.topic(topic),
    requestSnapshot: (id) => requestSnapshot(id),
    bookIntervalMs: cfg.POLYBOT_SCANNER_BOOK_INTERVAL_MS,
    depth: cfg.POLYBOT_SCANNER_BOOK_DEPTH,
    onResolved: (ev) => rounds?.notifyResolved(ev.market, ev.winningToken),
    // A listing announced on the market channel: discover now rather than at the next interval.
    onNewMarket: () => {
      if (mode === 'live') void discovery?.runOnce();
    },
    onTickSize: (conditionId, tick) => {
      try {
        registry?.setTickSize(conditionId, tick);
      } catch (err) {
        log.warn({ err }, 'could not store tick size change');
      }
    },
    log,
  });

  /** Recomputes the followed token set from discovery + pinned markets. */
  function applyMarkets(): void {
    const all = new Map<string, MarketInfo>();
    for (const m of discovered) all.set(m.conditionId, m);
    for (const [id, m] of pinned) all.set(id, m);
    const tokens = new Map<string, TokenInfo>();
    for (const m of all.values()) {
      for (const t of m.tokens) {
        // A book keeps the tick size learnt from the stream over Gamma's possibly older value.
        const known = books.tokens.get(t.tokenId);
        tokens.set(t.tokenId, { conditionId: m.conditionId, outcome: t.outcome, tickSize: known?.tickSize ?? m.tickSize });
      }
    }
    const { added, removed } = books.setTokens(tokens);
    if (mode === 'live') market?.setAssets(tokens.keys());
    if (added.length || removed.length) log.info({ markets: all.size, added: added.length, removed: removed.length }, 'followed markets changed');
  }

  function countResult(res: FrameResult, at: number): void {
    for (const bad of res.invalid) {
      metrics.invalid(bad.type);
      // An update we could not read is an update those books missed.
      for (const a of bad.assets ?? []) books.suspect(a, 'parse_error', at);
      if (!invalidLogged.has(bad.type)) {
        invalidLogged.add(bad.type);
        log.warn({ event_type: bad.type, reason: bad.reason }, 'invalid market event skipped (logged once per type; counted)');
      }
    }
    for (const type of res.unknown) {
      counters.unknown_events++;
      if (!unknownLogged.has(type) && unknownLogged.size < 100) {
        unknownLogged.add(type);
        log.info({ event_type: type }, 'unknown market event type skipped (logged once; counted)');
      }
    }
  }

  function applyEvents(res: FrameResult, at: number): void {
    countResult(res, at);
    // Publish time, as the publisher stamps it: a replay's lag is the one it recorded.
    const now = mode === 'replay' ? replayClock : Date.now();
    for (const ev of res.events) {
      books.apply(ev);
      metrics.event(ev.type, now - ev.venueTs);
    }
  }

  /** One frame's result at a time, reused: nothing keeps it past `applyEvents`. */
  const frameResult: FrameResult = { events: [], invalid: [], unknown: [] };
  function marketResult(frame: RawFrame): FrameResult {
    const out = frameResult;
    // Fresh arrays are cheaper than emptying these (setting a length is a runtime call).
    out.events = [];
    if (out.invalid.length > 0) out.invalid = [];
    if (out.unknown.length > 0) out.unknown = [];
    return frame.parsed !== undefined ? processMarketValue(frame.parsed, frame.recvTs, out) : processMarketFrame(frame.data, frame.recvTs, out);
  }

  /** Every raw frame, live or replayed, enters here. */
  function ingest(frame: RawFrame): void {
    counters.frames++;
    recorder?.append({ kind: 'raw', source: frame.source, conn: frame.conn, recvTs: frame.recvTs, data: frame.data });
    try {
      switch (frame.source) {
        case 'market':
          applyEvents(marketResult(frame), frame.recvTs);
          books.flush(frame.recvTs);
          return;
        case 'rest_book':
          applyEvents(processRestBook(frame.data, frame.recvTs), frame.recvTs);
          return;
        case 'gamma': {
          const found = processGammaFrame(frame.data);
          if (typeof found === 'string') {
            counters.invalid_frames++;
            log.warn({ reason: found }, 'invalid market list skipped');
            return;
          }
          counters.gamma_frames++;
          discovered = found;
          registry?.upsert(found);
          applyMarkets();
          return;
        }
        case 'rtds': {
          const parsed = processRtdsFrame(frame);
          counters.invalid_ref_prices += parsed.invalid;
          for (const ev of newerOnly(parsed.events, refSeen)) {
            if (publish(refPriceTopic(ev), refPriceMessage(ev))) counters.ref_prices++;
            metrics.event('ref_price', Date.now() - ev.venueTs);
          }
          return;
        }
        case 'pins': {
          const list = processGammaFrame(frame.data);
          if (typeof list === 'string') {
            counters.invalid_frames++;
            return;
          }
          pinned.clear();
          for (const m of list) pinned.set(m.conditionId, m);
          // Listed too, so /api/markets names every market whose prices stream (a round's market is
          // often pinned before discovery next runs).
          registry?.upsert(list);
          applyMarkets();
          return;
        }
        case 'market_status': {
          const st = JSON.parse(frame.data) as { state?: unknown; assets?: unknown };
          if (st.state === 'closed' && Array.isArray(st.assets)) books.disconnected(st.assets.filter((a): a is string => typeof a === 'string'), frame.recvTs);
          return;
        }
        case 'checkpoint': {
          const cps = JSON.parse(frame.data) as BookCheckpoint[];
          if (Array.isArray(cps)) books.restore(cps, frame.recvTs);
          return;
        }
        default:
          // `round` frames are Gamma answers kept for recordings; the watchers act on them directly.
          return;
      }
    } catch (err) {
      // A processor bug must not take the feed down; the frame is counted and skipped.
      counters.invalid_frames++;
      if (counters.invalid_frames <= 5) log.error({ err, source: frame.source }, 'frame processing failed');
    }
  }

  function onShardStatus(shard: number, s: MarketWsStatus, assets: readonly string[]): void {
    if (s.state === 'closed') {
      // Through the pipeline, so a recording holds the gap and a replay voids the same books.
      ingest({ source: 'market_status', conn: shard, recvTs: Date.now(), data: JSON.stringify({ state: 'closed', assets }) });
      log.warn({ shard, reason: s.reason, assets: assets.length }, 'market ws shard disconnected');
    }
  }

  /** Per-asset watchdog: a quiet asset on a live connection is checked against REST. */
  function checkQuietAssets(): void {
    const now = Date.now();
    for (const id of books.quietTokens(now - cfg.POLYBOT_SCANNER_ASSET_STALE_MS)) {
      books.touch(id, now);
      requestSnapshot(id);
    }
  }

  /** The pinned set changes through the pipeline, so a recording follows the same tokens. */
  function ingestPins(list: MarketInfo[]): void {
    ingest({ source: 'pins', conn: 0, recvTs: Date.now(), data: JSON.stringify(list) });
  }

  /** Each registered adapter's counters, typed by adapter name (`reconnects:rtds`). */
  function adapterMetrics(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, a] of adapters) {
      for (const [k, v] of Object.entries(a.stats())) if (typeof v === 'number' && Number.isFinite(v)) out[`adapter_${k}:${name}`] = v;
    }
    return out;
  }

  /** Per-asset round figures, typed by asset for `/metrics`. */
  function roundMetrics(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [asset, st] of Object.entries(rounds?.stats() ?? {})) {
      out[`rounds_started_total:${asset}`] = st.rounds_started;
      out[`rounds_resolved_total:${asset}`] = st.rounds_resolved;
      out[`round_start_delay_ms:${asset}`] = st.last_start_delay_ms;
      out[`round_lookup_errors_total:${asset}`] = st.lookup_errors;
    }
    return out;
  }

  // -------------------------------------------------------------- live adapters

  async function startLive(): Promise<void> {
    mode = 'live';
    market ??= new MarketChannelAdapter({
      url: urls.ws,
      sink: ingest,
      shardSize: cfg.POLYBOT_SCANNER_SHARD_SIZE,
      staleMs,
      pingIntervalMs: Math.min(cfg.POLYBOT_SCANNER_PING_MS, Math.max(50, Math.floor(staleMs / 3))),
      onShardStatus,
      initialBackoffMs: cfg.POLYBOT_SCANNER_RECONNECT_MS,
      log: log.child({ component: 'market-ws' }),
    });
    discovery ??= new DiscoveryAdapter({
      gamma,
      selection: {
        watch: csv(cfg.POLYBOT_SCANNER_WATCH),
        tags: csv(cfg.POLYBOT_SCANNER_TAGS),
        series: csv(cfg.POLYBOT_SCANNER_SERIES),
        minVolume: cfg.POLYBOT_SCANNER_MIN_VOLUME,
        minLiquidity: cfg.POLYBOT_SCANNER_MIN_LIQUIDITY,
        endWithinHours: cfg.POLYBOT_SCANNER_END_WITHIN_HOURS,
        maxMarkets: cfg.POLYBOT_SCANNER_MAX_MARKETS,
      },
      intervalMs: cfg.POLYBOT_SCANNER_DISCOVERY_INTERVAL_MS,
      sink: ingest,
      log,
    });
    adapters.set(market.name, market);
    adapters.set(discovery.name, discovery);
    market.start();
    await discovery.start();
    if (stopped || mode !== 'live') return;
    if (cfg.POLYBOT_SCANNER_RTDS) {
      rtds = createRtdsAdapter({
        url: urls.rtds,
        sink: ingest,
        symbols: csv(cfg.POLYBOT_SCANNER_RTDS_SYMBOLS),
        log: log.child({ component: 'rtds' }),
        staleMs: Math.max(staleMs, 20_000),
      });
      adapters.set(rtds.name, rtds);
      rtds.start();
    }
    if (roundAssets.length > 0) {
      rounds = createRoundWatchers(
        {
          assets: roundAssets,
          roundSeconds: cfg.POLYBOT_SCANNER_ROUND_SECONDS,
          prefetchMs: cfg.POLYBOT_SCANNER_ROUND_PREFETCH_MS,
          endingLeadMs: cfg.POLYBOT_SCANNER_ROUND_ENDING_LEAD_MS,
          resolvePollMs: 5000,
        },
        {
          gamma: createGammaRoundLookup(urls.gamma, { timeoutMs: 10_000 }),
          publish: (topic, msg) => publish(topic, msg),
          track: (m) => {
            if (!pinned.has(m.conditionId)) ingestPins([...pinned.values(), m]);
          },
          untrack: (m) => {
            if (pinned.has(m.conditionId)) ingestPins([...pinned.values()].filter((x) => x.conditionId !== m.conditionId));
          },
          onFrame: ingest,
          log: log.child({ component: 'rounds' }),
        },
      );
      rounds.start();
    }
    watchdog = setInterval(checkQuietAssets, Math.max(1000, Math.floor(cfg.POLYBOT_SCANNER_ASSET_STALE_MS / 4)));
    // Depth held back by the book interval goes out even when no further frame arrives.
    if (cfg.POLYBOT_SCANNER_BOOK_INTERVAL_MS > 0) flusher = setInterval(() => books.flush(Date.now()), cfg.POLYBOT_SCANNER_BOOK_INTERVAL_MS);
  }

  async function stopLive(): Promise<void> {
    for (const t of deferredSnap.values()) clearTimeout(t);
    deferredSnap.clear();
    if (watchdog) clearInterval(watchdog);
    if (flusher) clearInterval(flusher);
    watchdog = flusher = undefined;
    await rounds?.stop();
    rounds = undefined;
    // Every source registered for the live feed stops; a replay takes their place.
    await Promise.all([...adapters.values()].map((a) => a.stop()));
    adapters.clear();
    rtds = undefined;
    restQueue.length = 0;
    restQueued.clear();
    await Promise.allSettled([...pending]);
  }

  /** Forgets every book and market: what follows (a replay, or the live feed again) starts clean. */
  function clearState(): void {
    discovered = [];
    pinned.clear();
    books.setTokens(new Map());
    books.reset();
    refSeen.clear();
  }

  // -------------------------------------------------------------- record and replay

  function recordStatus(): RpcResult<'record.status'> {
    const st = recorder?.stats();
    return {
      recording: recorder !== undefined,
      ...(recordingName ? { name: recordingName, dir: join(ctx.paths.recordings, recordingName), started_at: recordingStartedAt } : {}),
      records: st?.records ?? 0,
      raw_frames: st?.rawFrames ?? 0,
      events: st?.events ?? 0,
      bytes: st?.bytes ?? 0,
      segments: st?.segments ?? 0,
    };
  }

  async function startRecording(name?: string): Promise<RpcResult<'record.start'>> {
    if (recorder) throw new RpcFailure('already_recording', `already recording to ${recordingName}; stop it first (polybot record stop)`);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
    const n = name ?? `rec-${stamp}`;
    const w = await RecordingWriter.open(join(ctx.paths.recordings, n), {
      maxSegmentBytes: cfg.POLYBOT_RECORDING_SEGMENT_MB * 1024 * 1024,
      maxSegmentMs: cfg.POLYBOT_RECORDING_SEGMENT_MINUTES * 60_000,
    });
    recorder = w;
    // Published messages are recorded too; without a recording the publisher keeps no copy of them.
    if (publisher) publisher.tap = (topic, payload, ts) => recorder?.append({ kind: 'event', recvTs: ts, topic, payload });
    recordingName = n;
    recordingStartedAt = Date.now();
    // A recording that starts mid-stream needs the markets and books it will see: the current list
    // (pinned round markets included) and a checkpoint of the trusted books.
    const now = Date.now();
    if (discovered.length > 0) w.append({ kind: 'raw', source: 'gamma', conn: 0, recvTs: now, data: JSON.stringify(discovered) });
    if (pinned.size > 0) w.append({ kind: 'raw', source: 'pins', conn: 0, recvTs: now, data: JSON.stringify([...pinned.values()]) });
    const cps = books.checkpoint();
    if (cps.length > 0) w.append({ kind: 'raw', source: 'checkpoint', conn: 0, recvTs: now, data: JSON.stringify(cps) });
    log.info({ name: n, dir: join(ctx.paths.recordings, n) }, 'recording started');
    return recordStatus();
  }

  async function stopRecording(): Promise<RpcResult<'record.stop'>> {
    const w = recorder;
    if (!w) return recordStatus();
    const st = recordStatus();
    recorder = undefined;
    if (publisher) publisher.tap = undefined;
    await w.close();
    log.info({ name: recordingName, records: st.records, bytes: w.stats().bytes }, 'recording stopped');
    recordingName = undefined;
    return { ...st, recording: false, bytes: w.stats().bytes };
  }

  function runRetention(): void {
    const days = cfg.POLYBOT_RECORDING_RETENTION_DAYS;
    const gb = cfg.POLYBOT_RECORDING_MAX_GB;
    if (!existsSync(ctx.paths.recordings) || (days <= 0 && gb <= 0)) return;
    try {
      const res = applyRetention(ctx.paths.recordings, {
        ...(days > 0 ? { maxAgeMs: days * 86_400_000 } : {}),
        ...(gb > 0 ? { maxBytes: Math.floor(gb * 1024 ** 3) } : {}),
        keep: recorder?.activePaths() ?? [],
      });
      if (res.deleted.length > 0) log.info({ deleted: res.deleted.length, freed_bytes: res.freedBytes }, 'old recordings deleted (retention)');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'recording retention failed');
    }
  }

  function resolveRecording(name: string): string {
    return isAbsolute(name) || name.includes('/') ? name : join(ctx.paths.recordings, name);
  }

  async function startReplay(p: { recording: string; speed: number }): Promise<ReplayStatus> {
    if (replay) throw new RpcFailure('replay_running', `a replay of ${replay.recording} is running; stop it first (polybot replay --stop)`);
    const dir = resolveRecording(p.recording);
    if (!existsSync(dir)) throw new RpcFailure('not_found', `no recording at ${dir}; list them with polybot record list`);
    const wasLive = mode === 'live';
    if (wasLive) await stopLive();
    mode = 'replay';
    clearState();
    replayClock = 0;
    publisher!.clock = () => replayClock;
    try {
      replay = await ReplayRun.start(dir, p.speed, {
        frame: ingest,
        clock: (ts) => (replayClock = ts),
        event: (topic, payload) => {
          const res = codec.decodePayload(payload, topic);
          if (!res.ok) return;
          // Re-stamped by our publisher: the envelope of the recorded copy is not ours to repeat.
          const { v: _v, src: _s, seq: _q, ts: _t, ...rest } = res.msg as BusMessage & Record<string, unknown>;
          publish(topic, rest as Unstamped<BusMessage>);
        },
        finished: (st) => void finishReplay(st, wasLive),
      });
    } catch (err) {
      await finishReplay({ ...lastReplay, state: 'failed', error: (err as Error).message }, wasLive);
      throw new RpcFailure('bad_recording', (err as Error).message);
    }
    log.info({ recording: dir, speed: p.speed, records: replay.status().records_total }, 'replay started');
    return replay.status();
  }

  async function finishReplay(st: ReplayStatus, resumeLive: boolean): Promise<void> {
    // Depth still held back by the book interval is part of what the recording showed.
    books.flush(replayClock + cfg.POLYBOT_SCANNER_BOOK_INTERVAL_MS + 1);
    lastReplay = st;
    replay = undefined;
    if (publisher) publisher.clock = Date.now;
    log.info({ state: st.state, records: st.records_done, events_per_s: st.events_per_s, error: st.error }, 'replay finished');
    clearState();
    if (stopped) return;
    if (resumeLive || cfg.POLYBOT_SCANNER_SOURCE === 'live') await startLive();
    else mode = 'idle';
  }

  // -------------------------------------------------------------- lifecycle

  return {
    async ingestFrames(frames: Iterable<RawFrame>, chunk = 1000) {
      let n = 0;
      for (const f of frames) {
        ingest(f);
        if (++n % chunk === 0) await new Promise((r) => setImmediate(r));
      }
    },
    drained(timeoutMs = 10_000) {
      return publisher ? publisher.drain(timeoutMs) : Promise.resolve(true);
    },

    async start() {
      registry = new MarketRegistry(ctx.paths.polybotDb);
      // Outbound checks are skipped on this hot path: every field is built from values the processors
      // already range-checked, and every subscriber validates what it receives.
      publisher = new BusPublisher({ endpoint: ctx.endpoints['prices.pub'], mode: 'bind', src: 'scanner', log, validate: false, sendThread: true });
      await publisher.start();
      replier = new BusReplier({
        endpoint: ctx.endpoints['scanner.rep'],
        src: 'scanner',
        log,
        handlers: {
          'books.snapshot': (p: Record<string, unknown>): RpcResult<'books.snapshot'> =>
            books.snapshot(p.token_ids as string[] | undefined, (p.depth as number | undefined) ?? cfg.POLYBOT_SCANNER_BOOK_DEPTH, publisher?.stats.seq ?? 0),
          'record.start': (p) => startRecording(p.name as string | undefined),
          'record.stop': () => stopRecording(),
          'record.status': () => recordStatus(),
          'replay.start': (p) => startReplay(p as { recording: string; speed: number }),
          'replay.stop': async () => {
            const r = replay;
            if (!r) return lastReplay;
            r.stop();
            return r.finished;
          },
          'replay.status': () => replay?.status() ?? lastReplay,
        },
      });
      await replier.start();
      log.info(
        { gamma: urls.gamma, clob: urls.clob, ws: urls.ws, rtds: cfg.POLYBOT_SCANNER_RTDS ? urls.rtds : 'off', rounds: roundAssets, source: cfg.POLYBOT_SCANNER_SOURCE },
        'scanner starting',
      );
      runRetention();
      retentionTimer = setInterval(runRetention, 3_600_000);
      if (cfg.POLYBOT_SCANNER_RECORD) await startRecording();
      if (cfg.POLYBOT_SCANNER_SOURCE === 'live') await startLive();
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      if (retentionTimer) clearInterval(retentionTimer);
      replay?.stop();
      await replay?.finished;
      await stopLive();
      await replier?.close();
      await publisher?.close(500);
      await stopRecording().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'recording did not close cleanly'));
      registry?.close();
    },

    metrics() {
      const now = Date.now();
      const m = market?.stats() ?? {};
      const d = discovery?.stats() ?? {};
      const p = publisher?.stats;
      const perType = metrics.snapshot(now);
      let rate = 0;
      for (const [k, v] of Object.entries(perType)) if (k.startsWith('events_per_s:')) rate += v;
      return {
        events_per_s: Math.round(rate * 10) / 10,
        events: metrics.total(),
        ...perType,
        markets: discovered.length + pinned.size,
        tokens: books.tokens.size,
        books: books.trustedCount(),
        untrusted_books: books.tokens.size - books.trustedCount(),
        untrusted_seconds_total: Math.round(books.untrustedMs() / 100) / 10,
        published_prices: books.counters.published_prices,
        published_books: books.counters.published_books,
        trades: books.counters.trades,
        reconnects: m.reconnects ?? 0,
        stale_reconnects: m.stale_reconnects ?? 0,
        shards: m.shards ?? 0,
        shards_connected: m.shards_connected ?? 0,
        frames: counters.frames,
        invalid_frames: counters.invalid_frames,
        unknown_events: counters.unknown_events,
        dropped_messages: p?.dropped ?? 0,
        crossed_books: books.counters.crossed,
        out_of_order: books.counters.out_of_order,
        top_mismatch: books.counters.top_mismatch,
        tick_size_changes: books.counters.tick_size_changes,
        resnapshots: books.counters.resnapshots,
        rest_mismatch: books.counters.rest_mismatch,
        resnapshot_errors: counters.resnapshot_errors,
        untrusted_transitions: books.counters.untrusted_transitions,
        discovery_errors: d.discovery_errors ?? 0,
        ref_prices: counters.ref_prices,
        invalid_ref_prices: counters.invalid_ref_prices,
        ...adapterMetrics(),
        ...roundMetrics(),
        invalid_markets: d.invalid_markets ?? 0,
        last_data_age_ms: market && market.assets > 0 ? market.maxDataAgeMs : -1,
        source: mode,
        recording: recorder ? 1 : 0,
        recording_bytes: recorder?.stats().bytes ?? 0,
        replay_records_done: replay?.status().records_done ?? lastReplay.records_done,
      };
    },

    health() {
      if (mode === 'replay') {
        const st = replay?.status();
        return { state: 'running', message: `replaying ${st?.recording ?? ''} (${st?.records_done ?? 0}/${st?.records_total ?? 0} records)` };
      }
      if (mode === 'idle') return { state: 'running', message: 'replay-only scanner: waiting for a replay (polybot replay)' };
      if (books.tokens.size === 0) {
        const err = discovery?.lastError;
        return { state: 'degraded', message: err ? `market discovery failing: ${err}` : 'no markets discovered yet' };
      }
      if (!market?.connected) return { state: 'degraded', message: 'market websocket disconnected' };
      const age = market.maxDataAgeMs;
      if (age > staleMs) return { state: 'degraded', message: `market websocket stale (${age} ms without data)` };
      return { state: 'running' };
    },
  };
}
