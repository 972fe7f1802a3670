/**
 * The venue's dead-man switch (PROTOCOL.md §3): each account chains heartbeat ids; once an account
 * has sent one and then stays silent past the timeout, its open orders are cancelled (the callback)
 * and its chain starts over from "".
 */
import { randomUUID } from 'node:crypto';

/** 10 s venue timeout (third-party clones; not documented officially) + 5 s buffer. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 15_000;

export interface HeartbeatTrackerOptions {
  timeoutMs?: number;
  /** Clock in ms; injectable so tests need no real waiting. */
  now?: () => number;
  /** Id generator; random UUIDs by default. */
  newId?: () => string;
  /** Called once per expiry with the account's lower-case address. */
  onExpired?: (address: string) => void;
}

export type HeartbeatResult = { ok: true; heartbeatId: string } | { ok: false; expected: string };

interface Chain {
  /** The id the next heartbeat must carry. */
  expected: string;
  lastBeat: number;
}

export class HeartbeatTracker {
  readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly onExpired: ((address: string) => void) | undefined;
  private readonly chains = new Map<string, Chain>();
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: HeartbeatTrackerOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.now = opts.now ?? Date.now;
    this.newId = opts.newId ?? randomUUID;
    this.onExpired = opts.onExpired;
  }

  /**
   * `POST /v1/heartbeats`: `id` must be the one last returned ("" to start). A mismatch leaves the
   * chain (and the liveness clock) untouched and reports the id expected.
   */
  beat(address: string, id: string): HeartbeatResult {
    const key = address.toLowerCase();
    const now = this.now();
    // Expire before judging the id, so the outcome never depends on when the sweep timer last ran.
    this.expireIfStale(key, now);
    const chain = this.chains.get(key);
    const expected = chain?.expected ?? '';
    if (id !== expected) return { ok: false, expected };
    const heartbeatId = this.newId();
    this.chains.set(key, { expected: heartbeatId, lastBeat: now });
    return { ok: true, heartbeatId };
  }

  /** Legacy `POST /heartbeats`: proves liveness (and arms the switch) without touching the id chain. */
  touch(address: string): void {
    const key = address.toLowerCase();
    const now = this.now();
    this.expireIfStale(key, now);
    const chain = this.chains.get(key);
    this.chains.set(key, { expected: chain?.expected ?? '', lastBeat: now });
  }

  /** The id the account's next heartbeat must carry; undefined when it has no live chain. */
  expectedId(address: string): string | undefined {
    return this.chains.get(address.toLowerCase())?.expected;
  }

  /** Fires the callback for every account silent longer than the timeout; returns them. */
  sweep(): string[] {
    const now = this.now();
    const expired: string[] = [];
    for (const key of [...this.chains.keys()]) if (this.expireIfStale(key, now)) expired.push(key);
    return expired;
  }

  /** Sweeps periodically; the timer is unref'd so it never keeps the process alive. */
  start(intervalMs = Math.min(1000, Math.max(50, Math.floor(this.timeoutMs / 10)))): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private expireIfStale(key: string, now: number): boolean {
    const chain = this.chains.get(key);
    if (!chain || now - chain.lastBeat <= this.timeoutMs) return false;
    // Delete first: the callback fires exactly once, even if it throws or re-enters.
    this.chains.delete(key);
    this.onExpired?.(key);
    return true;
  }
}
