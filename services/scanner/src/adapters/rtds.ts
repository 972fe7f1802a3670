/**
 * RTDS adapter: the real-time data socket with the reference prices of the crypto up/down rounds
 * (venue `wss://ws-live-data.polymarket.com`, simulator `ws://<host>:<port>/ws/rtds`; take the URL
 * from `venueUrls(cfg).rtds`). It only moves frames: every inbound frame, `pong`s included, goes to
 * the sink as `{ source: 'rtds', conn: 0, recvTs, data }`; `processors/rtds.ts` makes sense of them.
 *
 * API: `createRtdsAdapter({ url, sink, symbols?, topic?, log?, ...timings })` → `Adapter` plus
 * `connected`. Text `ping` every 5 s; a watchdog reconnects when no price data (pongs do not count)
 * arrived for `staleMs`; reconnects back off exponentially with jitter; the subscription goes out
 * exactly once per connection.
 */
import WebSocket from 'ws';
import { reconnectDelay } from '@polybot/polymarket';
import type { Adapter, FrameSink } from '../pipeline/types.js';
import { RTDS_TOPIC_CHAINLINK } from '../processors/rtds.js';

export const DEFAULT_RTDS_SYMBOLS: readonly string[] = ['btc/usd', 'eth/usd', 'sol/usd', 'xrp/usd'];

export interface RtdsLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface RtdsAdapterOptions {
  /** Full socket URL (no path is appended: the venue serves RTDS at its root). */
  url: string;
  sink: FrameSink;
  /** Chainlink symbols (`btc/usd`…) or, with `topic: 'crypto_prices'`, Binance ones (`btcusdt`…). */
  symbols?: readonly string[];
  topic?: string;
  log?: RtdsLogger;
  /** Text `ping` interval; the venue expects one every 5 s. */
  pingIntervalMs?: number;
  /** No price data for this long → the link is dead even if pongs still come; reconnect. */
  staleMs?: number;
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs`, with jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  connectTimeoutMs?: number;
  maxPayloadBytes?: number;
  /** Receive clock (ms); injectable so recordings made in tests are reproducible. */
  now?: () => number;
}

export interface RtdsAdapter extends Adapter {
  readonly connected: boolean;
}

const silent: RtdsLogger = { debug() {}, info() {}, warn() {} };

/** Builds the one subscribe frame of a connection: one subscription per symbol, as the venue's filters take one. */
export function rtdsSubscribeFrame(topic: string, symbols: readonly string[]): string {
  const filter = (s: string) => (topic === RTDS_TOPIC_CHAINLINK ? JSON.stringify({ symbol: s }) : s);
  return JSON.stringify({
    action: 'subscribe',
    subscriptions: symbols.map((s) => ({ topic, type: '*', filters: filter(s) })),
  });
}

export function createRtdsAdapter(opts: RtdsAdapterOptions): RtdsAdapter {
  const url = opts.url.replace(/\/+$/, '');
  const log = opts.log ?? silent;
  const now = opts.now ?? Date.now;
  const topic = opts.topic ?? RTDS_TOPIC_CHAINLINK;
  const symbols = [...new Set((opts.symbols ?? DEFAULT_RTDS_SYMBOLS).map((s) => s.toLowerCase()))];
  const pingMs = opts.pingIntervalMs ?? 5_000;
  const staleMs = opts.staleMs ?? 20_000;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;

  let ws: WebSocket | undefined;
  let state: 'idle' | 'connecting' | 'open' | 'closed' | 'stopped' = 'idle';
  let started = false;
  let attempt = 0;
  let lastDataAt = 0;
  let lastReason = '';
  let reconnectTimer: NodeJS.Timeout | undefined;
  let pingTimer: NodeJS.Timeout | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let connectTimer: NodeJS.Timeout | undefined;
  let closeWaiters: Array<() => void> = [];
  const c = {
    connects: 0,
    reconnects: 0,
    frames: 0,
    data_frames: 0,
    pongs: 0,
    pings: 0,
    stale: 0,
    subscribe_frames: 0,
    sink_errors: 0,
  };

  const clearTimers = () => {
    if (pingTimer) clearInterval(pingTimer);
    if (watchdog) clearInterval(watchdog);
    if (connectTimer) clearTimeout(connectTimer);
    pingTimer = watchdog = connectTimer = undefined;
  };

  const connect = () => {
    if (!started) return;
    state = 'connecting';
    const sock = new WebSocket(url, { maxPayload: opts.maxPayloadBytes ?? 4 * 1024 * 1024, handshakeTimeout: connectTimeoutMs, perMessageDeflate: false });
    ws = sock;
    // `handshakeTimeout` does not cover a TCP connect that never completes.
    connectTimer = setTimeout(() => {
      if (sock.readyState === WebSocket.CONNECTING) sock.terminate();
    }, connectTimeoutMs + 1000);

    sock.on('open', () => {
      if (ws !== sock) return;
      if (connectTimer) clearTimeout(connectTimer);
      connectTimer = undefined;
      c.connects++;
      state = 'open';
      // The watchdog measures from the connect so a server that never sends data is caught too.
      lastDataAt = now();
      log.info({ url, symbols, topic }, 'rtds connected');
      if (symbols.length > 0) {
        c.subscribe_frames++;
        sock.send(rtdsSubscribeFrame(topic, symbols));
      }
      pingTimer = setInterval(() => {
        if (sock.readyState !== WebSocket.OPEN) return;
        c.pings++;
        sock.send('ping');
      }, pingMs);
      watchdog = setInterval(
        () => {
          if (sock.readyState !== WebSocket.OPEN) return;
          if (now() - lastDataAt > staleMs) {
            c.stale++;
            log.warn({ url, staleMs }, 'rtds stale: no price data received; reconnecting');
            lastReason = 'stale';
            sock.terminate();
          }
        },
        Math.max(50, Math.min(1000, Math.floor(staleMs / 4))),
      );
    });
    sock.on('message', (data, isBinary) => {
      if (ws !== sock) return;
      const recvTs = now();
      const text = isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString();
      c.frames++;
      const t = text.trim();
      if (t === 'pong' || t === 'PONG') c.pongs++;
      else if (text.includes('"payload"')) {
        c.data_frames++;
        lastDataAt = recvTs;
        // Data flowing again proves the link: the next outage backs off from the start.
        attempt = 0;
      }
      try {
        opts.sink({ source: 'rtds', conn: 0, recvTs, data: text });
      } catch (err) {
        c.sink_errors++;
        if (c.sink_errors <= 5) log.warn({ err }, 'rtds frame sink failed');
      }
    });
    sock.on('error', (err) => {
      // 'close' follows every 'error'; reconnecting happens there.
      log.debug({ err: err.message, url }, 'rtds socket error');
      lastReason = err.message;
    });
    sock.on('close', (code, reason) => {
      const waiters = closeWaiters;
      closeWaiters = [];
      for (const w of waiters) w();
      if (ws !== sock) return;
      clearTimers();
      ws = undefined;
      if (!started) return;
      state = 'closed';
      const why = `closed ${code}${reason.length ? ` ${reason.toString()}` : ''}${lastReason ? ` (${lastReason})` : ''}`;
      lastReason = '';
      scheduleReconnect(why);
    });
  };

  const scheduleReconnect = (why: string) => {
    const delay = reconnectDelay(attempt, opts.initialBackoffMs ?? 500, opts.maxBackoffMs ?? 30_000);
    attempt++;
    c.reconnects++;
    log.info({ why, delayMs: delay, attempt }, 'rtds reconnecting');
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connect();
    }, delay);
  };

  return {
    name: 'rtds',
    get connected() {
      return state === 'open';
    },
    start() {
      if (started) return;
      started = true;
      connect();
    },
    async stop() {
      started = false;
      clearTimers();
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      const sock = ws;
      if (sock && sock.readyState !== WebSocket.CLOSED) {
        const closed = new Promise<void>((r) => closeWaiters.push(r));
        if (sock.readyState === WebSocket.CONNECTING) sock.terminate();
        else sock.close(1000, 'client stop');
        // A peer that never answers the close handshake must not hold up shutdown.
        const t = setTimeout(() => sock.terminate(), 1000);
        await closed;
        clearTimeout(t);
      }
      ws = undefined;
      state = 'stopped';
    },
    stats() {
      return {
        ...c,
        state,
        symbols: symbols.length,
        last_data_age_ms: lastDataAt === 0 ? -1 : Math.max(0, now() - lastDataAt),
      };
    },
  };
}
