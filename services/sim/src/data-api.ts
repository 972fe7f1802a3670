import type { WsUserTrade } from '@polybot/polymarket';
import { divMicros, microsToNumber, mulMicros, toMicros } from '@polybot/protocol';
import type { Exchange, TradeRecord } from './exchange.js';
import type { SimMarket } from './markets.js';
import { midMicros, topOfBook } from './quotes.js';
import type { TraderProfile } from './traders.js';

/**
 * The Data API (`data-api.polymarket.com`, POLYMARKET_DATA_URL) over the simulated exchange:
 * `/trades` and `/positions` of any wallet (simulated traders and real users of the sim alike) in
 * the public Data API shapes, plus `/traders`, a simulator extension listing the simulated wallets.
 * All amounts are exact micro-unit bigints inside; they become JSON numbers only in the views.
 */

/** A Data API trade (`GET /trades`): one fill of the user, numbers as numbers. */
export interface DataTrade {
  proxyWallet: string;
  side: 'BUY' | 'SELL';
  asset: string;
  conditionId: string;
  size: number;
  price: number;
  /** Unix seconds. */
  timestamp: number;
  title: string;
  slug: string;
  icon: string;
  eventSlug: string;
  outcome: string;
  outcomeIndex: number;
  name: string;
  pseudonym: string;
  bio: string;
  profileImage: string;
  profileImageOptimized: string;
  transactionHash: string;
}

/** A Data API position (`GET /positions`). */
export interface DataPosition {
  proxyWallet: string;
  asset: string;
  conditionId: string;
  size: number;
  avgPrice: number;
  initialValue: number;
  currentValue: number;
  cashPnl: number;
  percentPnl: number;
  totalBought: number;
  realizedPnl: number;
  percentRealizedPnl: number;
  curPrice: number;
  redeemable: boolean;
  mergeable: boolean;
  title: string;
  slug: string;
  icon: string;
  eventSlug: string;
  outcome: string;
  outcomeIndex: number;
  oppositeOutcome: string;
  oppositeAsset: string;
  endDate: string;
  negativeRisk: boolean;
}

/** `GET /traders` (sim extension): one simulated wallet, to find whom to follow. */
export interface DataTrader {
  proxyWallet: string;
  name: string;
  skill: number;
  style: string;
  /** Fills so far (FAILED ones excluded). */
  trades: number;
  /** Realized + unrealized PnL at mid, net of fees, pUSD. */
  pnl: number;
}

/** The traders the Data API can name and list (the `Traders` class fits). */
export interface TraderDirectory {
  readonly profiles: TraderProfile[];
  profile(address: string): TraderProfile | undefined;
  fills(address: string): Array<{ status: string }>;
  pnl(address: string): bigint;
}

export interface TradesQuery {
  user: string;
  /** Condition ids (any case); absent = all markets. */
  market?: string[];
  side?: 'BUY' | 'SELL';
  /** Only fills where the user was the taker (the venue's default: true). */
  takerOnly?: boolean;
  limit?: number;
  offset?: number;
}

export interface PositionsQuery {
  user: string;
  market?: string[];
  /** Smallest size listed, shares (the venue's default: 1). */
  sizeThreshold?: bigint;
  redeemable?: boolean;
  mergeable?: boolean;
  limit?: number;
  offset?: number;
}

export interface DataApiOptions {
  traders?: TraderDirectory;
  /**
   * List trades before they are mined (default false: like the real Data API, which indexes the
   * chain, a fill shows up once it has a transaction hash; FAILED fills never show).
   */
  includeUnmined?: boolean;
}

/** The user's part of a trade record: side, size and price of their own fill(s); undefined if not theirs. */
export function userFill(
  t: Pick<WsUserTrade, 'trader_side' | 'maker_address' | 'side' | 'size' | 'price' | 'maker_orders'>,
  address: string,
): { side: 'BUY' | 'SELL'; size: bigint; price: bigint; role: 'TAKER' | 'MAKER' } | undefined {
  const me = address.toLowerCase();
  if (t.trader_side === 'TAKER' && t.maker_address.toLowerCase() === me) {
    return { side: t.side, size: toMicros(t.size), price: toMicros(t.price), role: 'TAKER' };
  }
  const mine = t.maker_orders.filter((o) => o.maker_address.toLowerCase() === me);
  const first = mine[0];
  if (!first) return undefined;
  const size = mine.reduce((s, o) => s + toMicros(o.matched_amount), 0n);
  return { side: first.side ?? (t.side === 'BUY' ? 'SELL' : 'BUY'), size, price: toMicros(first.price), role: 'MAKER' };
}

/** Mark price of a token, micro units: its book mid (last trade with a side empty), 1/0 once resolved, 0 if unknown. */
export function markPrice(exchange: Exchange, tokenId: string): bigint {
  const m = exchange.marketOfToken(tokenId);
  if (!m) return 0n;
  if (exchange.phaseOf(m.gammaId) === 'resolved') {
    const g = exchange.gammaMarket(m.gammaId);
    const prices = g?.outcomePrices ? (JSON.parse(g.outcomePrices) as string[]) : [];
    const p = prices[m.tokenIds.indexOf(tokenId)];
    return p === undefined ? 0n : toMicros(p);
  }
  const book = exchange.bookSummary(tokenId);
  if (!book) return 0n;
  return midMicros(topOfBook(book));
}

const n = microsToNumber;

export class DataApi {
  constructor(
    private readonly exchange: Exchange,
    private readonly opts: DataApiOptions = {},
  ) {}

  /** A user's fills, newest first, in the Data API trade shape. */
  trades(q: TradesQuery): DataTrade[] {
    const user = q.user.toLowerCase();
    const markets = q.market?.map((c) => c.toLowerCase());
    const takerOnly = q.takerOnly ?? true;
    const profile = this.opts.traders?.profile(user);
    const out: DataTrade[] = [];
    const records = this.exchange.tradesOf(user);
    for (let i = records.length - 1; i >= 0; i--) {
      const t = records[i] as TradeRecord;
      if (t.status === 'FAILED') continue;
      if (!this.opts.includeUnmined && t.status === 'MATCHED') continue;
      if (markets && !markets.includes(t.market.toLowerCase())) continue;
      const own = userFill(t, user);
      if (!own || (takerOnly && own.role !== 'TAKER') || (q.side && own.side !== q.side)) continue;
      const m = this.exchange.marketOfCondition(t.market);
      const idx = m ? m.tokenIds.indexOf(t.asset_id) : -1;
      out.push({
        proxyWallet: user,
        side: own.side,
        asset: t.asset_id,
        conditionId: t.market,
        size: n(own.size),
        price: n(own.price),
        timestamp: Number(t.match_time),
        title: m?.question ?? '',
        slug: m?.slug ?? '',
        icon: '',
        eventSlug: m ? eventSlug(m) : '',
        outcome: t.outcome,
        outcomeIndex: idx >= 0 ? idx : t.outcome === 'No' ? 1 : 0,
        name: profile?.name ?? '',
        pseudonym: profile?.name ?? '',
        bio: '',
        profileImage: '',
        profileImageOptimized: '',
        transactionHash: t.transaction_hash ?? '',
      });
    }
    return page(out, q.offset, q.limit);
  }

  /**
   * A user's open positions: size from the exchange account; average price, initial value and
   * realized PnL from the user's fills (average-cost method, fees excluded as on the venue);
   * current value at the book mid (1/0 once resolved). Sorted by size, largest first.
   */
  positions(q: PositionsQuery): DataPosition[] {
    const user = q.user.toLowerCase();
    const acct = this.exchange.account(user);
    if (!acct) return [];
    const markets = q.market?.map((c) => c.toLowerCase());
    const threshold = q.sizeThreshold ?? 1_000_000n;
    const books = this.costBasis(user);
    const rows: Array<{ size: bigint; view: DataPosition }> = [];
    for (const [asset, sizeStr] of Object.entries(acct.positions)) {
      const size = toMicros(sizeStr);
      if (size <= 0n || size < threshold) continue;
      const m = this.exchange.marketOfToken(asset);
      if (!m) continue;
      if (markets && !markets.includes(m.conditionId.toLowerCase())) continue;
      const idx = m.tokenIds.indexOf(asset);
      const other = idx === 0 ? 1 : 0;
      const b = books.get(asset) ?? { qty: 0n, cost: 0n, bought: 0n, boughtCost: 0n, realized: 0n };
      const avg = b.qty > 0n ? divMicros(b.cost, b.qty) : 0n;
      // The fills explain the whole position unless shares came another way: then value the rest at the average.
      const initial = b.qty === size ? b.cost : mulMicros(size, avg);
      const cur = markPrice(this.exchange, asset);
      const current = mulMicros(size, cur);
      const cash = current - initial;
      const resolved = this.exchange.phaseOf(m.gammaId) === 'resolved';
      const mergeable = toMicros(acct.positions[m.tokenIds[other]] ?? '0') > 0n;
      if (q.redeemable !== undefined && q.redeemable !== resolved) continue;
      if (q.mergeable !== undefined && q.mergeable !== mergeable) continue;
      rows.push({
        size,
        view: {
          proxyWallet: user,
          asset,
          conditionId: m.conditionId,
          size: n(size),
          avgPrice: n(avg),
          initialValue: n(initial),
          currentValue: n(current),
          cashPnl: n(cash),
          percentPnl: initial > 0n ? n(divMicros(cash * 100n, initial)) : 0,
          totalBought: n(b.bought),
          realizedPnl: n(b.realized),
          percentRealizedPnl: b.boughtCost > 0n ? n(divMicros(b.realized * 100n, b.boughtCost)) : 0,
          curPrice: n(cur),
          redeemable: resolved,
          mergeable,
          title: m.question,
          slug: m.slug,
          icon: '',
          eventSlug: eventSlug(m),
          outcome: m.outcomes[idx] ?? '',
          outcomeIndex: idx,
          oppositeOutcome: m.outcomes[other],
          oppositeAsset: m.tokenIds[other],
          endDate: m.endDate.slice(0, 10),
          negativeRisk: m.negRisk,
        },
      });
    }
    rows.sort((a, b) => (a.size === b.size ? (a.view.asset < b.view.asset ? -1 : 1) : a.size > b.size ? -1 : 1));
    return page(
      rows.map((r) => r.view),
      q.offset,
      q.limit,
    );
  }

  /** The simulated wallets with their skill, fill count and PnL (sim extension). */
  traders(): DataTrader[] {
    const dir = this.opts.traders;
    if (!dir) return [];
    return dir.profiles.map((p) => ({
      proxyWallet: p.address,
      name: p.name,
      skill: p.skill,
      style: p.style,
      trades: dir.fills(p.address).filter((f) => f.status !== 'FAILED').length,
      pnl: n(dir.pnl(p.address)),
    }));
  }

  /** Per token: remaining quantity and cost, shares and cost bought, realized PnL (average cost; FAILED fills skipped). */
  private costBasis(user: string): Map<string, { qty: bigint; cost: bigint; bought: bigint; boughtCost: bigint; realized: bigint }> {
    const out = new Map<string, { qty: bigint; cost: bigint; bought: bigint; boughtCost: bigint; realized: bigint }>();
    for (const t of this.exchange.tradesOf(user)) {
      if (t.status === 'FAILED') continue;
      const own = userFill(t, user);
      if (!own) continue;
      let b = out.get(t.asset_id);
      if (!b) out.set(t.asset_id, (b = { qty: 0n, cost: 0n, bought: 0n, boughtCost: 0n, realized: 0n }));
      const notional = mulMicros(own.price, own.size);
      if (own.side === 'BUY') {
        b.qty += own.size;
        b.cost += notional;
        b.bought += own.size;
        b.boughtCost += notional;
      } else if (b.qty > 0n) {
        const sold = own.size < b.qty ? own.size : b.qty;
        const removed = sold === b.qty ? b.cost : (b.cost * sold + b.qty / 2n) / b.qty;
        b.realized += mulMicros(own.price, sold) - removed;
        b.cost -= removed;
        b.qty -= sold;
      }
    }
    return out;
  }
}

function eventSlug(m: SimMarket): string {
  return m.event?.slug ?? m.slug;
}

function page<T>(xs: T[], offset = 0, limit = 100): T[] {
  return xs.slice(offset, offset + limit);
}
