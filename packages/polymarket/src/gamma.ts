import Compile from 'typebox/compile';
import { GammaMarket, parseJsonArray } from './schemas.js';

/**
 * A failed public HTTP call to the venue (Gamma or CLOB public endpoints). `status` is 0 when no
 * HTTP answer arrived (network error, timeout, unparsable body); `retryable` follows the brief's
 * error classes: network, timeout, 425, 429 and 5xx are worth retrying, other 4xx are not.
 */
export class PublicApiError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  constructor(
    message: string,
    readonly url: string,
    readonly status: number,
    readonly body?: string,
    code?: string,
  ) {
    super(message);
    this.name = 'PublicApiError';
    this.code = code ?? (status === 0 ? 'network' : `http_${status}`);
    this.retryable = status === 0 || status === 425 || status === 429 || status >= 500;
  }
}

export interface PublicHttpOptions {
  /** Per-request timeout; the venue sometimes holds connections open for a long time. */
  timeoutMs?: number;
  /** Injected for tests or proxies; defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** GET a JSON document with a timeout and an error that names the URL and status. */
export async function getPublicJson(url: string, opts: PublicHttpOptions = {}): Promise<unknown> {
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let res: Response;
  try {
    res = await doFetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error;
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    // undici hides the useful part ("ECONNREFUSED") in `cause`.
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    throw new PublicApiError(
      timedOut ? `GET ${url} timed out after ${timeoutMs} ms` : `GET ${url} failed: ${e.message}${cause ? ` (${cause})` : ''}`,
      url,
      0,
      undefined,
      timedOut ? 'timeout' : 'network',
    );
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) {
    let detail = text.slice(0, 300);
    try {
      const j = JSON.parse(text) as { error?: unknown };
      if (typeof j.error === 'string') detail = j.error;
    } catch {
      // not JSON; keep the raw snippet
    }
    throw new PublicApiError(`GET ${url} answered HTTP ${res.status}${detail ? `: ${detail}` : ''}`, url, res.status, text.slice(0, 2000));
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new PublicApiError(`GET ${url} answered HTTP ${res.status} with a body that is not JSON`, url, res.status, text.slice(0, 2000), 'bad_body');
  }
}

export interface ListMarketsQuery {
  active?: boolean;
  closed?: boolean;
  /** Most markets to return in total (across pages). */
  limit?: number;
  /** Offset of the first market. */
  offset?: number;
  /** Markets asked per request; Gamma caps pages, so keep this modest. */
  pageSize?: number;
  /** Only these market slugs / condition ids (Gamma's `slug` and `condition_ids` filters). */
  slugs?: readonly string[];
  conditionIds?: readonly string[];
}

export interface ListEventsQuery {
  active?: boolean;
  closed?: boolean;
  tagSlug?: string;
  seriesId?: string;
  limit?: number;
  pageSize?: number;
}

/** A Gamma event reduced to what discovery needs: its series and its (valid) markets. */
export interface GammaEventInfo {
  id: string;
  slug: string;
  seriesSlugs: string[];
  markets: GammaMarket[];
}

export interface ListMarketsResult {
  markets: GammaMarket[];
  /** Objects that failed GammaMarket validation and were skipped. */
  invalid: number;
  pages: number;
}

const checkGammaMarket = Compile(GammaMarket);

/** Client for the Gamma API's market listing (public, no auth). */
export class GammaClient {
  private readonly base: string;
  /** Running count of invalid market objects seen by this client. */
  invalid = 0;

  constructor(
    baseUrl: string,
    private readonly opts: PublicHttpOptions = {},
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  /** Pages over `GET /markets` until `limit` markets were seen or a short page ends the list. */
  async listMarkets(q: ListMarketsQuery = {}): Promise<ListMarketsResult> {
    const limit = q.limit ?? 100;
    const pageSize = Math.max(1, Math.min(q.pageSize ?? 100, 500));
    let offset = q.offset ?? 0;
    let seen = 0;
    let invalid = 0;
    let pages = 0;
    const markets: GammaMarket[] = [];
    while (seen < limit) {
      const want = Math.min(pageSize, limit - seen);
      const params = new URLSearchParams();
      if (q.active !== undefined) params.set('active', String(q.active));
      if (q.closed !== undefined) params.set('closed', String(q.closed));
      for (const sl of q.slugs ?? []) params.append('slug', sl);
      for (const c of q.conditionIds ?? []) params.append('condition_ids', c);
      params.set('limit', String(want));
      params.set('offset', String(offset));
      const url = `${this.base}/markets?${params.toString()}`;
      const body = await getPublicJson(url, this.opts);
      // Gamma answers a bare array; tolerate a `{ data: [...] }` wrapper as well.
      const page = Array.isArray(body) ? body : Array.isArray((body as { data?: unknown })?.data) ? (body as { data: unknown[] }).data : null;
      if (!page) throw new PublicApiError(`GET ${url} did not answer a list of markets`, url, 200, undefined, 'bad_body');
      pages++;
      for (const item of page) {
        if (checkGammaMarket.Check(item)) markets.push(item);
        else invalid++;
      }
      seen += page.length;
      offset += page.length;
      if (page.length < want || page.length === 0) break;
    }
    this.invalid += invalid;
    return { markets, invalid, pages };
  }

  /** Pages over `GET /events`; markets that fail validation are skipped and counted. */
  async listEvents(q: ListEventsQuery = {}): Promise<{ events: GammaEventInfo[]; invalid: number }> {
    const limit = q.limit ?? 500;
    const pageSize = Math.max(1, Math.min(q.pageSize ?? 100, 500));
    let offset = 0;
    let invalid = 0;
    const events: GammaEventInfo[] = [];
    while (events.length < limit) {
      const want = Math.min(pageSize, limit - events.length);
      const params = new URLSearchParams();
      if (q.active !== undefined) params.set('active', String(q.active));
      if (q.closed !== undefined) params.set('closed', String(q.closed));
      if (q.tagSlug) params.set('tag_slug', q.tagSlug);
      if (q.seriesId) params.set('series_id', q.seriesId);
      params.set('limit', String(want));
      params.set('offset', String(offset));
      const url = `${this.base}/events?${params.toString()}`;
      const body = await getPublicJson(url, this.opts);
      if (!Array.isArray(body)) throw new PublicApiError(`GET ${url} did not answer a list of events`, url, 200, undefined, 'bad_body');
      for (const e of body as unknown[]) {
        if (typeof e !== 'object' || e === null) {
          invalid++;
          continue;
        }
        const ev = e as { id?: unknown; slug?: unknown; seriesSlug?: unknown; series?: unknown; markets?: unknown };
        const markets: GammaMarket[] = [];
        for (const m of Array.isArray(ev.markets) ? ev.markets : []) {
          if (checkGammaMarket.Check(m)) markets.push(m);
          else invalid++;
        }
        const seriesSlugs = new Set<string>();
        if (typeof ev.seriesSlug === 'string') seriesSlugs.add(ev.seriesSlug);
        for (const sr of Array.isArray(ev.series) ? ev.series : []) {
          const slug = (sr as { slug?: unknown } | null)?.slug;
          if (typeof slug === 'string') seriesSlugs.add(slug);
        }
        events.push({ id: String(ev.id ?? ''), slug: String(ev.slug ?? ''), seriesSlugs: [...seriesSlugs], markets });
      }
      offset += body.length;
      if (body.length < want || body.length === 0) break;
    }
    this.invalid += invalid;
    return { events, invalid };
  }
}

export interface MarketToken {
  tokenId: string;
  outcome: string;
  outcomeIndex: number;
}

/** A Gamma market reduced to what the registry (`markets`, `market_tokens`) keeps. */
export interface MarketInfo {
  conditionId: string;
  gammaId: string;
  question: string;
  slug: string;
  active: boolean;
  closed: boolean;
  negRisk: boolean;
  /** Decimal strings: Gamma sends numbers, but the rest of the system computes exactly. */
  tickSize: string;
  minOrderSize: string;
  endDate: string | null;
  tokens: MarketToken[];
}

/** Number from Gamma → plain decimal string ("0.001", never "1e-3"). */
function decimalString(n: number | undefined, fallback: string): string {
  if (n === undefined || !Number.isFinite(n) || n < 0) return fallback;
  const s = String(n);
  if (!/e/i.test(s)) return s;
  return n.toFixed(10).replace(/0+$/, '').replace(/\.$/, '');
}

/**
 * Maps a Gamma market to a MarketInfo. `outcomes` and `clobTokenIds` are JSON strings aligned by
 * index; a token without a matching outcome label gets "Outcome <i>" rather than being dropped.
 */
export function toMarketInfo(m: GammaMarket): MarketInfo {
  const outcomes = parseJsonArray(m.outcomes);
  const tokenIds = parseJsonArray(m.clobTokenIds);
  return {
    conditionId: m.conditionId,
    gammaId: m.id,
    question: m.question,
    slug: m.slug,
    active: m.active,
    closed: m.closed,
    negRisk: m.negRisk ?? false,
    tickSize: decimalString(m.orderPriceMinTickSize, '0.01'),
    minOrderSize: decimalString(m.orderMinSize, '5'),
    endDate: m.endDate ?? null,
    tokens: tokenIds
      .filter((t) => t.length > 0)
      .map((tokenId, i) => ({ tokenId, outcome: outcomes[i] ?? `Outcome ${i}`, outcomeIndex: i })),
  };
}
