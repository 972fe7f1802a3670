import { BusPuller, BusReplier, BusSubscriber, RpcFailure, type InvalidFrame } from '@polybot/bus';
import { PolybotError, venueUrls, type Service, type ServiceContext } from '@polybot/core';
import { buildSignedOrder, loadSigningKey, OrderBuildError, orderHash, type PostOrderBody, type SignerTierName } from '@polybot/polymarket';
import {
  fromMicros,
  mulMicros,
  toMicros,
  topics,
  type BusMessage,
  type FillEvent,
  type OrderEvent,
  type OrderStatus,
  type PositionEvent,
  type PriceMessage,
  type BookMessage,
  type BookStatusMessage,
  type MarketMessage,
  newId,
  type RpcResult,
  type SignalEvent,
  type SignalMessage,
  type Unstamped,
} from '@polybot/protocol';
import { checkExecutionMode, type ExecutorConfig } from './config.js';
import {
  checkPortfolio,
  effectiveState,
  limitsToWire,
  mergeLimits,
  TRADING_STATES,
  utcDay,
  type LimitsWire,
  type PortfolioLimits,
  type PortfolioView,
  type TradingState,
} from './controls.js';
import { ExecutorStore, type OrderRow, type PositionRow, type SignalStatus, type TradeRow } from './db.js';
import { applyFill, fromRow, toRow } from './positions.js';
import { VenueTrading } from './venue-trading.js';
import { checkRisk, type Exposure, type RiskDecision, type RiskLimits } from './risk.js';
import { loadWallet, type LoadedWallet } from './wallet.js';
import { levelsFromWire, PaperEngine, walkBook, type PaperFill } from './paper.js';

const SIGNALS_SOURCE = 'signals.push';
const MAX_POSTING = 16;
/** A depth snapshot older than this does not price market orders. */
const BOOK_FRESH_MS = 5_000;
/** Dead-lettered payloads are kept for inspection, but a flood of huge frames must not fill the disk. */
const MAX_DEAD_LETTER_PAYLOAD = 64 * 1024;
const TERMINAL: ReadonlySet<OrderStatus> = new Set(['filled', 'canceled', 'rejected']);

/** What the bus and `orders.list` show of an order: everything but the signed request. */
function orderFields(o: OrderRow) {
  const { request: _request, venue_order_id: _venue, ...rest } = o;
  return rest;
}

const clip = (s: string, n = 500) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function createExecutorService(ctx: ServiceContext<ExecutorConfig>): Service {
  const cfg = ctx.config;
  checkExecutionMode(cfg);
  const log = ctx.log.child({ component: 'executor' });
  const limits: RiskLimits = {
    maxOrderSize: toMicros(cfg.POLYBOT_RISK_MAX_ORDER_SIZE),
    maxPosition: toMicros(cfg.POLYBOT_RISK_MAX_POSITION),
    maxNotional: toMicros(cfg.POLYBOT_RISK_MAX_NOTIONAL),
  };
  const clobUrl = venueUrls(cfg).clob;
  const counters = { received: 0, accepted: 0, denied: 0, dead_lettered: 0, duplicate: 0 };
  let store: ExecutorStore | undefined;
  let signer: LoadedWallet | undefined;
  /** The venue side (sim and live mode): session, reconciliation, order and trade state. */
  let venue: VenueTrading | undefined;
  let marketsSub: BusSubscriber | undefined;
  let quotesSub: BusSubscriber | undefined;
  /** Current top of book per token (micros), from the scanner: the price band's reference. */
  const quotes = new Map<string, { bid: bigint | null; ask: bigint | null }>();
  /** Depth per token from the scanner's `book.` messages (venue mode): market orders are priced by walking it. */
  const depth = new Map<string, { at: number; book: BookMessage }>();
  let portfolio: PortfolioLimits = {
    maxOpenOrders: cfg.POLYBOT_RISK_MAX_OPEN_ORDERS,
    maxMarketExposure: toMicros(cfg.POLYBOT_RISK_MAX_MARKET_EXPOSURE),
    maxTotalExposure: toMicros(cfg.POLYBOT_RISK_MAX_TOTAL_EXPOSURE),
    maxDailyLoss: toMicros(cfg.POLYBOT_RISK_MAX_DAILY_LOSS),
    priceBand: toMicros(cfg.POLYBOT_RISK_PRICE_BAND),
  };
  const paperMode = cfg.POLYBOT_EXECUTION_MODE === 'paper';
  /** Paper mode: orders fill against the scanner's depth here; nothing reaches any venue. */
  const paper = paperMode ? new PaperEngine() : undefined;
  let tradingState: TradingState = 'ACTIVE';
  let tradingReason: string | undefined;
  let puller: BusPuller | undefined;
  let replier: BusReplier | undefined;
  let inflight: Promise<void> | undefined;
  /** Posts in flight. Each order is committed (and counted by the risk checks) before its post starts, so the next signal need not wait for the answer. */
  const posting = new Set<Promise<void>>();
  let intakeStarting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let stopped = false;
  let paperTimer: NodeJS.Timeout | undefined;

  const publish = <M extends BusMessage>(kind: string, strategy: string, msg: Unstamped<M>) => {
    if (!ctx.events.publish(topics.event(kind, strategy), msg)) log.warn({ kind, strategy }, 'event not published');
  };

  const signalEvent = (strategy: string, signalId: string, status: SignalEvent['status'], code?: string, reason?: string) =>
    publish<SignalEvent>('signal', strategy, {
      type: 'event',
      kind: 'signal',
      strategy,
      signal_id: signalId,
      status,
      ...(code ? { code } : {}),
      ...(reason ? { reason: clip(reason) } : {}),
    });

  const orderEvent = (o: OrderRow) => {
    const { signal_id, reason, created_at: _c, updated_at: _u, ...rest } = orderFields(o);
    publish<OrderEvent>('order', o.strategy, {
      type: 'event',
      kind: 'order',
      ...rest,
      signal_id: signal_id ?? '',
      venue_order_id: o.venue_order_id,
      ...(reason ? { reason: clip(reason) } : {}),
    });
  };

  function deadLetter(code: string, reason: string, topic: string | undefined, payload: Uint8Array | undefined, signal?: SignalMessage): void {
    const now = Date.now();
    const db = store;
    if (!db) return;
    db.insertDeadLetter(SIGNALS_SOURCE, code, clip(reason, 2000), topic?.slice(0, 256) ?? null, payload ? payload.subarray(0, MAX_DEAD_LETTER_PAYLOAD) : null, now);
    if (signal && !db.hasSignal(signal.id)) db.insertSignal(signal, 'dead_lettered', now, code, clip(reason));
    counters.dead_lettered++;
    signalEvent(signal?.strategy ?? 'unknown', signal?.id ?? '', 'dead_lettered', code, reason);
  }

  function onInvalid(frame: InvalidFrame): void {
    try {
      deadLetter(frame.code, frame.reason, frame.topic, frame.frames[1] ?? frame.frames[0]);
    } catch (err) {
      log.error({ err }, 'could not dead-letter a frame');
    }
  }

  function deny(sig: SignalMessage, code: string, reason: string, now: number): void {
    store?.insertSignal(sig, 'denied', now, code, clip(reason));
    counters.denied++;
    log.info({ signal: sig.id, strategy: sig.strategy, code, reason }, 'signal denied');
    signalEvent(sig.strategy, sig.id, 'denied', code, reason);
  }

  function exposure(db: ExecutorStore, strategy: string, tokenId: string): Exposure {
    const held = fromRow(db.position(strategy, tokenId)).size;
    let openBuy = 0n;
    let openSell = 0n;
    for (const o of db.openOrders(strategy, tokenId)) {
      const left = toMicros(o.size) - toMicros(o.filled);
      if (left <= 0n) continue;
      if (o.side === 'BUY') openBuy += left;
      else openSell += left;
    }
    return { held, openBuy, openSell };
  }

  /**
   * The price of a market (FOK/FAK) order, by walking the scanner's depth like the official
   * clients do: the worst level the order needs, capped by the signal's limit. The signal's limit
   * stays when the book is older than a few seconds, cannot fill the size within the limit, or the
   * walked order would fall under the venue's 1 pUSD minimum for a marketable BUY.
   */
  function marketPrice(tokenId: string, side: 'BUY' | 'SELL', limit: bigint, size: bigint): bigint {
    const d = depth.get(tokenId);
    if (!d || Date.now() - d.at > BOOK_FRESH_MS) return limit;
    const walk = walkBook(side === 'BUY' ? levelsFromWire(d.book.asks, 'asks') : levelsFromWire(d.book.bids, 'bids'), side, limit, { shares: size });
    const last = walk.takes.at(-1);
    if (!last || walk.shares < size) return limit;
    if (side === 'BUY' && mulMicros(last.price, size) < 1_000_000n) return limit;
    return last.price;
  }

  /** Binds `signals.push`: the last step of start, once everything a signal needs is ready. */
  function startIntake(): Promise<void> {
    intakeStarting ??= (async () => {
      if (stopped) return;
      const p = new BusPuller({
        endpoint: ctx.endpoints['signals.push'],
        onMessage,
        onInvalid,
        log: ctx.log.child({ component: 'signals' }),
      });
      await p.start();
      puller = p;
      log.info({ endpoint: ctx.endpoints['signals.push'] }, 'taking signals');
    })();
    return intakeStarting;
  }

  async function onMessage(msg: BusMessage, topic: string): Promise<void> {
    if (msg.type !== 'signal') {
      deadLetter('unexpected_type', `a ${msg.type} message on the signals socket`, topic, undefined);
      return;
    }
    counters.received++;
    const run = handleSignal(msg as SignalMessage);
    inflight = run;
    try {
      await run;
    } finally {
      inflight = undefined;
    }
    // Back-pressure: past this many unanswered posts the intake waits (signals queue in the socket).
    while (posting.size >= MAX_POSTING) await Promise.race(posting);
  }

  /** Builds and signs the order of a signal (EIP-712 V2; the neg-risk exchange when the market is). */
  function signOrder(v: VenueTrading, sig: SignalMessage, price: bigint, size: bigint, tickSize: string, negRisk: boolean): PostOrderBody {
    const order = buildSignedOrder({
      wallet: (signer as LoadedWallet).wallet,
      tokenId: sig.token_id,
      side: sig.side,
      price: fromMicros(price),
      size: fromMicros(size),
      orderType: sig.order_type,
      tickSize,
      negRisk,
      ...(sig.order_type === 'GTD' && sig.expiration !== undefined ? { expiration: sig.expiration } : {}),
    });
    return { order, owner: v.apiKey ?? '', orderType: sig.order_type, deferExec: false, postOnly: sig.post_only === true };
  }

  /**
   * Posts in the background. An `order_version_mismatch` refusal is certain (nothing was placed), so
   * after re-reading `/version` the signal gets one more order, freshly signed, when the venue still
   * takes the version this executor signs; the refused row stays, detached from the signal.
   */
  function post(v: VenueTrading, row: OrderRow, body: PostOrderBody, negRisk: boolean, resign?: () => PostOrderBody): void {
    const p = (async () => {
      await v.submit(row, body, negRisk);
      const after = store?.order(row.order_id);
      if (!resign || after?.status !== 'rejected' || !/order_version_mismatch/i.test(after.reason ?? '')) return;
      await v.rereadVersion();
      if (v.orderVersion !== 2 || stopped) return;
      const retryBody = resign();
      const retry: OrderRow = { ...row, order_id: orderHash(retryBody.order, negRisk), request: JSON.stringify(retryBody), status: 'pending', filled: '0', reason: null, created_at: Date.now(), updated_at: Date.now() };
      (store as ExecutorStore).replaceRejectedOrder(after, retry);
      log.warn({ signal: row.signal_id, refused: row.order_id, order: retry.order_id }, 'order_version_mismatch with /version still 2: one retry, signed afresh');
      orderEvent(retry);
      await v.submit(retry, retryBody, negRisk);
    })()
      .catch((err: unknown) => log.error({ err, order: row.order_id }, 'recording the order outcome failed; the next start settles it'))
      .finally(() => posting.delete(p));
    posting.add(p);
  }

  async function handleSignal(sig: SignalMessage): Promise<void> {
    const db = store as ExecutorStore;
    const now = Date.now();
    let persisted = false;
    try {
      if (db.hasSignal(sig.id)) {
        counters.duplicate++;
        log.info({ signal: sig.id, strategy: sig.strategy }, 'duplicate signal ignored');
        return;
      }
      if (paperMode) return paperSignal(db, sig, now);
      const v = venue as VenueTrading;
      // Fail closed: not reconciled, stream down, heartbeats refused or the venue in cancel-only mode.
      // Post-only orders still go while the venue is in its post-only window after a restart (425).
      const can = v.canTrade(sig.post_only === true);
      if (!can.ok) return deny(sig, `venue_${can.code}`, can.reason, now);
      const decision = admit(db, sig, now);
      if (!decision) return;
      const { market, tickSize, price, size } = decision;
      if (sig.side === 'SELL') {
        // Only settled shares are in the wallet: a sell of shares still settling is denied, not sent to fail.
        const check = v.inventory(sig.strategy, sig.token_id).canSell(size, exposure(db, sig.strategy, sig.token_id).openSell);
        if (!check.ok) return deny(sig, check.code, check.reason, now);
      }
      // This executor signs V2 orders; a venue on another order version would refuse every one.
      if (v.orderVersion !== undefined && v.orderVersion !== 2) {
        v.refreshVersionSoon();
        return deny(sig, 'order_version_unsupported', `the venue expects order version ${v.orderVersion}; this executor signs version 2`, now);
      }
      await v.prepareMarket(market.conditionId);
      const orderPrice = sig.order_type === 'FOK' || sig.order_type === 'FAK' ? marketPrice(sig.token_id, sig.side, price, size) : price;
      let body: PostOrderBody;
      try {
        body = signOrder(v, sig, orderPrice, size, tickSize, market.negRisk);
      } catch (err) {
        if (err instanceof OrderBuildError) return deny(sig, `order_${err.code}`, err.message, now);
        throw err;
      }
      const row = pendingRow(sig, market.conditionId, orderPrice, size, orderHash(body.order, market.negRisk), JSON.stringify(body), now);
      accept(db, sig, row);
      persisted = true;
      log.info({ signal: sig.id, order: row.order_id, side: row.side, price: row.price, size: row.size }, 'order sent');
      post(v, row, body, market.negRisk, () => signOrder(v, sig, orderPrice, size, tickSize, market.negRisk));
    } catch (err) {
      if (persisted) {
        // The order is committed as pending (or further); restart marks it unknown for reconciliation.
        log.error({ err, signal: sig.id }, 'recording the order outcome failed');
      } else {
        log.error({ err, signal: sig.id }, 'signal handling failed');
        deadLetter('internal', (err as Error).message ?? String(err), topics.signal(), undefined, sig);
      }
    }
  }

  /** Commits an order's new state with its trades and positions in one transaction, then tells the bus. */
  function record(db: ExecutorStore, order: OrderRow, trades: TradeRow[], positions: PositionRow[], outcome: string): void {
    const signalStatus: SignalStatus | undefined = TERMINAL.has(order.status) ? 'done' : undefined;
    let inserted = 0;
    db.db.transaction(() => {
      inserted = db.recordOutcome(order, trades, positions[0], signalStatus);
      for (const p of positions.slice(1)) db.upsertPosition(p);
    })();
    log.info({ order: order.order_id, outcome, status: order.status, filled: order.filled, reason: order.reason ?? undefined }, 'order settled');
    orderEvent(order);
    if (inserted > 0) for (const t of trades) fillEvent(t);
    const last = positions.at(-1);
    if (last) positionEvent(last);
  }

  function fillEvent(t: TradeRow): void {
    publish<FillEvent>('fill', t.strategy, {
      type: 'event',
      kind: 'fill',
      strategy: t.strategy,
      order_id: t.order_id,
      trade_id: t.trade_id,
      token_id: t.token_id,
      market: t.market,
      side: t.side,
      price: t.price,
      size: t.size,
      fee: t.fee,
    });
  }

  function positionEvent(p: PositionRow): void {
    publish<PositionEvent>('position', p.strategy, {
      type: 'event',
      kind: 'position',
      strategy: p.strategy,
      token_id: p.token_id,
      market: p.market,
      size: p.size,
      avg_price: p.avg_price,
      cost: p.cost,
      realized_pnl: p.realized_pnl,
    });
  }

  /** Per-order risk, then the portfolio checks; undefined (and the signal denied) when either says no. */
  function admit(db: ExecutorStore, sig: SignalMessage, now: number): Extract<RiskDecision, { ok: true }> | undefined {
    const exp = exposure(db, sig.strategy, sig.token_id);
    const decision = checkRisk(sig, db.market(sig.token_id), exp, limits, now);
    if (!decision.ok) {
      deny(sig, decision.code, decision.reason, now);
      return undefined;
    }
    const pf = checkPortfolio(
      { side: sig.side, price: decision.price, size: decision.size, freeToSell: exp.held - exp.openSell },
      tradingState,
      portfolioView(db, decision.market.conditionId, sig.token_id, now),
      portfolio,
    );
    if (!pf.ok) {
      deny(sig, pf.code, pf.reason, now);
      return undefined;
    }
    return decision;
  }

  function pendingRow(sig: SignalMessage, market: string, price: bigint, size: bigint, orderId: string, request: string, now: number): OrderRow {
    return {
      order_id: orderId,
      signal_id: sig.id,
      strategy: sig.strategy,
      venue_order_id: null,
      token_id: sig.token_id,
      market,
      side: sig.side,
      order_type: sig.order_type,
      price: fromMicros(price),
      size: fromMicros(size),
      filled: '0',
      status: 'pending',
      reason: null,
      request,
      created_at: now,
      updated_at: now,
    };
  }

  /** Persist before send: the signal and its order commit together, then the bus hears of both. */
  function accept(db: ExecutorStore, sig: SignalMessage, row: OrderRow): void {
    db.acceptSignal(sig, row);
    counters.accepted++;
    signalEvent(sig.strategy, sig.id, 'accepted');
    orderEvent(row);
  }

  // ------------------------------------------------------------ paper mode

  /** A signal in paper mode: persisted like a real order, then filled against the last book seen. */
  function paperSignal(db: ExecutorStore, sig: SignalMessage, now: number): void {
    const decision = admit(db, sig, now);
    if (!decision) return;
    const { market, price, size } = decision;
    const request = {
      paper: true,
      token_id: sig.token_id,
      side: sig.side,
      price: fromMicros(price),
      size: fromMicros(size),
      order_type: sig.order_type,
      ...(sig.expiration !== undefined ? { expiration: sig.expiration } : {}),
      ...(sig.post_only ? { post_only: true } : {}),
    };
    const row = pendingRow(sig, market.conditionId, price, size, newId('paper-'), JSON.stringify(request), now);
    accept(db, sig, row);
    const res = (paper as PaperEngine).submit({
      id: row.order_id,
      tokenId: row.token_id,
      side: row.side,
      orderType: row.order_type,
      price,
      size,
      ...(sig.post_only ? { postOnly: true } : {}),
      // The venue ends a GTD order 60 s before its expiration (security buffer); paper does the same.
      ...(sig.order_type === 'GTD' && sig.expiration !== undefined ? { expiresAtMs: sig.expiration * 1000 - 60_000 } : {}),
    });
    if (!res.ok) {
      record(db, { ...row, status: 'rejected', reason: clip(res.errorMsg), updated_at: Date.now() }, [], [], 'paper_rejected');
      return;
    }
    const market2 = row.order_type === 'FOK' || row.order_type === 'FAK';
    const status: OrderStatus = res.matched >= size ? 'filled' : market2 ? (res.matched > 0n ? 'canceled' : 'canceled') : res.matched > 0n ? 'partially_filled' : 'live';
    applyPaperFills(db, row, res.fills, status, market2 && res.matched < size ? 'unfilled rest killed (paper)' : null);
  }

  /** Records paper fills of one order as trades and position moves. */
  function applyPaperFills(db: ExecutorStore, row: OrderRow, fills: PaperFill[], status: OrderStatus, reason: string | null): void {
    const now = Date.now();
    const trades: TradeRow[] = [];
    const positions: PositionRow[] = [];
    let pos = fromRow(db.position(row.strategy, row.token_id));
    let filled = toMicros(row.filled);
    for (const f of fills) {
      trades.push({
        trade_id: f.tradeId,
        order_id: row.order_id,
        strategy: row.strategy,
        token_id: row.token_id,
        market: row.market,
        side: row.side,
        price: fromMicros(f.price),
        size: fromMicros(f.size),
        fee: fromMicros(f.fee),
        ts: now,
      });
      pos = applyFill(pos, row.side, f.size, f.usdc, f.fee);
      filled += f.size;
    }
    if (fills.length > 0) positions.push(toRow(pos, row.strategy, row.token_id, row.market, now));
    record(db, { ...row, status, filled: fromMicros(filled), reason, updated_at: now }, trades, positions, 'paper');
  }

  /** A new depth snapshot: resting paper orders that it crosses fill. */
  /** Paper GTD orders past their end: removed from the paper book, recorded as expired (canceled on the wire). */
  function expirePaper(): void {
    const db = store;
    if (!paper || !db?.db.open) return;
    for (const r of paper.expire(Date.now())) {
      const row = db.order(r.id);
      if (!row || TERMINAL.has(row.status)) continue;
      record(db, { ...row, status: 'canceled', reason: 'expired (GTD, paper)', updated_at: Date.now() }, [], [], 'paper_expired');
    }
  }

  function onPaperBook(b: BookMessage): void {
    const db = store;
    if (!paper || !db) return;
    const res = paper.onBook({ token_id: b.token_id, bids: b.bids, asks: b.asks });
    if (res.fills.length === 0) return;
    const byOrder = new Map<string, PaperFill[]>();
    for (const f of res.fills) byOrder.set(f.orderId, [...(byOrder.get(f.orderId) ?? []), f]);
    for (const [id, fills] of byOrder) {
      const row = db.order(id);
      if (!row) continue;
      applyPaperFills(db, row, fills, res.completed.includes(id) ? 'filled' : 'partially_filled', null);
    }
  }

  // ------------------------------------------------------------ controls (state, limits, kill switch)

  /** Realized PnL of all positions minus its value at 00:00 UTC (the baseline is kept in SQLite). */
  function realizedToday(db: ExecutorStore, positions: readonly PositionRow[], now: number): bigint {
    let total = 0n;
    for (const p of positions) total += toMicros(p.realized_pnl);
    const day = String(utcDay(now));
    if (db.control('day') !== day) {
      db.setControl('day', day, now);
      db.setControl('day_baseline', fromMicros(total), now);
    }
    return total - toMicros(db.control('day_baseline') ?? '0');
  }

  function portfolioView(db: ExecutorStore, market: string, tokenId: string, now: number): PortfolioView {
    let marketExposure = 0n;
    let totalExposure = 0n;
    // One read of the positions serves exposure and the day's PnL.
    const positions = db.listPositions();
    for (const p of positions) {
      const cost = toMicros(p.cost);
      totalExposure += cost;
      if (p.market === market) marketExposure += cost;
    }
    const open = db.allOpenOrders();
    for (const o of open) {
      if (o.side !== 'BUY') continue;
      const left = toMicros(o.size) - toMicros(o.filled);
      if (left <= 0n) continue;
      const n = mulMicros(toMicros(o.price), left);
      totalExposure += n;
      if (o.market === market) marketExposure += n;
    }
    const q = quotes.get(tokenId);
    return { openOrders: open.length, marketExposure, totalExposure, realizedToday: realizedToday(db, positions, now), ...(q ? { quote: q } : {}) };
  }

  function riskStatus(): RpcResult<'risk.status'> {
    const db = store as ExecutorStore;
    const now = Date.now();
    const view = portfolioView(db, '', '', now);
    return {
      state: tradingState,
      effective: effectiveState(tradingState, view, portfolio),
      ...(tradingReason ? { reason: tradingReason } : {}),
      limits: limitsToWire(portfolio),
      open_orders: view.openOrders,
      total_exposure: fromMicros(view.totalExposure),
      realized_today: fromMicros(view.realizedToday),
    };
  }

  function setTradingState(state: TradingState, reason: string | undefined): void {
    const now = Date.now();
    tradingState = state;
    tradingReason = reason;
    store?.setControl('trading_state', state, now);
    store?.setControl('trading_reason', reason ?? '', now);
    log.warn({ state, reason }, 'trading state changed');
  }

  function loadControls(db: ExecutorStore): void {
    const st = db.control('trading_state');
    if (st && (TRADING_STATES as readonly string[]).includes(st)) tradingState = st as TradingState;
    tradingReason = db.control('trading_reason') || undefined;
    const saved = db.control('limits');
    if (saved) {
      try {
        const merged = mergeLimits(portfolio, JSON.parse(saved) as Partial<LimitsWire>);
        if (typeof merged !== 'string') portfolio = merged;
      } catch {
        log.warn('stored risk limits unreadable; using the configured ones');
      }
    }
    if (tradingState !== 'ACTIVE') log.warn({ state: tradingState, reason: tradingReason }, 'trading state restored from the last run');
  }

  /** Paper cancels end the order here; venue cancels are applied by the venue side from the answer. */
  function paperCancelResult(res: RpcResult<'orders.cancel'>): RpcResult<'orders.cancel'> {
    const db = store as ExecutorStore;
    const now = Date.now();
    for (const id of res.canceled) {
      const row = db.order(id);
      if (!row || TERMINAL.has(row.status)) continue;
      const o: OrderRow = { ...row, status: 'canceled', reason: 'canceled on request', updated_at: now };
      db.recordOutcome(o, [], undefined, 'done');
      orderEvent(o);
    }
    return res;
  }

  async function cancelOrders(ids: string[], all = false): Promise<RpcResult<'orders.cancel'>> {
    if (paper) {
      const res: RpcResult<'orders.cancel'> = { canceled: [], not_canceled: {} };
      for (const id of ids) {
        if (paper.cancel(id)) res.canceled.push(id);
        else res.not_canceled[id] = 'not resting in the paper book';
      }
      return paperCancelResult(res);
    }
    const v = venue as VenueTrading;
    if (!all && ids.length === 0) return { canceled: [], not_canceled: {} };
    // Cancel-all also reaches orders this executor never saw (another process on the same key).
    const r = all ? await v.cancelAll() : await v.cancel(ids);
    const out: RpcResult<'orders.cancel'> = { canceled: r.canceled, not_canceled: { ...r.notCanceled } };
    for (const id of r.unconfirmed) out.not_canceled[id] = `unconfirmed${r.error ? `: ${clip(r.error, 200)}` : ''}; the user stream or the next refresh will tell`;
    if (r.error && r.canceled.length === 0 && Object.keys(r.notCanceled).length === 0) throw new RpcFailure('venue_error', `cancel failed: ${clip(r.error, 300)}`, true);
    return out;
  }

  function openOrderIds(strategy?: string): string[] {
    return (store as ExecutorStore)
      .openOrderRows(strategy)
      .map((o) => o.venue_order_id ?? o.order_id)
      .filter((id) => id.length > 0);
  }

  const controlHandlers = {
    'risk.status': () => riskStatus(),
    'risk.set_limits': (p: Record<string, unknown>) => {
      const merged = mergeLimits(portfolio, p as Partial<LimitsWire>);
      if (typeof merged === 'string') throw new RpcFailure('bad_limits', merged);
      portfolio = merged;
      store?.setControl('limits', JSON.stringify(limitsToWire(portfolio)), Date.now());
      log.warn({ limits: limitsToWire(portfolio) }, 'risk limits changed');
      return riskStatus();
    },
    'trading.halt': async (p: Record<string, unknown>) => {
      setTradingState('HALTED', typeof p.reason === 'string' ? p.reason : 'halted by request');
      if (p.cancel_open === true) await cancelOrders(openOrderIds(), !paper);
      return riskStatus();
    },
    'trading.reduce': (p: Record<string, unknown>) => {
      setTradingState('REDUCING', typeof p.reason === 'string' ? p.reason : 'reduce-only by request');
      return riskStatus();
    },
    'trading.resume': () => {
      setTradingState('ACTIVE', undefined);
      return riskStatus();
    },
    'orders.cancel': (p: Record<string, unknown>) => {
      const row = (store as ExecutorStore).order(String(p.order_id));
      if (!row) throw new RpcFailure('unknown_order', `no order ${String(p.order_id).slice(0, 80)} in this executor`);
      return cancelOrders([row.venue_order_id ?? row.order_id]);
    },
    'orders.cancel_all': (p: Record<string, unknown>) => {
      const strategy = typeof p.strategy === 'string' ? p.strategy : undefined;
      return cancelOrders(openOrderIds(strategy), strategy === undefined && !paper);
    },
  };

  function listPositions(params: Record<string, unknown>): RpcResult<'positions.list'> {
    const strategy = typeof params.strategy === 'string' ? params.strategy : undefined;
    const rows = store?.listPositions(strategy) ?? [];
    return {
      positions: rows.map((r) => {
        const q = quotes.get(r.token_id);
        // Marked at the mid of the last top of book (one side when the other is empty); none before a quote.
        const mark = q ? (q.bid !== null && q.ask !== null ? (q.bid + q.ask) / 2n : (q.bid ?? q.ask)) : null;
        const size = toMicros(r.size);
        return {
          strategy: r.strategy,
          token_id: r.token_id,
          market: r.market,
          size: r.size,
          avg_price: r.avg_price,
          cost: r.cost,
          realized_pnl: r.realized_pnl,
          ...(r.settled !== undefined ? { settled: r.settled, pending_buy: r.pending_buy ?? '0', pending_sell: r.pending_sell ?? '0', fees: r.fees ?? '0' } : {}),
          ...(r.resolved !== null && r.resolved !== undefined ? { resolved: r.resolved } : {}),
          ...(mark !== null && (r.resolved === null || r.resolved === undefined) ? { mark: fromMicros(mark), unrealized_pnl: fromMicros(mulMicros(size, mark) - toMicros(r.cost)) } : {}),
        };
      }),
    };
  }

  function listOrders(params: Record<string, unknown>): RpcResult<'orders.list'> {
    const rows = (store as ExecutorStore).listOrders({
      ...(typeof params.strategy === 'string' ? { strategy: params.strategy } : {}),
      all: params.all === true,
      limit: typeof params.limit === 'number' ? params.limit : 100,
    });
    return { orders: rows.map(orderFields) };
  }

  function venueStatus(): RpcResult<'venue.status'> {
    const base = { mode: cfg.POLYBOT_EXECUTION_MODE, taking_signals: puller !== undefined, balance_mismatches: [] as string[] };
    if (!venue) return { ...base, state: 'paper', can_trade: true, counters: {} };
    const st = venue.state();
    const can = venue.canTrade();
    const address = (signer as LoadedWallet).wallet.address;
    const w = store?.wallet(address);
    return {
      ...base,
      state: st.state,
      ...(st.reason ? { reason: st.reason } : {}),
      can_trade: can.ok,
      ...(can.ok ? {} : { can_trade_reason: `${can.code}: ${can.reason}` }),
      address,
      ...(w ? { collateral: w.collateral } : {}),
      balance_mismatches: [...venue.balanceMismatches],
      counters: { ...venue.counters },
    };
  }

  return {
    async start() {
      store = new ExecutorStore(ctx.paths.polybotDb);
      loadControls(store);
      if (paperMode) {
        // Paper orders rest only in this process's memory: a restart ends them.
        for (const o of store.openOrderRows()) {
          if (!o.order_id.startsWith('paper-')) continue;
          store.recordOutcome({ ...o, status: 'canceled', reason: 'paper order ended by an executor restart', updated_at: Date.now() }, [], undefined, 'done');
        }
      }
      // Persisted but never answered before the last stop: the venue may have them. Never re-signed;
      // the venue side settles them by lookup or by re-posting the identical body once reconciled.
      for (const o of store.pendingOrders()) {
        store.updateOrder({ ...o, status: 'unknown', reason: 'executor stopped before the venue answered', updated_at: Date.now() });
        log.warn({ order: o.order_id }, 'pending order from a previous run marked unknown');
      }
      if (paperMode) {
        // Nothing is signed or sent in paper mode: no key, no venue credentials.
        log.info({ mode: 'paper' }, 'paper trading: orders fill against the scanner\'s books; nothing is sent to any venue');
      } else if (cfg.POLYBOT_KEYSTORE) {
        if (cfg.POLYBOT_PRIVATE_KEY) throw new PolybotError('ambiguous_key_source', 'both POLYBOT_KEYSTORE and POLYBOT_PRIVATE_KEY are set; keep only the keystore', 'fatal');
        try {
          const k = await loadSigningKey(
            {
              keystorePath: cfg.POLYBOT_KEYSTORE,
              ...(cfg.POLYBOT_KEYSTORE_PASSWORD_FILE ? { passwordFile: cfg.POLYBOT_KEYSTORE_PASSWORD_FILE } : {}),
              ...(cfg.POLYBOT_KEYSTORE_PASSWORD ? { password: cfg.POLYBOT_KEYSTORE_PASSWORD } : {}),
            },
            { log },
          );
          signer = { wallet: k.wallet, source: 'keystore', path: cfg.POLYBOT_KEYSTORE };
        } catch (err) {
          // Its message names files only, never the key or the password.
          throw new PolybotError('keystore', `cannot load the signing key: ${(err as Error).message}`, 'fatal');
        }
      } else {
        signer = loadWallet({ privateKey: cfg.POLYBOT_PRIVATE_KEY, venue: cfg.POLYBOT_VENUE, keysDir: ctx.paths.keys });
      }
      if (!paperMode) {
        const loaded = signer as LoadedWallet;
        log.info({ address: loaded.wallet.address, key_source: loaded.source, mode: cfg.POLYBOT_EXECUTION_MODE, clob: clobUrl }, 'wallet ready');
        const urls = venueUrls(cfg);
        venue = new VenueTrading({
          store,
          signer: loaded.wallet,
          urls: { clob: urls.clob, ws: urls.ws },
          log,
          orderTimeoutMs: cfg.POLYBOT_EXECUTOR_ORDER_TIMEOUT_MS,
          sink: { order: orderEvent, fill: fillEvent, position: positionEvent },
          session: {
            pollIntervalMs: cfg.POLYBOT_EXECUTOR_POLL_MS,
            limits: { share: cfg.POLYBOT_EXECUTOR_RATE_SHARE, signerTier: cfg.POLYBOT_EXECUTOR_RATE_TIER as SignerTierName },
            ...(cfg.POLYBOT_EXECUTOR_HEARTBEAT_MS === 0 ? { heartbeat: false as const } : { heartbeat: { intervalMs: cfg.POLYBOT_EXECUTOR_HEARTBEAT_MS } }),
          },
        });
      }
      quotesSub = new BusSubscriber({
        endpoints: [ctx.endpoints['prices.pub']],
        topics: ['price.', 'book.'],
        name: 'prices.pub',
        log: ctx.log.child({ component: 'quotes' }),
        onMessage: (msg) => {
          if (msg.type === 'book') {
            const b = msg as BookMessage;
            if (paper) return onPaperBook(b);
            // Kept as received: most books are never needed, so levels are read only to price an order.
            depth.set(b.token_id, { at: Date.now(), book: b });
            return;
          }
          // An untrusted book must not price anything until its next snapshot.
          if (msg.type === 'book_status' && !(msg as BookStatusMessage).trusted) {
            depth.delete((msg as BookStatusMessage).token_id);
            return;
          }
          if (msg.type !== 'price') return;
          const p = msg as PriceMessage;
          quotes.set(p.token_id, { bid: p.bid === null ? null : toMicros(p.bid), ask: p.ask === null ? null : toMicros(p.ask) });
        },
      });
      quotesSub.start();
      if (venue) {
        const v = venue;
        marketsSub = new BusSubscriber({
          endpoints: [ctx.endpoints['prices.pub']],
          topics: ['market.'],
          name: 'prices.pub markets',
          log: ctx.log.child({ component: 'resolutions' }),
          onMessage: (msg) => {
            const m = msg as MarketMessage;
            if (m.type === 'market' && m.event === 'resolved' && m.winning_token_id) v.resolveMarket(m.market, m.winning_token_id);
          },
        });
        marketsSub.start();
      }
      replier = new BusReplier({
        endpoint: ctx.endpoints['executor.rep'],
        src: ctx.name,
        handlers: { 'positions.list': listPositions, 'orders.list': listOrders, 'venue.status': venueStatus, ...controlHandlers },
        log: ctx.log.child({ component: 'executor.rep' }),
      });
      await replier.start();
      if (paper) {
        paperTimer = setInterval(expirePaper, 1000);
        paperTimer.unref();
      }
      if (!venue) return startIntake();
      // Intake opens only after the first full reconciliation with the venue; until then signals
      // wait in the strategies' sockets and health says why. start() itself never waits for the venue.
      await venue.start(() => {
        log.info('reconciled with the venue');
        startIntake().catch((err: unknown) => log.error({ err }, 'could not open the signal intake'));
      });
    },

    stop() {
      stopping ??= (async () => {
        stopped = true;
        if (paperTimer) clearInterval(paperTimer);
        // Stop intake first; the order in flight finishes (bounded by the order timeout) and is recorded.
        await intakeStarting;
        await puller?.close();
        await inflight;
        await Promise.allSettled([...posting]);
        // Open orders are cancelled or kept as configured; kept ones stay known to the next run's reconciliation.
        const cancel = cfg.POLYBOT_EXECUTOR_ON_STOP === 'cancel';
        if (venue) log.info({ open_orders: store?.openOrderRows().length ?? 0, on_stop: cfg.POLYBOT_EXECUTOR_ON_STOP }, 'stopping the venue session');
        await venue?.stop(cancel);
        await replier?.close();
        await quotesSub?.close();
        await marketsSub?.close();
        store?.close();
      })();
      return stopping;
    },

    metrics() {
      const byStatus = store?.db.open ? store.ordersByStatus() : {};
      const orders: Record<string, number> = {};
      for (const s of ['pending', 'live', 'partially_filled', 'filled', 'canceled', 'rejected', 'unknown'] as const) {
        orders[`orders_${s}`] = byStatus[s] ?? 0;
      }
      return {
        execution_mode: cfg.POLYBOT_EXECUTION_MODE,
        signals_received: counters.received,
        signals_accepted: counters.accepted,
        signals_denied: counters.denied,
        signals_dead_lettered: counters.dead_lettered,
        signals_duplicate: counters.duplicate,
        ...(venue
          ? {
              venue_state: venue.state().state,
              venue_auth_ready: venue.apiKey ? 1 : 0,
              venue_balance_mismatches: venue.balanceMismatches.length,
              ...Object.fromEntries(Object.entries(venue.counters).map(([k, n]) => [`venue_${k}`, n])),
              ...Object.fromEntries(Object.entries(venue.session.gate.snapshot().counters).map(([k, n]) => [`venue_gate_${k}`, n])),
            }
          : {}),
        intake_open: puller ? 1 : 0,
        trading_state: tradingState,
        quotes_known: quotes.size,
        ...orders,
      };
    },

    health() {
      if (paperMode) return tradingState === 'HALTED' ? { state: 'degraded', message: `trading halted: ${tradingReason ?? 'kill switch'}` } : { state: 'running', message: 'paper trading' };
      if (tradingState === 'HALTED') return { state: 'degraded', message: `trading halted: ${tradingReason ?? 'kill switch'}` };
      const v = venue as VenueTrading;
      const st = v.state();
      if (st.state !== 'ready') return { state: 'degraded', message: `venue ${st.state}${st.reason ? `: ${st.reason}` : ''}${puller ? '' : '; not taking signals until reconciled'}` };
      const can = v.canTrade();
      if (!can.ok) return { state: 'degraded', message: `new orders paused (${can.code}): ${can.reason}` };
      return { state: 'running' };
    },
  };
}
