import { toMarketInfo, type GammaClient, type GammaMarket, type MarketInfo } from '@polybot/polymarket';
import type { Adapter, FrameSink } from '../pipeline/types.js';

export interface Selection {
  /** Market slugs or condition ids (0x…) to follow; with tags and series, replaces "every active market". */
  watch: string[];
  tags: string[];
  series: string[];
  minVolume: number;
  minLiquidity: number;
  /** Only markets ending within this many hours (0 = any). */
  endWithinHours: number;
  maxMarkets: number;
}

export interface DiscoveryOptions {
  gamma: GammaClient;
  selection: Selection;
  intervalMs: number;
  sink: FrameSink;
  log: { info(o: object, m?: string): void; warn(o: object, m?: string): void };
}

/** Parses a comma list setting ("a, b,,c" → ["a","b","c"]). */
export const csv = (s: string | undefined): string[] =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);

/**
 * Gamma discovery: pages through the markets the selection asks for (every active market by
 * default; or a watch list, tags and series), keeps those with an order book that pass the volume,
 * liquidity and end-date filters, and hands the result to the pipeline as one `gamma` frame — the
 * list of markets the scanner follows — so a recording knows which books it holds. Runs at start
 * and then on an interval, sooner while it keeps failing, so new markets are picked up.
 */
export class DiscoveryAdapter implements Adapter {
  readonly name = 'gamma';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  lastError: string | undefined;
  readonly counters = { discoveries: 0, discovery_errors: 0, invalid_markets: 0, markets: 0 };

  constructor(private readonly opts: DiscoveryOptions) {}

  /** Runs one discovery now (the first one is awaited by the service's start). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.runOnce();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  runOnce(): Promise<void> {
    if (!this.running) {
      this.running = this.discover().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    // Retry sooner while discovery keeps failing (e.g. the venue is still starting).
    const delay = this.lastError ? Math.min(this.opts.intervalMs, 5000) : this.opts.intervalMs;
    this.timer = setTimeout(() => {
      void this.runOnce().finally(() => this.schedule());
    }, delay);
  }

  private async candidates(): Promise<{ markets: GammaMarket[]; invalid: number }> {
    const { gamma, selection: sel } = this.opts;
    if (sel.watch.length === 0 && sel.tags.length === 0 && sel.series.length === 0) {
      const r = await gamma.listMarkets({ active: true, closed: false, limit: sel.maxMarkets });
      return { markets: r.markets, invalid: r.invalid };
    }
    const markets: GammaMarket[] = [];
    let invalid = 0;
    const ids = sel.watch.filter((w) => /^0x[0-9a-fA-F]+$/.test(w));
    const slugs = sel.watch.filter((w) => !/^0x[0-9a-fA-F]+$/.test(w));
    if (slugs.length > 0) {
      const r = await gamma.listMarkets({ slugs, closed: false, limit: slugs.length * 2 });
      markets.push(...r.markets);
      invalid += r.invalid;
    }
    if (ids.length > 0) {
      const r = await gamma.listMarkets({ conditionIds: ids, closed: false, limit: ids.length * 2 });
      markets.push(...r.markets);
      invalid += r.invalid;
    }
    for (const tag of sel.tags) {
      const r = await gamma.listEvents({ tagSlug: tag, active: true, closed: false });
      for (const e of r.events) markets.push(...e.markets);
      invalid += r.invalid;
    }
    if (sel.series.length > 0) {
      const r = await gamma.listEvents({ active: true, closed: false });
      for (const e of r.events) if (e.seriesSlugs.some((s) => sel.series.includes(s))) markets.push(...e.markets);
      invalid += r.invalid;
    }
    return { markets, invalid };
  }

  private async discover(): Promise<void> {
    const sel = this.opts.selection;
    try {
      const { markets, invalid } = await this.candidates();
      this.counters.invalid_markets += invalid;
      const endBefore = sel.endWithinHours > 0 ? Date.now() + sel.endWithinHours * 3_600_000 : Infinity;
      const seen = new Set<string>();
      const found: MarketInfo[] = [];
      for (const gm of markets) {
        if (found.length >= sel.maxMarkets) break;
        if (gm.enableOrderBook === false || seen.has(gm.conditionId)) continue;
        if ((gm.volumeNum ?? Number(gm.volume ?? 0)) < sel.minVolume) continue;
        if ((gm.liquidityNum ?? Number(gm.liquidity ?? 0)) < sel.minLiquidity) continue;
        if (endBefore !== Infinity) {
          const end = gm.endDate ? Date.parse(gm.endDate) : NaN;
          if (!(end <= endBefore)) continue;
        }
        const m = toMarketInfo(gm);
        if (!m.active || m.closed || m.tokens.length === 0) continue;
        seen.add(gm.conditionId);
        found.push(m);
      }
      if (this.stopped) return;
      this.counters.discoveries++;
      this.counters.markets = found.length;
      this.lastError = undefined;
      this.opts.sink({ source: 'gamma', conn: 0, recvTs: Date.now(), data: JSON.stringify(found) });
    } catch (err) {
      this.counters.discovery_errors++;
      this.lastError = (err as Error).message;
      this.opts.log.warn({ err: this.lastError }, 'market discovery failed');
    }
  }

  stats(): Record<string, number | string> {
    return { ...this.counters };
  }
}
