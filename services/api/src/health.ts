import type { StatusMessage } from '@polybot/protocol';

export type HealthStatus = 'ok' | 'degraded' | 'down';

export interface ServiceHealth {
  /** A lifecycle state, or `down` when the service never reported or went silent. */
  state: string;
  /** When the current state began (ms); null when never seen. */
  since: number | null;
  /** When the API last heard from it (ms, API clock); null when never seen. */
  last_seen: number | null;
  pid: number | null;
  message?: string;
  metrics: Record<string, number | string>;
}

export interface HealthReport {
  status: HealthStatus;
  services: Record<string, ServiceHealth>;
}

interface Seen {
  msg: StatusMessage;
  lastSeen: number;
}

export interface SelfStatus {
  name: string;
  since: number;
  metrics: () => Record<string, number | string>;
}

export interface StatusEntry {
  msg: StatusMessage;
  /** When it arrived (ms, API clock). */
  lastSeen: number;
  /** Silent for more than 3 × its `interval_ms`: the same rule that makes `/api/health` say `down`. */
  stale: boolean;
}

export interface StatusSnapshot {
  /** The registry's clock when the snapshot was taken (ms). */
  now: number;
  /** The latest heartbeat of every service except the API itself. */
  services: Map<string, StatusEntry>;
  expected: readonly string[];
  /** The API answering the request, with its live figures. */
  self?: { name: string; since: number; metrics: Record<string, number | string> };
}

/** Stale after this many missed heartbeats. */
const STALE_INTERVALS = 3;

/** Builds /api/health from the `status.*` heartbeats of every process. */
export class HealthRegistry {
  private readonly seen = new Map<string, Seen>();
  received = 0;

  constructor(
    private readonly expected: readonly string[],
    private readonly self?: SelfStatus,
    private readonly now: () => number = Date.now,
  ) {}

  record(msg: StatusMessage): void {
    this.received++;
    // Received time on our clock: staleness must not depend on the sender's clock.
    this.seen.set(msg.service, { msg, lastSeen: this.now() });
  }

  /** The stored heartbeats for `/metrics`. */
  snapshot(): StatusSnapshot {
    const now = this.now();
    const services = new Map<string, StatusEntry>();
    for (const [name, { msg, lastSeen }] of this.seen) {
      if (name === this.self?.name) continue;
      services.set(name, { msg, lastSeen, stale: now - lastSeen > STALE_INTERVALS * msg.interval_ms });
    }
    const self = this.self ? { name: this.self.name, since: this.self.since, metrics: this.self.metrics() } : undefined;
    return { now, services, expected: this.expected, ...(self ? { self } : {}) };
  }

  report(): HealthReport {
    const now = this.now();
    const services: Record<string, ServiceHealth> = {};
    const required = new Set(this.expected);
    let live = 0;

    for (const [name, { msg, lastSeen }] of this.seen) {
      // A strategy is expected once seen, unless it was deliberately stopped.
      if (name.startsWith('strategy:') && msg.state !== 'stopped') required.add(name);
      const stale = now - lastSeen > STALE_INTERVALS * msg.interval_ms;
      if (!stale && name !== this.self?.name) live++;
      services[name] = {
        state: stale ? 'down' : msg.state,
        since: stale ? lastSeen : msg.since,
        last_seen: lastSeen,
        pid: msg.pid,
        ...(stale
          ? { message: `no status for ${Math.round((now - lastSeen) / 1000)} s (last state ${msg.state})` }
          : msg.message !== undefined
            ? { message: msg.message }
            : {}),
        metrics: msg.metrics,
      };
    }

    // The API answering this request is running by definition, whether or not the bus works.
    if (this.self) {
      services[this.self.name] = {
        state: 'running',
        since: this.self.since,
        last_seen: now,
        pid: process.pid,
        metrics: this.self.metrics(),
      };
    }

    for (const name of required) {
      services[name] ??= { state: 'down', since: null, last_seen: null, pid: null, message: 'no status received', metrics: {} };
    }

    const othersRequired = [...required].some((n) => n !== this.self?.name);
    const allRunning = [...required].every((n) => services[n]?.state === 'running');
    const status: HealthStatus = othersRequired && live === 0 ? 'down' : allRunning ? 'ok' : 'degraded';
    return { status, services };
  }
}
