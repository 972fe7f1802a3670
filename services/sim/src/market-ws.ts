import { fromMicros, toMicros } from '@polybot/protocol';
import { MarketSubscribe, type WsBook, type WsPriceChange } from '@polybot/polymarket';
import type { Logger } from '@polybot/core';
import Compile from 'typebox/compile';
import type { WebSocket } from 'ws';
import type { Exchange, ExchangeEvent } from './exchange.js';

const checkSubscribe = Compile(MarketSubscribe);

/** A client that stops reading is dropped rather than buffering without bound. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** The venue's (undocumented) per-connection asset limit as nautilus observed it. */
export const DEFAULT_MAX_ASSETS_PER_CONNECTION = 500;
/** Text frame the venue answers a repeated initial subscription with. */
export const INVALID_OPERATION = 'INVALID OPERATION';
/** Close code and reason the venue uses for a `PING` on a connection without a valid subscription. */
export const CLOSE_NO_SUBSCRIPTION = { code: 1008, reason: 'invalid subscription payload' } as const;

/** What the hub needs from the exchange: token lookup and current book snapshots. */
export type MarketHubExchange = Pick<Exchange, 'hasToken' | 'wsBook'>;

/**
 * Any event the exchange may publish. Gated by its `event_type` string so event kinds the exchange
 * adds later (`new_market`, `market_resolved`, `tick_size_change`) are routed without a type change here.
 */
export type MarketHubEvent = ExchangeEvent | { readonly event_type: string; readonly [field: string]: unknown };

export interface MarketHubOptions {
  /**
   * Assets one connection may hold (default 500, the venue's observed limit). Assets a subscribe
   * frame asks for beyond it are not subscribed and get no snapshot; nothing is sent about them.
   */
  maxAssetsPerConnection?: number;
  /** Send-buffer size beyond which a slow client is closed (1013), bytes (default 8 MiB). */
  maxBufferedBytes?: number;
}

interface Client {
  socket: WebSocket;
  assets: Set<string>;
  /** Until this time (ms) the client gets no data frames: a silent freeze, PONG still flows. */
  frozenUntil: number;
  /** A valid subscription frame arrived; before that a `PING` closes the socket (1008). */
  subscribed: boolean;
  /** `custom_feature_enabled`: `best_bid_ask`, `new_market` and `market_resolved` events. */
  custom: boolean;
}

interface Top {
  bid: bigint;
  ask: bigint;
}

/**
 * The market channel (`/ws/market`): `book` snapshots on subscribe, then `price_change`,
 * `last_trade_price`, `tick_size_change` and post-trade `book` events, only for the assets a client
 * subscribed to. Connections with `custom_feature_enabled` also get `best_bid_ask` (derived here
 * whenever a subscribed asset's top of book changes), every `new_market`, and `market_resolved`
 * for markets they hold an asset of.
 *
 * Venue behaviours reproduced: a `PING` before any valid subscription closes the socket with 1008;
 * a second initial (non-`operation`) subscribe frame is answered with the text `INVALID OPERATION`
 * and ignored; re-subscribing a held asset is ignored for that asset while the frame's
 * `custom_feature_enabled` still applies; malformed frames are counted and ignored; unsubscribing
 * assets not held is a no-op.
 */
export class MarketHub {
  private readonly clients = new Set<Client>();
  /** Last top of book published per asset (empty side: bid 0, ask 1, as `price_change` reports it). */
  private readonly tops = new Map<string, Top>();
  private readonly maxAssets: number;
  private readonly maxBuffered: number;
  readonly stats = {
    framesSent: 0,
    invalidFrames: 0,
    slowDropped: 0,
    faultDropped: 0,
    faultFrozen: 0,
    framesSwallowed: 0,
    /** Connections closed 1008 for a `PING` before any subscription. */
    pingBeforeSubscribe: 0,
    /** Repeated initial subscribe frames answered `INVALID OPERATION`. */
    invalidOperations: 0,
    /** Assets not subscribed because the connection was at its asset limit. */
    assetsOverLimit: 0,
    /** Already-held assets in `subscribe` frames (ignored). */
    duplicateAssets: 0,
    /** Derived `best_bid_ask` events (counted once per top change, not per recipient). */
    bestBidAsk: 0,
  };

  constructor(
    private readonly exchange: MarketHubExchange,
    private readonly log: Logger,
    opts: MarketHubOptions = {},
  ) {
    this.maxAssets = Math.max(0, Math.floor(opts.maxAssetsPerConnection ?? DEFAULT_MAX_ASSETS_PER_CONNECTION));
    this.maxBuffered = opts.maxBufferedBytes ?? MAX_BUFFERED_BYTES;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  accept(socket: WebSocket): void {
    const client: Client = { socket, assets: new Set(), frozenUntil: 0, subscribed: false, custom: false };
    this.clients.add(client);
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      try {
        this.onFrame(client, isBinary ? '' : Buffer.isBuffer(data) ? data.toString('utf8') : String(data));
      } catch (err) {
        // A frame must never take the server down; count it and carry on.
        this.stats.invalidFrames++;
        this.log.warn({ err }, 'market ws frame failed');
      }
    });
    socket.on('close', () => this.clients.delete(client));
    socket.on('error', (err) => {
      this.log.debug({ err }, 'market ws client error');
      this.clients.delete(client);
    });
  }

  private onFrame(client: Client, text: string): void {
    if (text === 'PING') {
      if (!client.subscribed) {
        // The venue closes an unsubscribed socket on its first heartbeat (nautilus #4864).
        this.stats.pingBeforeSubscribe++;
        this.clients.delete(client);
        client.socket.close(CLOSE_NO_SUBSCRIPTION.code, CLOSE_NO_SUBSCRIPTION.reason);
        return;
      }
      this.send(client, 'PONG', false);
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.stats.invalidFrames++;
      return;
    }
    if (!checkSubscribe.Check(msg)) {
      this.stats.invalidFrames++;
      return;
    }
    if (msg.operation === 'unsubscribe') {
      for (const id of msg.assets_ids) client.assets.delete(id);
      return;
    }
    if (msg.operation === undefined && client.subscribed) {
      // Only the first frame may be an initial subscription; later ones must carry `operation`.
      this.stats.invalidOperations++;
      this.send(client, INVALID_OPERATION, false);
      return;
    }
    client.subscribed = true;
    // Applied before the duplicate check, as the venue does (py-sdk).
    if (msg.custom_feature_enabled !== undefined) client.custom = msg.custom_feature_enabled;

    const fresh: string[] = [];
    for (const id of new Set(msg.assets_ids)) {
      if (client.assets.has(id)) this.stats.duplicateAssets++;
      else if (!this.exchange.hasToken(id)) continue;
      else if (client.assets.size + fresh.length >= this.maxAssets) this.stats.assetsOverLimit++;
      else fresh.push(id);
    }
    if (fresh.length === 0) return;
    for (const id of fresh) client.assets.add(id);
    const books = fresh.map((id) => this.exchange.wsBook(id)).filter((b) => b !== undefined);
    // The client's view starts at this book: the next `best_bid_ask` is a change from it.
    for (const b of books) this.tops.set(b.asset_id, topOfBook(b));
    if (msg.initial_dump === false || books.length === 0) return;
    // Initial snapshots travel batched in one array frame, as the venue does.
    this.send(client, JSON.stringify(books));
  }

  private send(client: Client, frame: string, data = true): void {
    const s = client.socket;
    if (s.readyState !== s.OPEN) return;
    if (data && client.frozenUntil > Date.now()) {
      // A frozen feed loses the frame for good, as the venue's does: clients must resync from REST.
      this.stats.framesSwallowed++;
      return;
    }
    if (s.bufferedAmount > this.maxBuffered) {
      this.stats.slowDropped++;
      this.clients.delete(client);
      s.close(1013, 'slow consumer');
      return;
    }
    s.send(frame);
    this.stats.framesSent++;
  }

  /** Fans an exchange event out to the clients entitled to it. Never throws into the exchange. */
  publish(ev: MarketHubEvent): void {
    if (this.clients.size === 0) return;
    try {
      this.route(ev);
    } catch (err) {
      this.log.warn({ err, event_type: ev.event_type }, 'market ws publish failed');
    }
  }

  private route(ev: MarketHubEvent): void {
    switch (ev.event_type) {
      case 'price_change':
        this.publishPriceChange(ev as WsPriceChange);
        return;
      case 'book': {
        const book = ev as WsBook;
        this.toAssetSubscribers(book.asset_id, JSON.stringify(book));
        this.updateTop(book.asset_id, book.market, topOfBook(book), book.timestamp);
        return;
      }
      case 'new_market': {
        let frame: string | undefined;
        for (const c of this.clients) if (c.custom) this.send(c, (frame ??= JSON.stringify(ev)));
        return;
      }
      case 'market_resolved': {
        const ids = assetIdsOf(ev);
        let frame: string | undefined;
        for (const c of this.clients) {
          if (c.custom && ids.some((id) => c.assets.has(id))) this.send(c, (frame ??= JSON.stringify(ev)));
        }
        for (const id of ids) this.tops.delete(id); // rounds keep coming: do not keep closed books' tops
        return;
      }
      case 'best_bid_ask':
        return; // derived here from book changes; never forwarded twice
      default: {
        // last_trade_price, tick_size_change and any other per-asset event.
        const id = (ev as { asset_id?: unknown }).asset_id;
        if (typeof id === 'string') this.toAssetSubscribers(id, JSON.stringify(ev));
      }
    }
  }

  private publishPriceChange(ev: WsPriceChange): void {
    let full: string | undefined;
    for (const c of this.clients) {
      const mine = ev.price_changes.filter((p) => c.assets.has(p.asset_id));
      if (mine.length === 0) continue;
      if (mine.length === ev.price_changes.length) this.send(c, (full ??= JSON.stringify(ev)));
      else this.send(c, JSON.stringify({ ...ev, price_changes: mine }));
    }
    // Each item carries the asset's top after the change; the last item per asset is the final one.
    const last = new Map<string, { best_bid?: string; best_ask?: string }>();
    for (const p of ev.price_changes) last.set(p.asset_id, p);
    for (const [id, p] of last) {
      if (p.best_bid === undefined || p.best_ask === undefined) continue;
      this.updateTop(id, ev.market, { bid: toMicros(p.best_bid), ask: toMicros(p.best_ask) }, ev.timestamp);
    }
  }

  private toAssetSubscribers(assetId: string, frame: string): void {
    for (const c of this.clients) if (c.assets.has(assetId)) this.send(c, frame);
  }

  /** Records an asset's top of book; when it moved, sends `best_bid_ask` to custom-feature subscribers. */
  private updateTop(assetId: string, market: string, top: Top, timestamp: string | undefined): void {
    const prev = this.tops.get(assetId);
    if (prev && prev.bid === top.bid && prev.ask === top.ask) return;
    this.tops.set(assetId, top);
    let frame: string | undefined;
    for (const c of this.clients) {
      if (!c.custom || !c.assets.has(assetId)) continue;
      frame ??= JSON.stringify({
        event_type: 'best_bid_ask',
        market,
        asset_id: assetId,
        best_bid: fromMicros(top.bid),
        best_ask: fromMicros(top.ask),
        spread: fromMicros(top.ask - top.bid),
        timestamp: timestamp ?? String(Date.now()),
      });
      this.send(c, frame);
    }
    if (frame) this.stats.bestBidAsk++;
  }

  /** Fault injection: cuts every market-channel connection without a close frame (clients see 1006). */
  dropAll(): number {
    const n = this.clients.size;
    for (const c of this.clients) c.socket.terminate();
    this.clients.clear();
    this.stats.faultDropped += n;
    return n;
  }

  /**
   * Fault injection: the connections open now stay open and answer PING, but get no data frames
   * for `seconds`. Later connections are healthy, so reconnecting (or a hot standby) heals it.
   */
  freeze(seconds: number): number {
    const until = Date.now() + Math.max(0, seconds) * 1000;
    for (const c of this.clients) c.frozenUntil = Math.max(c.frozenUntil, until);
    this.stats.faultFrozen += this.clients.size;
    return this.clients.size;
  }

  /** Ends every freeze now. */
  thaw(): void {
    for (const c of this.clients) c.frozenUntil = 0;
  }

  /** Connections currently inside a freeze window. */
  get frozenCount(): number {
    const now = Date.now();
    let n = 0;
    for (const c of this.clients) if (c.frozenUntil > now) n++;
    return n;
  }

  closeAll(): void {
    for (const c of this.clients) c.socket.close(1001, 'server stopping');
    this.clients.clear();
  }
}

/** Top of a book event, whatever order its levels come in (the wire has the best last). */
function topOfBook(b: Pick<WsBook, 'bids' | 'asks'>): Top {
  let bid = 0n;
  let ask = toMicros(1);
  for (const l of b.bids) {
    const p = toMicros(l.price);
    if (p > bid) bid = p;
  }
  for (const l of b.asks) {
    const p = toMicros(l.price);
    if (p < ask) ask = p;
  }
  return { bid, ask };
}

function assetIdsOf(ev: object): string[] {
  const e = ev as { assets_ids?: unknown; clob_token_ids?: unknown; asset_id?: unknown };
  const ids = Array.isArray(e.assets_ids) ? e.assets_ids : Array.isArray(e.clob_token_ids) ? e.clob_token_ids : [e.asset_id];
  return ids.filter((x): x is string => typeof x === 'string');
}
