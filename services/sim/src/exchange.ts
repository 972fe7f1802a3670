import { createHash } from 'node:crypto';
import { fromMicros, microsToNumber, mulMicros, MICROS_PER_UNIT } from '@polybot/protocol';
import type {
  BookSummary,
  GammaMarket,
  OrderResponse,
  PostOrderBody,
  WsBook,
  WsLastTradePrice,
  WsPriceChange,
  WsUserOrder,
  WsUserTrade,
} from '@polybot/polymarket';
import { OrderBook, type Fill, type LevelChange, type RestingOrder, type Side } from './book.js';
import { generateMarkets, type SimMarket } from './markets.js';
import { Rng } from './rng.js';

/** What the exchange tells the outside world; already in the venue's wire shapes. */
export type ExchangeEvent = WsPriceChange | WsLastTradePrice | WsBook;
export type ExchangeListener = (ev: ExchangeEvent) => void;
/** Private events for one account, as the user channel sends them; `address` is the account (lower case). */
export type UserEvent = { address: string; event: WsUserOrder | WsUserTrade };
export type UserListener = (ev: UserEvent) => void;

export interface ExchangeOptions {
  seed: number;
  markets: number;
  /** Collateral every new owner starts with, micro units. */
  startBalance: bigint;
  now?: () => number;
}

export interface AccountView {
  collateral: string;
  lockedCollateral: string;
  positions: Record<string, string>;
}

export const ERR_FOK = "order couldn't be fully filled. FOK orders are fully filled or killed.";
export const ERR_FAK = 'no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found.';
export const ERR_BALANCE = 'not enough balance / allowance';

const ONE = MICROS_PER_UNIT;
const MAKER_OWNER = 'sim-maker';
/** Levels each simulated maker quotes per side. */
const DEPTH = 5;
/** Half the quoted spread around fair value, micro units. */
const HALF_SPREAD = 3_000;

interface TokenState {
  tokenId: string;
  market: SimMarket;
  outcome: 0 | 1;
  book: OrderBook;
  lastTradePrice: bigint;
}

interface MarketState {
  market: SimMarket;
  /** Hidden fair value of YES, integer micro units (a model parameter, not money). */
  fair: number;
  tokens: [TokenState, TokenState];
  volume: bigint;
}

interface Account {
  collateral: bigint;
  lockedCollateral: bigint;
  positions: Map<string, bigint>;
  lockedPositions: Map<string, bigint>;
}

/** Book mutations of one operation, published together when it completes. */
interface Op {
  changes: Map<string, { token: TokenState; change: LevelChange }>;
  trades: Array<{ token: TokenState; price: bigint; size: bigint; side: Side }>;
}

interface Quote {
  bids: number[];
  asks: number[];
  bidTop: number;
  askBottom: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function uuidFrom(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function divRoundHalfUp(n: bigint, d: bigint): bigint {
  return (n * 2n + d) / (2n * d);
}

/**
 * The simulated venue: one exact order book per outcome token, per-owner accounts, and simulated
 * makers that keep every book quoted around a hidden fair value. Deterministic from the seed:
 * all randomness comes from one seeded generator consumed only by market generation and makers.
 */
export class Exchange {
  readonly markets: SimMarket[];
  private readonly states: MarketState[];
  private readonly tokens = new Map<string, TokenState>();
  private readonly byGammaId = new Map<string, MarketState>();
  private readonly accounts = new Map<string, Account>();
  private readonly seenOrders = new Set<string>();
  private readonly listeners = new Set<ExchangeListener>();
  private readonly userListeners = new Set<UserListener>();
  private readonly rng: Rng;
  private readonly now: () => number;
  private seq = 0;
  readonly stats = { ordersAccepted: 0, ordersRejected: 0, trades: 0, makerEvents: 0 };

  constructor(private readonly opts: ExchangeOptions) {
    this.now = opts.now ?? Date.now;
    this.rng = new Rng(opts.seed);
    this.markets = generateMarkets(opts.seed, opts.markets);
    this.states = this.markets.map((market) => {
      const mk = (i: 0 | 1): TokenState => ({
        tokenId: market.tokenIds[i],
        market,
        outcome: i,
        book: new OrderBook(market.tokenIds[i]),
        lastTradePrice: 0n,
      });
      const st: MarketState = { market, fair: market.anchor, tokens: [mk(0), mk(1)], volume: 0n };
      for (const t of st.tokens) this.tokens.set(t.tokenId, t);
      this.byGammaId.set(market.gammaId, st);
      return st;
    });
    // Initial quotes: every band level on both sides of both tokens gets one or two maker orders.
    for (const st of this.states) {
      for (const tok of st.tokens) {
        const q = this.quote(st, tok);
        tok.lastTradePrice = BigInt(Math.round(this.fairOf(st, tok) / 10_000) * 10_000);
        for (const [side, prices] of [['BUY', q.bids], ['SELL', q.asks]] as const) {
          for (const p of prices) {
            const n = this.rng.int(1, 2);
            for (let i = 0; i < n; i++) this.makerPlace(tok, side, BigInt(p), this.makerSize(), undefined);
          }
        }
      }
    }
  }

  on(listener: ExchangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Order and trade events of user accounts (the user WebSocket channel). */
  onUser(listener: UserListener): () => void {
    this.userListeners.add(listener);
    return () => this.userListeners.delete(listener);
  }

  protected emitUser(ev: UserEvent): void {
    for (const l of this.userListeners) l(ev);
  }

  hasToken(tokenId: string): boolean {
    return this.tokens.has(tokenId);
  }

  // ------------------------------------------------------------------ market data

  bookSummary(tokenId: string): BookSummary | undefined {
    const tok = this.tokens.get(tokenId);
    if (!tok) return undefined;
    const { bids, asks } = tok.book.levels();
    const lvl = ([p, s]: [bigint, bigint]) => ({ price: fromMicros(p), size: fromMicros(s) });
    // Key order is the one py-clob-client-v2 documents as server-compatible for the hash.
    const book: BookSummary = {
      market: tok.market.conditionId,
      asset_id: tok.tokenId,
      timestamp: String(this.now()),
      hash: '',
      bids: bids.map(lvl),
      asks: asks.map(lvl),
      min_order_size: fromMicros(tok.market.minOrderSize),
      tick_size: fromMicros(tok.market.tickSize),
      neg_risk: tok.market.negRisk,
      last_trade_price: fromMicros(tok.lastTradePrice),
    };
    book.hash = createHash('sha1').update(JSON.stringify(book)).digest('hex');
    return book;
  }

  wsBook(tokenId: string): WsBook | undefined {
    const b = this.bookSummary(tokenId);
    return b ? { event_type: 'book', ...b } : undefined;
  }

  /** Gamma market objects, in generation order. */
  gammaMarkets(): GammaMarket[] {
    return this.states.map((st) => this.gamma(st));
  }

  gammaMarket(id: string): GammaMarket | undefined {
    const st = this.byGammaId.get(id);
    return st ? this.gamma(st) : undefined;
  }

  private gamma(st: MarketState): GammaMarket {
    const m = st.market;
    const yes = st.tokens[0];
    const bb = yes.book.bestBid();
    const ba = yes.book.bestAsk();
    const mid = bb !== undefined && ba !== undefined ? (bb + ba) / 2n : yes.lastTradePrice;
    const liquidity = st.tokens.reduce((sum, t) => {
      const { bids, asks } = t.book.levels();
      for (const [p, s] of [...bids, ...asks]) sum += mulMicros(p, s);
      return sum;
    }, 0n);
    // Gamma encodes these arrays as JSON strings with ", " separators (Python json.dumps style).
    const jsonList = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
    return {
      id: m.gammaId,
      question: m.question,
      conditionId: m.conditionId,
      slug: m.slug,
      resolutionSource: '',
      endDate: m.endDate,
      liquidity: fromMicros(liquidity),
      startDate: m.startDate,
      description: m.description,
      outcomes: jsonList(m.outcomes),
      outcomePrices: jsonList([fromMicros(mid), fromMicros(ONE - mid)]),
      volume: fromMicros(st.volume),
      active: true,
      closed: false,
      createdAt: m.createdAt,
      updatedAt: new Date(this.now()).toISOString(),
      archived: false,
      questionID: m.questionId,
      enableOrderBook: true,
      orderPriceMinTickSize: microsToNumber(m.tickSize),
      orderMinSize: microsToNumber(m.minOrderSize),
      volumeNum: microsToNumber(st.volume),
      liquidityNum: microsToNumber(liquidity),
      endDateIso: m.endDate.slice(0, 10),
      startDateIso: m.startDate.slice(0, 10),
      clobTokenIds: jsonList(m.tokenIds),
      acceptingOrders: true,
      negRisk: m.negRisk,
      spread: bb !== undefined && ba !== undefined ? microsToNumber(ba - bb) : 1,
      lastTradePrice: microsToNumber(yes.lastTradePrice),
      bestBid: bb !== undefined ? microsToNumber(bb) : 0,
      bestAsk: ba !== undefined ? microsToNumber(ba) : 1,
    } as GammaMarket;
  }

  /** Levels of every book, without timestamps: equal for equal seeds. */
  snapshot(): Array<{ tokenId: string; bids: string[]; asks: string[] }> {
    return [...this.tokens.values()].map((t) => {
      const { bids, asks } = t.book.levels();
      const f = ([p, s]: [bigint, bigint]) => `${fromMicros(p)}@${fromMicros(s)}`;
      return { tokenId: t.tokenId, bids: bids.map(f), asks: asks.map(f) };
    });
  }

  account(owner: string): AccountView | undefined {
    const a = this.accounts.get(owner);
    if (!a) return undefined;
    const positions: Record<string, string> = {};
    for (const [k, v] of a.positions) positions[k] = fromMicros(v);
    return { collateral: fromMicros(a.collateral), lockedCollateral: fromMicros(a.lockedCollateral), positions };
  }

  // ------------------------------------------------------------------ orders

  private acct(owner: string): Account {
    let a = this.accounts.get(owner);
    if (!a) {
      a = { collateral: this.opts.startBalance, lockedCollateral: 0n, positions: new Map(), lockedPositions: new Map() };
      this.accounts.set(owner, a);
    }
    return a;
  }

  private reject(errorMsg: string, orderID: string | null = null): OrderResponse {
    this.stats.ordersRejected++;
    return { success: false, errorMsg, orderID };
  }

  /**
   * Places a (schema-valid) order. Side, price and size come from the signed amounts: BUY pays
   * makerAmount USDC for takerAmount shares, SELL gives makerAmount shares for takerAmount USDC.
   */
  postOrder(body: PostOrderBody): OrderResponse {
    const o = body.order;
    const id = `0x${sha256(JSON.stringify(o))}`;
    const tok = this.tokens.get(o.tokenId);
    if (!tok) return this.reject(`order ${id} is invalid. No orderbook exists for the requested token id`);
    if (this.seenOrders.has(id)) return this.reject(`order ${id} is invalid. Duplicated.`);
    const makerAmt = BigInt(o.makerAmount);
    const takerAmt = BigInt(o.takerAmount);
    if (makerAmt <= 0n || takerAmt <= 0n) return this.reject(`order ${id} is invalid. Amounts must be positive.`);
    const m = tok.market;
    const tick = m.tickSize;
    const side = o.side;
    const shares = side === 'BUY' ? takerAmt : makerAmt;
    const usdc = side === 'BUY' ? makerAmt : takerAmt;
    // The implied price usdc/shares need not sit exactly on the grid (market orders round the share
    // amount), so it is snapped to the nearest tick when within a tenth of a tick, else rejected.
    const num = usdc * ONE;
    const ticks = divRoundHalfUp(num, shares * tick);
    const price = ticks * tick;
    const off = num - price * shares;
    const offAbs = off < 0n ? -off : off;
    if (offAbs * 10n > tick * shares || price < tick || price > ONE - tick) {
      const implied = fromMicros(divRoundHalfUp(num, shares));
      return this.reject(
        `order ${id} is invalid. Price (${implied}) breaks minimum tick size rule: ${fromMicros(tick)}`,
      );
    }
    const type = body.orderType;
    const resting = type === 'GTC' || type === 'GTD';
    if (body.postOnly && !resting) return this.reject('invalid post-only order: only GTC and GTD orders can be post-only');
    if (resting && shares < m.minOrderSize) {
      return this.reject(`order ${id} is invalid. Size (${fromMicros(shares)}) lower than the minimum: ${fromMicros(m.minOrderSize)}`);
    }
    if (!resting && side === 'BUY' && usdc < ONE) {
      return this.reject(`invalid amount for a marketable BUY order ($${fromMicros(usdc)}), min size: $1`);
    }
    if (type === 'GTD') {
      const exp = BigInt(o.expiration);
      if (exp !== 0n && exp * 1000n <= BigInt(this.now())) return this.reject('invalid expiration');
    }
    const acct = this.acct(body.owner);
    if (side === 'BUY') {
      const need = usdc > mulMicros(price, shares, 'up') ? usdc : mulMicros(price, shares, 'up');
      if (acct.collateral - acct.lockedCollateral < need) return this.reject(ERR_BALANCE);
    } else {
      const held = (acct.positions.get(tok.tokenId) ?? 0n) - (acct.lockedPositions.get(tok.tokenId) ?? 0n);
      if (held < shares) return this.reject(ERR_BALANCE);
    }
    const book = tok.book;
    const opposite = side === 'BUY' ? book.bestAsk() : book.bestBid();
    const crosses = opposite !== undefined && OrderBook.crosses(side, price, opposite);
    if (body.postOnly && crosses) return this.reject('invalid post-only order: order crosses book');
    const available = crosses ? book.fillable(side, price, shares) : 0n;
    if (type === 'FOK' && available < shares) return this.reject(ERR_FOK, id);
    if (type === 'FAK' && available === 0n) return this.reject(ERR_FAK, id);

    this.seenOrders.add(id);
    this.stats.ordersAccepted++;
    const op: Op = { changes: new Map(), trades: [] };
    const res = this.execute(tok, { id, owner: body.owner, side, price, shares, rest: resting, maker: false }, op);
    this.flush(op);
    const making = side === 'BUY' ? res.usdc : res.filled;
    const taking = side === 'BUY' ? res.filled : res.usdc;
    return {
      success: true,
      errorMsg: '',
      orderID: id,
      status: res.filled > 0n ? 'matched' : res.rested ? 'live' : 'unmatched',
      makingAmount: fromMicros(making),
      takingAmount: fromMicros(taking),
      transactionsHashes: [],
      tradeIDs: res.tradeIds,
    };
  }

  /** Matches an incoming order, settles each fill, and rests the remainder when asked to. */
  private execute(
    tok: TokenState,
    o: { id: string; owner: string; side: Side; price: bigint; shares: bigint; rest: boolean; maker: boolean },
    op: Op | undefined,
  ): { filled: bigint; usdc: bigint; rested: boolean; tradeIds: string[] } {
    const levelChanges: LevelChange[] = [];
    const fills = tok.book.take(o.side, o.price, o.shares, levelChanges);
    let filled = 0n;
    let usdc = 0n;
    const tradeIds: string[] = [];
    for (const f of fills) {
      const cost = this.settle(tok, o.side, o.maker ? undefined : o.owner, f);
      filled += f.size;
      usdc += cost;
      tradeIds.push(uuidFrom(sha256(`trade:${this.opts.seed}:${++this.seq}`)));
      tok.lastTradePrice = f.price;
      this.stateOf(tok).volume += cost;
      this.stats.trades++;
      op?.trades.push({ token: tok, price: f.price, size: f.size, side: o.side });
    }
    const remaining = o.shares - filled;
    let rested = false;
    if (o.rest && remaining > 0n) {
      let locked = 0n;
      if (!o.maker) {
        const a = this.acct(o.owner);
        if (o.side === 'BUY') {
          locked = mulMicros(o.price, remaining, 'up');
          a.lockedCollateral += locked;
        } else {
          locked = remaining;
          a.lockedPositions.set(tok.tokenId, (a.lockedPositions.get(tok.tokenId) ?? 0n) + remaining);
        }
      }
      const order: RestingOrder = {
        id: o.id,
        owner: o.owner,
        tokenId: tok.tokenId,
        side: o.side,
        price: o.price,
        remaining,
        original: o.shares,
        maker: o.maker,
        locked,
        createdAt: this.now(),
      };
      levelChanges.push(tok.book.add(order));
      rested = true;
    }
    if (op) for (const c of levelChanges) this.record(op, tok, c);
    return { filled, usdc, rested, tradeIds };
  }

  /** Moves collateral and shares for one fill; returns the USDC that changed hands. */
  private settle(tok: TokenState, takerSide: Side, takerOwner: string | undefined, f: Fill): bigint {
    const cost = mulMicros(f.price, f.size);
    const add = (m: Map<string, bigint>, d: bigint) => m.set(tok.tokenId, (m.get(tok.tokenId) ?? 0n) + d);
    if (takerOwner !== undefined) {
      const t = this.acct(takerOwner);
      if (takerSide === 'BUY') {
        t.collateral -= cost;
        add(t.positions, f.size);
      } else {
        t.collateral += cost;
        add(t.positions, -f.size);
      }
    }
    const r = f.order;
    if (!r.maker) {
      const a = this.acct(r.owner);
      if (r.side === 'BUY') {
        const newLock = mulMicros(r.price, r.remaining, 'up');
        a.lockedCollateral -= r.locked - newLock;
        r.locked = newLock;
        a.collateral -= cost;
        add(a.positions, f.size);
      } else {
        add(a.lockedPositions, -f.size);
        r.locked -= f.size;
        add(a.positions, -f.size);
        a.collateral += cost;
      }
    }
    return cost;
  }

  private stateOf(tok: TokenState): MarketState {
    return this.byGammaId.get(tok.market.gammaId) as MarketState;
  }

  private record(op: Op, token: TokenState, change: LevelChange): void {
    // Only the final aggregate of a level matters to subscribers; keep the first position.
    const key = `${token.tokenId}|${change.side}|${change.price}`;
    const prev = op.changes.get(key);
    if (prev) prev.change = change;
    else op.changes.set(key, { token, change });
  }

  /** Publishes one operation: level changes per market, then trades and fresh books. */
  private flush(op: Op): void {
    if (this.listeners.size === 0) return;
    const ts = String(this.now());
    const byMarket = new Map<string, WsPriceChange>();
    for (const { token, change } of op.changes.values()) {
      let msg = byMarket.get(token.market.conditionId);
      if (!msg) {
        msg = { event_type: 'price_change', market: token.market.conditionId, timestamp: ts, price_changes: [] };
        byMarket.set(token.market.conditionId, msg);
      }
      const bb = token.book.bestBid();
      const ba = token.book.bestAsk();
      msg.price_changes.push({
        asset_id: token.tokenId,
        price: fromMicros(change.price),
        size: fromMicros(change.size),
        side: change.side,
        hash: change.orderId,
        best_bid: bb === undefined ? '0' : fromMicros(bb),
        best_ask: ba === undefined ? '1' : fromMicros(ba),
      });
    }
    const events: ExchangeEvent[] = [...byMarket.values()];
    const traded = new Set<string>();
    for (const t of op.trades) {
      traded.add(t.token.tokenId);
      events.push({
        event_type: 'last_trade_price',
        asset_id: t.token.tokenId,
        market: t.token.market.conditionId,
        price: fromMicros(t.price),
        side: t.side,
        size: fromMicros(t.size),
        fee_rate_bps: '0',
        timestamp: ts,
      });
    }
    for (const id of traded) {
      const b = this.wsBook(id);
      if (b) events.push(b);
    }
    for (const ev of events) for (const l of this.listeners) l(ev);
  }

  // ------------------------------------------------------------------ simulated makers

  private fairOf(st: MarketState, tok: TokenState): number {
    return tok.outcome === 0 ? st.fair : 1_000_000 - st.fair;
  }

  /** The maker's target levels for a token: DEPTH ticks each side around fair value, best first. */
  private quote(st: MarketState, tok: TokenState): Quote {
    const tick = Number(tok.market.tickSize);
    const fair = this.fairOf(st, tok);
    const bidTop = Math.floor((fair - HALF_SPREAD) / tick) * tick;
    const askBottom = Math.ceil((fair + HALF_SPREAD) / tick) * tick;
    const bids: number[] = [];
    const asks: number[] = [];
    for (let i = 0; i < DEPTH; i++) {
      const b = bidTop - i * tick;
      const a = askBottom + i * tick;
      if (b >= tick && b <= 1_000_000 - tick) bids.push(b);
      if (a >= tick && a <= 1_000_000 - tick) asks.push(a);
    }
    return { bids, asks, bidTop, askBottom };
  }

  private makerSize(): bigint {
    // Whole cents of a share so that every maker notional is an exact number of micro units.
    return BigInt(this.rng.int(5, 250)) * ONE + BigInt(this.rng.int(0, 99)) * 10_000n;
  }

  private makerPlace(tok: TokenState, side: Side, price: bigint, size: bigint, op: Op | undefined): void {
    const id = `0x${sha256(`maker:${this.opts.seed}:${++this.seq}`)}`;
    this.execute(tok, { id, owner: MAKER_OWNER, side, price, shares: size, rest: true, maker: true }, op);
  }

  private makerCancel(tok: TokenState, order: RestingOrder, op: Op): void {
    const res = tok.book.cancel(order.id);
    if (res) this.record(op, tok, res.change);
  }

  /**
   * One maker event: maybe move the market's fair value (random walk reverting to its anchor, with
   * rare jumps), requote what the move made stale, then add, cancel or replace one order.
   */
  step(): void {
    this.stats.makerEvents++;
    const rng = this.rng;
    const st = rng.pick(this.states);
    const op: Op = { changes: new Map(), trades: [] };
    if (rng.chance(0.35)) {
      let f = st.fair + Math.round((st.market.anchor - st.fair) * 0.02) + rng.int(-4_000, 4_000);
      if (rng.chance(0.02)) f += (rng.chance(0.5) ? 1 : -1) * rng.int(20_000, 80_000);
      st.fair = Math.min(980_000, Math.max(20_000, f));
    }
    const tick = Number(st.market.tickSize);
    for (const tok of st.tokens) {
      const q = this.quote(st, tok);
      const stale = (o: RestingOrder) => {
        const p = Number(o.price);
        return o.side === 'BUY'
          ? p > q.bidTop || p < q.bidTop - (DEPTH + 1) * tick
          : p < q.askBottom || p > q.askBottom + (DEPTH + 1) * tick;
      };
      const pulled = new Set<Side>();
      for (const side of ['BUY', 'SELL'] as const) {
        for (const o of tok.book.ordersOn(side, (x) => x.maker && stale(x))) {
          this.makerCancel(tok, o, op);
          pulled.add(side);
        }
      }
      // Requote in the same event, after both sides are pulled (so makers never trade with
      // their own stale quotes), so that a move never leaves a side empty.
      for (const side of pulled) {
        const covered = new Set(tok.book.ordersOn(side, (x) => x.maker).map((x) => Number(x.price)));
        for (const p of side === 'BUY' ? q.bids : q.asks) {
          if (!covered.has(p)) this.makerPlace(tok, side, BigInt(p), this.makerSize(), op);
        }
      }
    }
    const tok = st.tokens[rng.int(0, 1)] as TokenState;
    const side: Side = rng.chance(0.5) ? 'BUY' : 'SELL';
    const q = this.quote(st, tok);
    const band = side === 'BUY' ? q.bids : q.asks;
    const mine = tok.book.ordersOn(side, (x) => x.maker);
    const covered = new Set(mine.map((x) => Number(x.price)));
    const gap = band.find((p) => !covered.has(p));
    const r = rng.next();
    if (band.length > 0 && gap !== undefined && r < 0.8) {
      this.makerPlace(tok, side, BigInt(gap), this.makerSize(), op);
    } else if (band.length > 0 && r < 0.45 && mine.length < DEPTH * 3) {
      this.makerPlace(tok, side, BigInt(rng.pick(band)), this.makerSize(), op);
    } else if (r < 0.8 && mine.length > DEPTH) {
      this.makerCancel(tok, rng.pick(mine), op);
    } else if (mine.length > 0 && band.length > 0) {
      this.makerCancel(tok, rng.pick(mine), op);
      this.makerPlace(tok, side, BigInt(rng.pick(band)), this.makerSize(), op);
    } else if (band.length > 0) {
      this.makerPlace(tok, side, BigInt(rng.pick(band)), this.makerSize(), op);
    }
    this.flush(op);
  }
}
