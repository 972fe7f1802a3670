import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '@polybot/core';
import Type from 'typebox';
import Compile from 'typebox/compile';
import type { WebSocket } from 'ws';
import type { ApiKeyRecord, ApiKeyStore } from './auth.js';
import type { Exchange, UserEvent } from './exchange.js';

const MAX_MARKETS = 10_000;
const Str = (maxLength: number) => Type.String({ maxLength });
const Markets = Type.Array(Str(100), { maxItems: MAX_MARKETS });

/** First frame: raw L2 credentials plus an optional condition-id filter (PROTOCOL §2). */
const AuthFrame = Type.Object({
  auth: Type.Object({ apiKey: Str(200), secret: Str(200), passphrase: Str(200) }),
  markets: Type.Optional(Type.Union([Markets, Type.Null()])),
  type: Type.Optional(Type.String()),
});
const checkAuth = Compile(AuthFrame);
const checkOperation = Compile(
  Type.Object({ operation: Type.Union([Type.Literal('subscribe'), Type.Literal('unsubscribe')]), markets: Markets }),
);

/** WebSocket close codes the channel uses. */
export const CLOSE_POLICY = 1008;
export const CLOSE_SLOW = 1013;
export const CLOSE_GOING_AWAY = 1001;

export interface UserHubOptions {
  /** A client that stops reading is dropped rather than buffering without bound. */
  maxBufferedBytes?: number;
  /** A socket that never authenticates is closed after this long. */
  authTimeoutMs?: number;
}

export interface UserWsMetrics {
  /** Authenticated sockets. */
  clients: number;
  /** Sockets connected but not yet authenticated. */
  pending: number;
  /** Events delivered (an array frame counts each event it carries). */
  eventsSent: number;
  framesSent: number;
  /** Sockets closed with 1008 for missing, malformed or wrong credentials (or a timeout). */
  authFailures: number;
  /** Frames after auth that were not PING nor a valid subscribe/unsubscribe. */
  invalidFrames: number;
  slowDropped: number;
}

interface Client {
  socket: WebSocket;
  key?: ApiKeyRecord;
  /** Condition IDs; empty means every market of the account. */
  markets: Set<string>;
  /** Serialized events waiting for the end of the current tick. */
  queue: string[];
  timer?: NodeJS.Timeout;
  closed: boolean;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
/** Hashing first makes the comparison constant-time whatever the lengths. */
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));
/** Compared against when the key is unknown so that a miss costs the same as a wrong secret. */
const DUMMY = 'x'.repeat(44);

/**
 * The user channel (`/ws/user`): after an auth frame carrying valid L2 credentials, the order and
 * trade events of that key's account, optionally limited to some markets (condition IDs).
 */
export class UserHub {
  /** Authenticated clients by account address (lower case). */
  private readonly byAddress = new Map<string, Set<Client>>();
  private readonly pendingClients = new Set<Client>();
  private readonly dirty = new Set<Client>();
  private flushScheduled = false;
  private unsubscribe: (() => void) | undefined;
  private authed = 0;
  private readonly maxBuffered: number;
  private readonly authTimeoutMs: number;
  private readonly stats = { eventsSent: 0, framesSent: 0, authFailures: 0, invalidFrames: 0, slowDropped: 0 };

  constructor(
    private readonly exchange: Exchange,
    private readonly keys: ApiKeyStore,
    private readonly log: Logger,
    opts: UserHubOptions = {},
  ) {
    this.maxBuffered = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
    this.authTimeoutMs = opts.authTimeoutMs ?? 30_000;
  }

  get metrics(): UserWsMetrics {
    return { clients: this.authed, pending: this.pendingClients.size, ...this.stats };
  }

  accept(socket: WebSocket): void {
    const client: Client = { socket, markets: new Set(), queue: [], closed: false };
    this.pendingClients.add(client);
    client.timer = setTimeout(() => this.reject(client, 'auth timeout'), this.authTimeoutMs);
    client.timer.unref();
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (client.closed) return;
      const text = isBinary ? '' : Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
      try {
        if (client.key) this.onFrame(client, text);
        else this.onAuth(client, text);
      } catch (err) {
        // A frame must never take the server down; count it and carry on.
        this.stats.invalidFrames++;
        this.log.warn({ err }, 'user ws frame failed');
      }
    });
    socket.on('close', () => this.drop(client));
    socket.on('error', (err) => {
      this.log.debug({ err }, 'user ws client error');
      this.drop(client);
    });
  }

  private onAuth(client: Client, text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      // Includes PING: the venue closes a socket that heartbeats before authenticating.
      return this.reject(client, 'auth required');
    }
    if (!checkAuth.Check(msg)) return this.reject(client, 'auth required');
    if (msg.type !== undefined && msg.type.toLowerCase() !== 'user') return this.reject(client, 'wrong channel type');
    const { apiKey, secret, passphrase } = msg.auth;
    const rec = this.keys.get(apiKey);
    // Both comparisons always run: no early exit that would time which part was wrong.
    const okSecret = sameSecret(secret, rec?.secret ?? DUMMY);
    const okPass = sameSecret(passphrase, rec?.passphrase ?? DUMMY);
    if (!rec || !okSecret || !okPass) return this.reject(client, 'invalid api credentials');

    clearTimeout(client.timer);
    client.key = rec;
    for (const m of msg.markets ?? []) client.markets.add(m);
    this.pendingClients.delete(client);
    const address = rec.address.toLowerCase();
    let set = this.byAddress.get(address);
    if (!set) this.byAddress.set(address, (set = new Set()));
    set.add(client);
    this.authed++;
    this.unsubscribe ??= this.exchange.onUser((ev) => this.publish(ev));
  }

  private onFrame(client: Client, text: string): void {
    if (text === 'PING') {
      this.sendNow(client, 'PONG');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.stats.invalidFrames++;
      return;
    }
    if (!checkOperation.Check(msg)) {
      this.stats.invalidFrames++;
      return;
    }
    if (msg.operation === 'unsubscribe') {
      for (const m of msg.markets) client.markets.delete(m);
      return;
    }
    if (client.markets.size + msg.markets.length > MAX_MARKETS) {
      this.stats.invalidFrames++;
      return;
    }
    for (const m of msg.markets) client.markets.add(m);
  }

  private reject(client: Client, reason: string): void {
    if (client.closed) return;
    this.stats.authFailures++;
    this.drop(client);
    client.socket.close(CLOSE_POLICY, reason);
  }

  /** Forgets a client; the exchange listener goes with the last authenticated one. */
  private drop(client: Client): void {
    if (client.closed) return;
    client.closed = true;
    clearTimeout(client.timer);
    this.pendingClients.delete(client);
    this.dirty.delete(client);
    client.queue.length = 0;
    if (!client.key) return;
    const address = client.key.address.toLowerCase();
    const set = this.byAddress.get(address);
    if (set?.delete(client)) {
      this.authed--;
      if (set.size === 0) this.byAddress.delete(address);
    }
    if (this.authed === 0) {
      this.unsubscribe?.();
      this.unsubscribe = undefined;
    }
  }

  /** Queues an account event for its clients; everything queued in one tick leaves as one frame. */
  publish(ev: UserEvent): void {
    const set = this.byAddress.get(ev.address.toLowerCase());
    if (!set) return;
    let frame: string | undefined;
    for (const c of set) {
      if (c.markets.size > 0 && !c.markets.has(ev.event.market)) continue;
      c.queue.push((frame ??= JSON.stringify(ev.event)));
      this.dirty.add(c);
    }
    if (this.dirty.size > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const c of this.dirty) {
      const n = c.queue.length;
      if (n === 0) continue;
      const frame = n === 1 ? c.queue[0]! : `[${c.queue.join(',')}]`;
      c.queue.length = 0;
      if (this.sendNow(c, frame)) this.stats.eventsSent += n;
    }
    this.dirty.clear();
  }

  private sendNow(client: Client, frame: string): boolean {
    const s = client.socket;
    if (client.closed || s.readyState !== s.OPEN) return false;
    if (s.bufferedAmount > this.maxBuffered) {
      this.stats.slowDropped++;
      this.drop(client);
      s.close(CLOSE_SLOW, 'slow consumer');
      return false;
    }
    s.send(frame);
    this.stats.framesSent++;
    return true;
  }

  closeAll(): void {
    const all = [...this.pendingClients, ...[...this.byAddress.values()].flatMap((s) => [...s])];
    for (const c of all) {
      this.drop(c);
      c.socket.close(CLOSE_GOING_AWAY, 'server stopping');
    }
  }
}
