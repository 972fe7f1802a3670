import { MarketWsClient, type MarketWsLogger, type MarketWsStatus } from '@polybot/polymarket';
import type { Adapter, FrameSink } from '../pipeline/types.js';

export interface MarketChannelOptions {
  /** Venue WebSocket base URL (`/ws/market` is appended). */
  url: string;
  sink: FrameSink;
  /** Most assets per connection; the venue caps subscriptions per socket (500) and big sockets lag. */
  shardSize: number;
  /** No data on a connection for this long → reconnect. */
  staleMs: number;
  pingIntervalMs: number;
  /** A shard's connection went down or came back; `assets` are the ones it carries. */
  onShardStatus?: (shard: number, status: MarketWsStatus, assets: readonly string[]) => void;
  log: MarketWsLogger & { child?(b: object): MarketWsLogger };
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * The market channel, sharded: assets are spread over connections of at most `shardSize` each, so
 * one slow or dropped socket touches only its own books. Each shard subscribes dynamically,
 * sends text `PING`s, watches for data (not just PONGs) and reconnects with backoff and jitter,
 * replaying its own subscription once. Frames go to the sink verbatim with their shard number.
 */
export class MarketChannelAdapter implements Adapter {
  readonly name = 'market';
  private readonly shards: Array<MarketWsClient | undefined> = [];
  private readonly shardOf = new Map<string, number>();
  private started = false;

  constructor(private readonly opts: MarketChannelOptions) {}

  /** Follows exactly these assets: new ones go to shards with room, dropped ones are unsubscribed. */
  setAssets(assets: Iterable<string>): { added: string[]; removed: string[] } {
    const want = new Set(assets);
    const removed = [...this.shardOf.keys()].filter((a) => !want.has(a));
    const added = [...want].filter((a) => !this.shardOf.has(a));
    const byShard = new Map<number, string[]>();
    for (const a of removed) {
      const s = this.shardOf.get(a)!;
      this.shardOf.delete(a);
      byShard.set(s, [...(byShard.get(s) ?? []), a]);
    }
    for (const [s, list] of byShard) this.shards[s]?.unsubscribe(list);
    this.place(added);
    return { added, removed };
  }

  /** Adds assets without dropping any (round markets join between discoveries). */
  addAssets(assets: Iterable<string>): string[] {
    const added = [...new Set(assets)].filter((a) => !this.shardOf.has(a));
    this.place(added);
    return added;
  }

  removeAssets(assets: Iterable<string>): void {
    const keep = new Set(this.shardOf.keys());
    for (const a of assets) keep.delete(a);
    this.setAssets(keep);
  }

  private place(added: string[]): void {
    const counts = this.shards.map((c) => c?.subscriptions.length ?? 0);
    const perShard = new Map<number, string[]>();
    for (const a of added) {
      let s = counts.findIndex((n) => n < this.opts.shardSize);
      if (s < 0) {
        s = counts.length;
        counts.push(0);
      }
      counts[s]!++;
      this.shardOf.set(a, s);
      perShard.set(s, [...(perShard.get(s) ?? []), a]);
    }
    for (const [s, list] of perShard) {
      const client = this.shards[s] ?? this.createShard(s);
      client.subscribe(list);
      if (this.started) client.start();
    }
  }

  private createShard(shard: number): MarketWsClient {
    const log = this.opts.log.child?.({ shard }) ?? this.opts.log;
    const client = new MarketWsClient({
      url: this.opts.url,
      onFrame: (data, recvTs) => this.opts.sink({ source: 'market', conn: shard, recvTs, data }),
      onStatus: (st) => this.opts.onShardStatus?.(shard, st, client.subscriptions),
      log,
      staleMs: this.opts.staleMs,
      pingIntervalMs: this.opts.pingIntervalMs,
      // best_bid_ask, new_market and market_resolved come only with the custom feature.
      customFeatureEnabled: true,
      ...(this.opts.initialBackoffMs !== undefined ? { initialBackoffMs: this.opts.initialBackoffMs } : {}),
      ...(this.opts.maxBackoffMs !== undefined ? { maxBackoffMs: this.opts.maxBackoffMs } : {}),
    });
    this.shards[shard] = client;
    return client;
  }

  start(): void {
    this.started = true;
    for (const c of this.shards) if (c && c.subscriptions.length > 0) c.start();
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all(this.shards.map((c) => c?.close()));
    this.shards.length = 0;
    this.shardOf.clear();
  }

  /** Shard number of an asset (undefined if not followed). */
  shardOfAsset(asset: string): number | undefined {
    return this.shardOf.get(asset);
  }

  get assets(): number {
    return this.shardOf.size;
  }

  /** Whether every shard with assets is connected. */
  get connected(): boolean {
    return this.shards.every((c) => !c || c.subscriptions.length === 0 || c.connected);
  }

  /** Largest time since the last data frame over connected shards with assets. */
  get maxDataAgeMs(): number {
    let age = 0;
    for (const c of this.shards) if (c && c.subscriptions.length > 0 && c.connected) age = Math.max(age, c.lastDataAgeMs);
    return age;
  }

  stats(): Record<string, number | string> {
    let reconnects = 0;
    let stale = 0;
    let frames = 0;
    let connected = 0;
    let shards = 0;
    for (const c of this.shards) {
      if (!c) continue;
      shards++;
      const s = c.stats;
      reconnects += s.reconnects;
      stale += s.stale;
      frames += s.frames;
      if (c.connected) connected++;
    }
    return { shards, shards_connected: connected, assets: this.shardOf.size, reconnects, stale_reconnects: stale, frames };
  }
}
