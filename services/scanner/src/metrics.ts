/**
 * Per-event-type counters for status messages and the API's `/metrics`: events/s, venue-to-publish
 * lag percentiles, invalid events. Keys are `<name>:<type>` so the API turns them into one labelled
 * family per name (`polybot_scanner_events_per_s{type="book"}`).
 */
const LAG_SAMPLES = 1024;

interface TypeStats {
  events: number;
  invalid: number;
  lags: Float64Array;
  lagCount: number;
  rate: number;
  rateEvents: number;
}

export class TypeMetrics {
  private readonly byType = new Map<string, TypeStats>();
  private rateAt = Date.now();

  private of(type: string): TypeStats {
    let s = this.byType.get(type);
    if (!s) {
      s = { events: 0, invalid: 0, lags: new Float64Array(LAG_SAMPLES), lagCount: 0, rate: 0, rateEvents: 0 };
      this.byType.set(type, s);
    }
    return s;
  }

  /** One event of `type` applied; `lagMs` = publish time - venue time (skipped when not meaningful). */
  event(type: string, lagMs?: number): void {
    const s = this.of(type);
    s.events++;
    if (lagMs !== undefined && Number.isFinite(lagMs)) {
      s.lags[s.lagCount % LAG_SAMPLES] = lagMs;
      s.lagCount++;
    }
  }

  invalid(type: string): void {
    this.of(type).invalid++;
  }

  total(type?: string): number {
    if (type !== undefined) return this.byType.get(type)?.events ?? 0;
    let n = 0;
    for (const s of this.byType.values()) n += s.events;
    return n;
  }

  /** Flat metrics; rates are updated at most once a second. */
  snapshot(now = Date.now()): Record<string, number> {
    const out: Record<string, number> = {};
    const dt = now - this.rateAt;
    const refresh = dt >= 1000;
    for (const [type, s] of this.byType) {
      if (refresh) {
        s.rate = ((s.events - s.rateEvents) * 1000) / dt;
        s.rateEvents = s.events;
      }
      out[`events_total:${type}`] = s.events;
      out[`events_per_s:${type}`] = Math.round(s.rate * 10) / 10;
      if (s.invalid > 0) out[`invalid_total:${type}`] = s.invalid;
      const n = Math.min(s.lagCount, LAG_SAMPLES);
      if (n > 0) {
        const sorted = Array.from(s.lags.subarray(0, n)).sort((a, b) => a - b);
        out[`lag_p50_ms:${type}`] = sorted[Math.floor((n - 1) * 0.5)]!;
        out[`lag_p99_ms:${type}`] = sorted[Math.floor((n - 1) * 0.99)]!;
      }
    }
    if (refresh) this.rateAt = now;
    return out;
  }
}
