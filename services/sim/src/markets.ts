import { createHash } from 'node:crypto';
import { Rng } from './rng.js';

/** Static description of one simulated binary market (everything Gamma and the CLOB report). */
export interface SimMarket {
  index: number;
  gammaId: string;
  conditionId: string;
  questionId: string;
  slug: string;
  question: string;
  description: string;
  outcomes: [string, string];
  /** Token ids, index-aligned with `outcomes` (YES first). */
  tokenIds: [string, string];
  tickSize: bigint;
  minOrderSize: bigint;
  negRisk: boolean;
  startDate: string;
  endDate: string;
  createdAt: string;
  /** Where the hidden fair value of YES starts and reverts to, micro units. */
  anchor: number;
  /** Taker fee schedule (V2 era): fee = shares × rate × (p·(1−p))^exponent; undefined = fee-free. */
  feeSchedule?: FeeSchedule;
  /** Gamma `feeType` when fees are enabled (default "crypto_fees"). */
  feeType?: string;
  /** The parent event when it groups several markets or belongs to a real series (rounds, neg-risk). */
  event?: SimEventInfo;
  /** Round start (ISO) for recurring markets (Gamma `eventStartTime`). */
  eventStartTime?: string;
  resolutionSource?: string;
  /** Candidate name inside a multi-market event (Gamma `groupItemTitle`). */
  groupItemTitle?: string;
  negRiskMarketID?: string;
  negRiskRequestID?: string;
  tags?: string[];
}

/** A Gamma series the sim publishes (crypto up/down rounds). */
export interface SimSeriesInfo {
  id: string;
  slug: string;
  ticker: string;
  title: string;
  recurrence: string;
  createdAt: string;
}

/** A Gamma event grouping markets (a neg-risk event, or one round of a series). */
export interface SimEventInfo {
  id: string;
  slug: string;
  ticker: string;
  title: string;
  description: string;
  resolutionSource: string;
  startDate: string;
  createdAt: string;
  endDate: string;
  /** Gamma `startTime` (round start), when known. */
  startTime?: string;
  negRisk: boolean;
  negRiskMarketID?: string;
  series?: SimSeriesInfo;
  tags: Array<{ id: string; label: string; slug: string }>;
}

export interface FeeSchedule {
  /** Decimal string, e.g. "0.25". */
  rate: string;
  exponent: number;
  takerOnly: boolean;
}

/** The crypto up/down schedule; every fourth market (index 3, 7, 11, …) charges it. */
export const CRYPTO_FEES: FeeSchedule = { rate: '0.25', exponent: 2, takerOnly: true };

const SUBJECTS = [
  'Bitcoin', 'Ethereum', 'Solana', 'the Fed', 'the S&P 500', 'Gold', 'Oil', 'Nvidia', 'Apple', 'Tesla',
  'the ECB', 'Germany', 'Brazil', 'Japan', 'OpenAI', 'SpaceX', 'Argentina', 'the UK', 'India', 'Canada',
];
const PREDICATES = [
  'reach a new all-time high', 'close the year higher', 'announce a rate cut', 'beat analyst expectations',
  'win the championship', 'pass the bill', 'launch the product', 'exceed the consensus forecast',
  'be above the threshold', 'hold the lead',
];

// Fixed epoch so the same seed gives the same market list on every run (dates are not "now"-relative).
const EPOCH_MS = Date.UTC(2030, 0, 1);
const DAY_MS = 86_400_000;

export function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** A 77/78-digit decimal token id like the venue's ERC-1155 position ids. */
function tokenId(rng: Rng): string {
  const lo = 10n ** 76n;
  const span = 115792089237316195423570985008687907853269984665640564039457584007913129639935n - lo;
  return (lo + (rng.u256() % span)).toString();
}

/** Generates `n` markets from the seed; YES fair values are spread over 0.1–0.9. */
export function generateMarkets(seed: number, n: number): SimMarket[] {
  const rng = new Rng(seed ^ 0x5eed);
  // Evenly spaced anchors, then shuffled, so every run has cheap and expensive YES tokens.
  const anchors = rng.shuffle(
    Array.from({ length: n }, (_, i) => (n === 1 ? 500_000 : 100_000 + Math.round((800_000 * i) / (n - 1)))),
  );
  const usedSlugs = new Set<string>();
  let gammaId = 500_000 + rng.int(0, 400_000);
  const markets: SimMarket[] = [];
  for (let i = 0; i < n; i++) {
    gammaId += rng.int(1, 50);
    const subject = rng.pick(SUBJECTS);
    const predicate = rng.pick(PREDICATES);
    const endMs = EPOCH_MS + (7 + rng.int(0, 180)) * DAY_MS;
    const end = iso(endMs);
    const question = `Will ${subject} ${predicate} by ${end.slice(0, 10)}?`;
    let slug = question.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    if (usedSlugs.has(slug)) slug = `${slug}-${i}`;
    usedSlugs.add(slug);
    const yes = tokenId(rng);
    const no = tokenId(rng);
    const conditionId = `0x${rng.hex(32)}`;
    markets.push({
      index: i,
      gammaId: String(gammaId),
      conditionId,
      questionId: `0x${createHash('sha256').update(`${conditionId}:question`).digest('hex')}`,
      slug,
      question,
      description: `This market will resolve to "Yes" if ${subject} ${predicate.replace(/^be /, 'is ')} by ${end}. Otherwise, it will resolve to "No". Simulated market (PolyBot sim).`,
      outcomes: ['Yes', 'No'],
      tokenIds: [yes, no],
      tickSize: 10_000n,
      minOrderSize: 5_000_000n,
      negRisk: false,
      startDate: iso(EPOCH_MS - 30 * DAY_MS + i * 3_600_000),
      endDate: end,
      createdAt: iso(EPOCH_MS - 31 * DAY_MS + i * 3_600_000),
      anchor: anchors[i] as number,
      // Chosen by index, not by the generator, so adding fees changed no other generated value.
      ...(i % 4 === 3 ? { feeSchedule: CRYPTO_FEES } : {}),
    });
  }
  return markets;
}

// ---------------------------------------------------------------- the neg-risk event

/** Candidates of the simulated neg-risk event and their anchor probabilities (sum = 1). */
const NEG_RISK_CANDIDATES: Array<[string, number]> = [
  ['Arsenal', 0.36],
  ['Manchester City', 0.27],
  ['Liverpool', 0.19],
  ['Chelsea', 0.1],
  ['Newcastle', 0.05],
  ['Tottenham', 0.03],
];
export const NEG_RISK_EVENT_SLUG = 'sim-league-winner-2030';
const NEG_RISK_EVENT_ID = '200001';
const NEG_RISK_GAMMA_BASE = 2_000_000;

const hashHex = (s: string) => createHash('sha256').update(s).digest('hex');
/** A token id derived from a label (77/78 digits), independent of any generator state. */
export function derivedTokenId(label: string): string {
  const lo = 10n ** 76n;
  const span = 115792089237316195423570985008687907853269984665640564039457584007913129639935n - lo;
  return (lo + (BigInt(`0x${hashHex(`token:${label}`)}`) % span)).toString();
}

/**
 * The simulated multi-outcome (neg-risk) event: "Who will win the league?", one Yes/No market per
 * candidate sharing one `negRiskMarketID`. Ids come from hashes of the seed, so adding the event
 * changes no other generated value. `firstIndex` continues the markets' `index` numbering.
 */
export function generateNegRiskEvent(seed: number, firstIndex: number): SimMarket[] {
  const base = hashHex(`negrisk:${seed}`);
  // The venue's negRiskMarketID ends in 00 and each questionID is it plus the candidate index.
  const negRiskMarketID = `0x${base.slice(0, 62)}00`;
  const endMs = EPOCH_MS + 200 * DAY_MS;
  const title = 'Who will win the league?';
  const description =
    'This market will resolve to "Yes" if the named club wins the simulated league season ending ' +
    `${iso(endMs)}. Otherwise, it will resolve to "No". Simulated neg-risk event (PolyBot sim).`;
  const event: SimEventInfo = {
    id: NEG_RISK_EVENT_ID,
    slug: NEG_RISK_EVENT_SLUG,
    ticker: NEG_RISK_EVENT_SLUG,
    title,
    description,
    resolutionSource: '',
    startDate: iso(EPOCH_MS - 40 * DAY_MS),
    createdAt: iso(EPOCH_MS - 41 * DAY_MS),
    endDate: iso(endMs),
    negRisk: true,
    negRiskMarketID,
    tags: [{ id: '100639', label: 'Sports', slug: 'sports' }],
  };
  const gammaBase = NEG_RISK_GAMMA_BASE + (Number.parseInt(base.slice(0, 6), 16) % 100_000);
  return NEG_RISK_CANDIDATES.map(([name, p], i) => {
    const label = `negrisk:${seed}:${i}`;
    const conditionId = `0x${hashHex(`${label}:condition`)}`;
    const question = `Will ${name} win the league?`;
    return {
      index: firstIndex + i,
      gammaId: String(gammaBase + i),
      conditionId,
      questionId: `${negRiskMarketID.slice(0, 64)}${i.toString(16).padStart(2, '0')}`,
      slug: `will-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-win-the-league`,
      question,
      description,
      outcomes: ['Yes', 'No'] as [string, string],
      tokenIds: [derivedTokenId(`${label}:yes`), derivedTokenId(`${label}:no`)] as [string, string],
      tickSize: 10_000n,
      minOrderSize: 5_000_000n,
      negRisk: true,
      startDate: event.startDate,
      endDate: event.endDate,
      createdAt: event.createdAt,
      anchor: Math.round(p * 1_000_000),
      event,
      groupItemTitle: name,
      negRiskMarketID,
      negRiskRequestID: `0x${hashHex(`${label}:request`)}`,
      tags: ['sports'],
    };
  });
}
