import { MarketSubscribe } from '@polybot/polymarket';
import type { Logger } from '@polybot/core';
import Compile from 'typebox/compile';
import type { WebSocket } from 'ws';
import type { Exchange, ExchangeEvent } from './exchange.js';

const checkSubscribe = Compile(MarketSubscribe);

/** A client that stops reading is dropped rather than buffering without bound. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

interface Client {
  socket: WebSocket;
  assets: Set<string>;
  /** Until this time (ms) the client gets no data frames: a silent freeze, PONG still flows. */
  frozenUntil: number;
}

/**
 * The market channel (`/ws/market`): `book` snapshots on subscribe, then `price_change`,
 * `last_trade_price` and post-trade `book` events, only for the assets a client subscribed to.
 */
export class MarketHub {
  private readonly clients = new Set<Client>();
  readonly stats = { framesSent: 0, invalidFrames: 0, slowDropped: 0, faultDropped: 0, faultFrozen: 0, framesSwallowed: 0 };

  constructor(
    private readonly exchange: Exchange,
    private readonly log: Logger,
  ) {}

  get clientCount(): number {
    return this.clients.size;
  }

  accept(socket: WebSocket): void {
    const client: Client = { socket, assets: new Set(), frozenUntil: 0 };
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
    const fresh = msg.assets_ids.filter((id) => !client.assets.has(id) && this.exchange.hasToken(id));
    for (const id of fresh) client.assets.add(id);
    if (msg.initial_dump === false || fresh.length === 0) return;
    // Initial snapshots travel batched in one array frame, as the venue does.
    const books = fresh.map((id) => this.exchange.wsBook(id)).filter((b) => b !== undefined);
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
    if (s.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.stats.slowDropped++;
      this.clients.delete(client);
      s.close(1013, 'slow consumer');
      return;
    }
    s.send(frame);
    this.stats.framesSent++;
  }

  /** Fans an exchange event out to the clients subscribed to its asset(s). */
  publish(ev: ExchangeEvent): void {
    if (this.clients.size === 0) return;
    if (ev.event_type === 'price_change') {
      let full: string | undefined;
      for (const c of this.clients) {
        const mine = ev.price_changes.filter((p) => c.assets.has(p.asset_id));
        if (mine.length === 0) continue;
        if (mine.length === ev.price_changes.length) this.send(c, (full ??= JSON.stringify(ev)));
        else this.send(c, JSON.stringify({ ...ev, price_changes: mine }));
      }
      return;
    }
    let frame: string | undefined;
    for (const c of this.clients) if (c.assets.has(ev.asset_id)) this.send(c, (frame ??= JSON.stringify(ev)));
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
