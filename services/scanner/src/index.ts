import { BusPublisher, BusReplier } from '@polybot/bus';
import { serviceConfig, venueUrls, type Service, type ServiceContext } from '@polybot/core';
import {
  GammaClient,
  getBook,
  MarketWsClient,
  toMarketInfo,
  type BookSummary,
  type MarketInfo,
  type MarketWsStatus,
  type WsBook,
  type WsLastTradePrice,
  type WsMarketEvent,
  type WsPriceChange,
  type WsTickSizeChange,
} from '@polybot/polymarket';
import {
  topics,
  toMicros,
  type BookMessage,
  type BookStatusMessage,
  type PriceMessage,
  type RpcResult,
  type TradeMessage,
  type Unstamped,
} from '@polybot/protocol';
import Type, { type Static } from 'typebox';
import { L2Book, microsToNumber, midMicros } from './book.js';
import { MarketRegistry } from './registry.js';

export { L2Book } from './book.js';
export { MarketRegistry, SCANNER_MIGRATIONS } from './registry.js';

export const ScannerConfig = serviceConfig({
  POLYBOT_SCANNER_MAX_MARKETS: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  POLYBOT_SCANNER_DISCOVERY_INTERVAL_MS: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 60_000 }),
  POLYBOT_SCANNER_STALE_MS: Type.Integer({ minimum: 500, maximum: 600_000, default: 30_000 }),
});
export type ScannerConfig = Static<typeof ScannerConfig>;

/** Depth published on `book.<token_id>`. */
const BOOK_DEPTH = 20;
/** A token is re-snapshotted over REST at most this often. */
const RESNAPSHOT_MIN_INTERVAL_MS = 2000;
const REST_TIMEOUT_MS = 5000;

interface TokenInfo {
  conditionId: string;
  outcome: string;
}

function venueTs(ts: string | undefined): number {
  const n = Number(ts);
  return Number.isFinite(n) && n >= 0 ? n : Date.now();
}

/**
 * Market data service: discovers markets on Gamma, keeps them in SQLite, follows their books on the
 * market WebSocket and publishes top of book, depth and trades on `prices.pub`.
 */
export function createScannerService(ctx: ServiceContext<ScannerConfig>): Service {
  const cfg = ctx.config;
  const urls = venueUrls(cfg);
  const log = ctx.log.child({ component: 'scanner' });
  const gamma = new GammaClient(urls.gamma, { timeoutMs: 15_000 });
  const staleMs = cfg.POLYBOT_SCANNER_STALE_MS;

  let registry: MarketRegistry | undefined;
  let publisher: BusPublisher | undefined;
  let ws: MarketWsClient | undefined;
  let wsStarted = false;
  let stopped = false;
  let discoveryTimer: NodeJS.Timeout | undefined;
  let discovering: Promise<void> | undefined;

  const markets = new Map<string, MarketInfo>();
  const tokens = new Map<string, TokenInfo>();
  const books = new Map<string, L2Book>();
  const resnapInFlight = new Set<string>();
  const lastResnapAt = new Map<string, number>();
  const pending = new Set<Promise<unknown>>();
  /** Trust last announced on `book.status.<token>`; a change is published, repeats are not. */
  const announcedTrust = new Map<string, boolean>();
  let replier: BusReplier | undefined;

  const counters = {
    events: 0,
    published: 0,
    trades: 0,
    crossed: 0,
    resnapshots: 0,
    resnapshotErrors: 0,
    deltasWithoutSnapshot: 0,
    unknownTokens: 0,
    discoveries: 0,
    discoveryErrors: 0,
    invalidMarkets: 0,
    untrustedTransitions: 0,
  };
  let lastEventAt = 0;
  let lastDiscoveryError: string | undefined;
  let rate = { at: Date.now(), events: 0, perSec: 0 };

  // -------------------------------------------------------------- publishing

  function publishBook(book: L2Book): void {
    const info = tokens.get(book.tokenId);
    if (!info || !publisher) return;
    const t = book.top();
    const price: Unstamped<PriceMessage> = {
      type: 'price',
      token_id: book.tokenId,
      market: info.conditionId,
      outcome: info.outcome,
      bid: t.bid === null ? null : microsToNumber(t.bid),
      ask: t.ask === null ? null : microsToNumber(t.ask),
      mid: t.bid !== null && t.ask !== null ? microsToNumber(midMicros(t.bid, t.ask)) : null,
      bid_size: microsToNumber(t.bidSize),
      ask_size: microsToNumber(t.askSize),
      venue_ts: book.venueTs,
    };
    const { bids, asks } = book.levels(BOOK_DEPTH);
    const tick = Number(book.tickSize);
    const depth: Unstamped<BookMessage> = {
      type: 'book',
      token_id: book.tokenId,
      market: info.conditionId,
      bids,
      asks,
      tick_size: tick > 0 && tick <= 1 ? tick : 0.01,
      ...(book.hash ? { hash: book.hash.slice(0, 128) } : {}),
      venue_ts: book.venueTs,
    };
    if (publisher.publish(topics.price(book.tokenId), price)) counters.published++;
    publisher.publish(topics.book(book.tokenId), depth);
  }

  /** Tells consumers when a book stops or starts being usable (only on a change). */
  function announceTrust(book: L2Book, reason: string): void {
    const info = tokens.get(book.tokenId);
    if (!info || !publisher) return;
    const trusted = book.trusted && book.hasSnapshot;
    if (announcedTrust.get(book.tokenId) === trusted) return;
    // A book never announced and trusted from its first snapshot needs no message: trust is the default.
    if (!announcedTrust.has(book.tokenId) && trusted) {
      announcedTrust.set(book.tokenId, true);
      return;
    }
    announcedTrust.set(book.tokenId, trusted);
    if (!trusted) counters.untrustedTransitions++;
    const msg: Unstamped<BookStatusMessage> = {
      type: 'book_status',
      token_id: book.tokenId,
      market: info.conditionId,
      trusted,
      reason,
      venue_ts: book.venueTs,
    };
    publisher.publish(topics.bookStatus(book.tokenId), msg);
  }

  /** After any change: a crossed book is not published but rebuilt from REST. */
  function afterChange(book: L2Book, reason = 'snapshot'): void {
    if (book.isCrossed()) {
      if (book.trusted) {
        counters.crossed++;
        log.warn({ token_id: book.tokenId }, 'book crossed after an update; re-snapshotting over REST');
      }
      book.trusted = false;
      announceTrust(book, 'crossed');
      requestResnapshot(book.tokenId);
      return;
    }
    announceTrust(book, reason);
    if (book.trusted && book.hasSnapshot) publishBook(book);
  }

  /** `books.snapshot` over scanner.rep: what a late joiner applies before the stream's newer updates. */
  function snapshotBooks(params: Record<string, unknown>): RpcResult<'books.snapshot'> {
    const ids = (params.token_ids as string[] | undefined) ?? [...books.keys()];
    const depth = (params.depth as number | undefined) ?? BOOK_DEPTH;
    const out: RpcResult<'books.snapshot'>['books'] = [];
    for (const id of ids) {
      const book = books.get(id);
      const info = tokens.get(id);
      if (!book || !info || !book.hasSnapshot) continue;
      const { bids, asks } = book.levels(depth);
      const tick = Number(book.tickSize);
      out.push({
        token_id: id,
        market: info.conditionId,
        trusted: book.trusted,
        bids,
        asks,
        tick_size: tick > 0 && tick <= 1 ? tick : 0.01,
        ...(book.hash ? { hash: book.hash.slice(0, 128) } : {}),
        venue_ts: book.venueTs,
      });
    }
    return { seq: publisher?.stats.seq ?? 0, books: out };
  }

  function requestResnapshot(tokenId: string): void {
    const now = Date.now();
    if (stopped || resnapInFlight.has(tokenId) || now - (lastResnapAt.get(tokenId) ?? 0) < RESNAPSHOT_MIN_INTERVAL_MS) return;
    resnapInFlight.add(tokenId);
    lastResnapAt.set(tokenId, now);
    const p = getBook(urls.clob, tokenId, { timeoutMs: REST_TIMEOUT_MS })
      .then((b: BookSummary) => {
        const book = books.get(tokenId);
        if (stopped || !book) return;
        const ts = venueTs(b.timestamp);
        // A WS snapshot that arrived meanwhile is newer than what REST answered.
        if (book.hasSnapshot && book.trusted && ts < book.venueTs) return;
        book.applySnapshot(b.bids, b.asks, ts, b.hash);
        if (b.tick_size) book.tickSize = b.tick_size;
        counters.resnapshots++;
        afterChange(book);
      })
      .catch((err: unknown) => {
        counters.resnapshotErrors++;
        log.warn({ token_id: tokenId, err: (err as Error).message }, 're-snapshot failed');
      })
      .finally(() => {
        resnapInFlight.delete(tokenId);
        pending.delete(p);
      });
    pending.add(p);
  }

  // -------------------------------------------------------------- venue events

  function onBook(ev: WsBook): void {
    const book = books.get(ev.asset_id);
    if (!book) {
      counters.unknownTokens++;
      return;
    }
    book.applySnapshot(ev.bids, ev.asks, venueTs(ev.timestamp), ev.hash);
    if (ev.tick_size) book.tickSize = ev.tick_size;
    afterChange(book);
  }

  function onPriceChange(ev: WsPriceChange): void {
    const ts = venueTs(ev.timestamp);
    const touched = new Set<L2Book>();
    for (const ch of ev.price_changes) {
      const book = books.get(ch.asset_id);
      if (!book) {
        counters.unknownTokens++;
        continue;
      }
      if (!book.hasSnapshot) {
        // Deltas need a base; fetch one rather than wait for a `book` that may never come.
        counters.deltasWithoutSnapshot++;
        requestResnapshot(book.tokenId);
        continue;
      }
      book.applyChange(ch.side, ch.price, ch.size, ts, ch.hash);
      touched.add(book);
    }
    for (const book of touched) afterChange(book);
  }

  function onTrade(ev: WsLastTradePrice): void {
    const info = tokens.get(ev.asset_id);
    if (!info || !publisher) {
      counters.unknownTokens++;
      return;
    }
    // The trade schema needs a side; the venue has always sent one, but it is not documented.
    if (!ev.side) return;
    const msg: Unstamped<TradeMessage> = {
      type: 'trade',
      token_id: ev.asset_id,
      market: info.conditionId,
      price: microsToNumber(toMicros(ev.price)),
      size: ev.size ? microsToNumber(toMicros(ev.size)) : 0,
      side: ev.side,
      venue_ts: venueTs(ev.timestamp),
    };
    if (publisher.publish(topics.trade(ev.asset_id), msg)) counters.trades++;
  }

  function onTickSize(ev: WsTickSizeChange): void {
    const info = tokens.get(ev.asset_id);
    if (!info) {
      counters.unknownTokens++;
      return;
    }
    const m = markets.get(info.conditionId);
    if (m) m.tickSize = ev.new_tick_size;
    for (const t of m?.tokens ?? []) {
      const b = books.get(t.tokenId);
      if (b) b.tickSize = ev.new_tick_size;
    }
    try {
      registry?.setTickSize(info.conditionId, ev.new_tick_size);
    } catch (err) {
      log.warn({ err }, 'could not store tick size change');
    }
    log.info({ market: info.conditionId, old: ev.old_tick_size, new: ev.new_tick_size }, 'tick size changed');
    const book = books.get(ev.asset_id);
    if (book) afterChange(book);
  }

  function onEvent(ev: WsMarketEvent): void {
    counters.events++;
    lastEventAt = Date.now();
    switch (ev.event_type) {
      case 'book':
        return onBook(ev);
      case 'price_change':
        return onPriceChange(ev);
      case 'last_trade_price':
        return onTrade(ev);
      case 'tick_size_change':
        return onTickSize(ev);
    }
  }

  function onStatus(s: MarketWsStatus): void {
    if (s.state === 'closed') {
      // Deltas across a gap would corrupt the books; the resubscribe brings fresh snapshots.
      for (const b of books.values()) {
        b.invalidate();
        announceTrust(b, 'disconnected');
      }
      log.warn({ reason: s.reason }, 'market ws disconnected');
    }
  }

  // -------------------------------------------------------------- discovery

  async function discover(): Promise<void> {
    try {
      const res = await gamma.listMarkets({ active: true, closed: false, limit: cfg.POLYBOT_SCANNER_MAX_MARKETS });
      counters.invalidMarkets += res.invalid;
      const found: MarketInfo[] = [];
      for (const gm of res.markets) {
        if (gm.enableOrderBook === false) continue;
        const m = toMarketInfo(gm);
        if (!m.active || m.closed || m.tokens.length === 0) continue;
        found.push(m);
      }
      if (stopped) return;
      registry?.upsert(found);
      const wanted = new Map<string, TokenInfo>();
      for (const m of found) for (const t of m.tokens) wanted.set(t.tokenId, { conditionId: m.conditionId, outcome: t.outcome });
      const added = [...wanted.keys()].filter((t) => !tokens.has(t));
      const removed = [...tokens.keys()].filter((t) => !wanted.has(t));
      markets.clear();
      for (const m of found) {
        markets.set(m.conditionId, m);
        for (const t of m.tokens) {
          tokens.set(t.tokenId, wanted.get(t.tokenId)!);
          // An existing book keeps the tick size learnt from the stream over Gamma's possibly older value.
          if (!books.has(t.tokenId)) books.set(t.tokenId, new L2Book(t.tokenId, m.tickSize));
        }
      }
      for (const t of removed) {
        tokens.delete(t);
        books.delete(t);
        lastResnapAt.delete(t);
      }
      if (ws) {
        if (removed.length) ws.unsubscribe(removed);
        if (added.length) ws.subscribe(added);
        if (!wsStarted && ws.subscriptions.length > 0) {
          wsStarted = true;
          ws.start();
        }
      }
      counters.discoveries++;
      lastDiscoveryError = undefined;
      if (added.length || removed.length) {
        log.info({ markets: found.length, added: added.length, removed: removed.length, invalid: res.invalid }, 'markets discovered');
      }
    } catch (err) {
      counters.discoveryErrors++;
      lastDiscoveryError = (err as Error).message;
      log.warn({ err: lastDiscoveryError }, 'market discovery failed');
    }
  }

  function scheduleDiscovery(): void {
    if (stopped) return;
    // Retry sooner while discovery keeps failing (e.g. the venue is still starting).
    const delay = lastDiscoveryError ? Math.min(cfg.POLYBOT_SCANNER_DISCOVERY_INTERVAL_MS, 5000) : cfg.POLYBOT_SCANNER_DISCOVERY_INTERVAL_MS;
    discoveryTimer = setTimeout(() => {
      discovering = discover().finally(() => {
        discovering = undefined;
        scheduleDiscovery();
      });
    }, delay);
  }

  // -------------------------------------------------------------- lifecycle

  return {
    async start() {
      registry = new MarketRegistry(ctx.paths.polybotDb);
      publisher = new BusPublisher({ endpoint: ctx.endpoints['prices.pub'], mode: 'bind', src: 'scanner', log });
      await publisher.start();
      replier = new BusReplier({ endpoint: ctx.endpoints['scanner.rep'], src: 'scanner', log, handlers: { 'books.snapshot': snapshotBooks } });
      await replier.start();
      ws = new MarketWsClient({
        url: urls.ws,
        onEvent,
        onStatus,
        log: log.child({ component: 'market-ws' }),
        staleMs,
        // Heartbeats well inside the stale window keep a quiet but healthy link from looking dead.
        pingIntervalMs: Math.max(100, Math.min(10_000, Math.floor(staleMs / 3))),
      });
      log.info({ gamma: urls.gamma, clob: urls.clob, ws: urls.ws }, 'scanner starting');
      discovering = discover().finally(() => {
        discovering = undefined;
      });
      await discovering;
      scheduleDiscovery();
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      if (discoveryTimer) clearTimeout(discoveryTimer);
      await discovering?.catch(() => undefined);
      await ws?.close();
      await Promise.allSettled([...pending]);
      await replier?.close();
      await publisher?.close(500);
      registry?.close();
    },

    metrics() {
      const now = Date.now();
      if (now - rate.at >= 1000) {
        rate = { at: now, events: counters.events, perSec: ((counters.events - rate.events) * 1000) / (now - rate.at) };
      }
      const s = ws?.stats;
      let trustedBooks = 0;
      for (const b of books.values()) if (b.hasSnapshot && b.trusted) trustedBooks++;
      return {
        events_per_s: Math.round(rate.perSec * 10) / 10,
        events: counters.events,
        markets: markets.size,
        tokens: tokens.size,
        books: trustedBooks,
        published_prices: counters.published,
        trades: counters.trades,
        reconnects: s?.reconnects ?? 0,
        invalid_frames: s?.invalid ?? 0,
        unknown_events: s?.unknown ?? 0,
        stale_reconnects: s?.stale ?? 0,
        crossed_books: counters.crossed,
        resnapshots: counters.resnapshots,
        untrusted_transitions: counters.untrustedTransitions,
        resnapshot_errors: counters.resnapshotErrors,
        discovery_errors: counters.discoveryErrors,
        invalid_markets: counters.invalidMarkets,
        last_event_age_ms: lastEventAt === 0 ? -1 : now - lastEventAt,
        ws_state: s?.state ?? 'closed',
      };
    },

    health() {
      if (tokens.size === 0) {
        return { state: 'degraded', message: lastDiscoveryError ? `market discovery failing: ${lastDiscoveryError}` : 'no markets discovered yet' };
      }
      if (!ws?.connected) return { state: 'degraded', message: 'market websocket disconnected' };
      if (ws.lastFrameAgeMs > staleMs) return { state: 'degraded', message: `market websocket stale (${ws.lastFrameAgeMs} ms without a frame)` };
      return { state: 'running' };
    },
  };
}
