import { createHash } from 'node:crypto';
import { CRYPTO_FEES, derivedTokenId, iso, type SimEventInfo, type SimMarket, type SimSeriesInfo } from './markets.js';
import type { RefAsset } from './rtds.js';

/**
 * Crypto up/down rounds (PROTOCOL.md §6): per asset a series `<asset>-up-or-down-<len>`, per window
 * an event whose slug = ticker = market slug = `<asset>-updown-<len>-<unix seconds of the start>`,
 * the start a multiple of the round length. Outcomes ["Up","Down"]; Up wins if the Chainlink
 * reference price at the end ≥ the price at the start. Every id is a hash of the seed and the slug,
 * so a round is the same object whenever it is listed.
 */

export interface RoundsOptions {
  /** Assets with rounds (tickers, default BTC, ETH, SOL, XRP). */
  assets?: string[];
  /** Round length, seconds (default 900; a divisor of 86400 keeps windows aligned to the day). */
  roundSeconds?: number;
  /** Windows listed ahead of the current one (default 2). */
  ahead?: number;
  /** Resolved rounds kept per asset before the oldest are forgotten (default 96). */
  keepClosed?: number;
}

export const DEFAULT_ROUND_SECONDS = 900;
export const DEFAULT_AHEAD = 2;
export const DEFAULT_KEEP_CLOSED = 96;

/** "15m", "5m", "1h", "30s": the length label of slugs and `recurrence`. */
export function lengthLabel(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

export const seriesSlug = (a: RefAsset, seconds: number): string => `${a.slug}-up-or-down-${lengthLabel(seconds)}`;

/** `btc-updown-15m-1774278900`. */
export const roundSlug = (a: RefAsset, seconds: number, startS: number): string =>
  `${a.slug}-updown-${lengthLabel(seconds)}-${startS}`;

export function roundSeries(a: RefAsset, assetIndex: number, seconds: number): SimSeriesInfo {
  const slug = seriesSlug(a, seconds);
  return {
    id: String(10_000 + assetIndex),
    slug,
    ticker: slug,
    title: `${a.asset} Up or Down ${lengthLabel(seconds)}`,
    recurrence: lengthLabel(seconds),
    createdAt: '2025-11-21T21:46:22Z',
  };
}

const ET = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', month: 'long', day: 'numeric' });
const ET_TIME = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', minute: '2-digit', hour12: true });
const clock = (ms: number) => ET_TIME.format(new Date(ms)).replace(' ', '');

/** "Bitcoin Up or Down - March 12, 5:20AM-5:25AM ET", as the venue titles its rounds. */
export function roundTitle(a: RefAsset, startS: number, seconds: number): string {
  const s = startS * 1000;
  return `${a.name} Up or Down - ${ET.format(new Date(s))}, ${clock(s)}-${clock(s + seconds * 1000)} ET`;
}

export function roundDescription(a: RefAsset): string {
  const stream = a.chainlink.replace('/', '-');
  const pair = a.chainlink.toUpperCase();
  return (
    `This market will resolve to "Up" if the ${a.name} price at the end of the time range specified in the title is greater than or equal to the price at the beginning of that range. Otherwise, it will resolve to "Down".\n` +
    `The resolution source for this market is information from Chainlink, specifically the ${pair} data stream available at https://data.chain.link/streams/${stream}.\n` +
    `Please note that this market is about the price according to Chainlink data stream ${pair}, not according to other sources or spot markets. Simulated round (PolyBot sim).`
  );
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Ids of a round: Gamma market and event ids from the window number (unique per asset), hashes for the rest. */
export function roundMarket(opts: {
  seed: number;
  asset: RefAsset;
  assetIndex: number;
  seconds: number;
  startS: number;
  /** When the round was listed (ms): Gamma `startDate`/`createdAt`. */
  listedMs: number;
  index: number;
}): SimMarket {
  const { seed, asset: a, assetIndex, seconds, startS } = opts;
  const slug = roundSlug(a, seconds, startS);
  const window = Math.floor(startS / seconds) % 1_000_000;
  const n = window * 8 + assetIndex;
  const label = `round:${seed}:${slug}`;
  const listed = iso(Math.floor(opts.listedMs / 1000) * 1000);
  const end = iso((startS + seconds) * 1000);
  const series = roundSeries(a, assetIndex, seconds);
  const description = roundDescription(a);
  const title = roundTitle(a, startS, seconds);
  const resolutionSource = `https://data.chain.link/streams/${a.chainlink.replace('/', '-')}`;
  const event: SimEventInfo = {
    id: String(10_000_000 + n),
    slug,
    ticker: slug,
    title,
    description,
    resolutionSource,
    startDate: listed,
    createdAt: listed,
    endDate: end,
    startTime: iso(startS * 1000),
    negRisk: false,
    series,
    tags: [
      { id: '21', label: 'Crypto', slug: 'crypto' },
      { id: '102127', label: 'Up or Down', slug: 'up-or-down' },
      { id: `${lengthLabel(seconds).toUpperCase()}`, label: lengthLabel(seconds).toUpperCase(), slug: lengthLabel(seconds) },
    ],
  };
  return {
    index: opts.index,
    gammaId: String(20_000_000 + n),
    conditionId: `0x${sha(`${label}:condition`)}`,
    questionId: `0x${sha(`${label}:question`)}`,
    slug,
    question: title,
    description,
    outcomes: ['Up', 'Down'],
    tokenIds: [derivedTokenId(`${label}:up`), derivedTokenId(`${label}:down`)],
    tickSize: 10_000n,
    minOrderSize: 5_000_000n,
    negRisk: false,
    startDate: listed,
    endDate: end,
    createdAt: listed,
    anchor: 500_000,
    feeSchedule: CRYPTO_FEES,
    feeType: 'crypto_fees',
    event,
    eventStartTime: iso(startS * 1000),
    resolutionSource,
    tags: ['crypto', 'up-or-down', lengthLabel(seconds)],
  };
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 through erf), accurate to ~1e-7. */
export function normCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

/**
 * Fair value of "Up" (micro units, clamped to 0.01–0.99): the probability that a driftless
 * log-normal walk with per-second volatility `sigma` ends at or above `start` given it is at
 * `price` with `remainingS` seconds to go.
 */
export function upFair(price: number, start: number, sigma: number, remainingS: number): number {
  const x = Math.log(price / start);
  let p: number;
  if (remainingS <= 0) p = x >= 0 ? 1 : 0;
  else p = normCdf(x / (sigma * Math.sqrt(remainingS)));
  return Math.min(990_000, Math.max(10_000, Math.round(p * 1_000_000)));
}
