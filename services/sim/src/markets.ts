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

function iso(ms: number): string {
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
