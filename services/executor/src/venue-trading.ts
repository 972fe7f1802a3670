/**
 * The executor's venue side in `sim` and `live` mode: one `VenueSession` (key, user channel,
 * reconciliation, gate, heartbeats, settling ambiguous posts) joined to the executor's tables.
 *
 * - Orders follow `order-state.ts`: every input (POST answer, stream event, REST refresh, lookup,
 *   fill, cancel answer) is applied to the stored row, in whatever order they arrive.
 * - Positions follow the venue's trades only (`inventory.ts`): a fill counts as pending when
 *   matched, settles when CONFIRMED, and is voided when FAILED. POST answers never move a position,
 *   so a fill can neither be counted twice nor survive a failed settlement.
 * - Nothing is accepted before the first reconciliation; orders a crashed run left `pending` or
 *   `unknown` are settled by lookup or by re-posting the identical signed body, never re-signed.
 */
import type { Logger } from '@polybot/core';
import { getPublicJson, PublicApiError, type PostOrderBody, type TypedDataSigner } from '@polybot/polymarket';
import { fromMicros, mulMicros, toMicros, type OrderStatus } from '@polybot/protocol';
import type { ExecutorStore, OrderRow, PositionRow, TradeRow } from './db.js';
import { Inventory, type FillSettlement } from './inventory.js';
import { applyOrderInput, toWireStatus, type OrderInput, type OrderState } from './order-state.js';
import { takerFee, type PaperFeeSchedule } from './paper.js';
import { applyTradeStatus, type TradeStatus } from './trade-state.js';
import {
  VenueSession,
  type CanTrade,
  type CancelResult,
  type ReconciledSnapshot,
  type SessionState,
  type VenueOrderUpdate,
  type VenueSessionOptions,
  type VenueTradeUpdate,
} from './venue-session.js';

const TERMINAL: ReadonlySet<OrderStatus> = new Set(['filled', 'canceled', 'rejected']);
/** How far back of the earliest unsettled trade reconciliation re-reads (the venue filters by second). */
const TRADE_OVERLAP_MS = 5_000;
/** Longest the intake waits after reconciliation for new orders to be allowed (first heartbeat). */
const INTAKE_WAIT_MS = 15_000;

const clip = (s: string, n = 500) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const posKey = (strategy: string, tokenId: string) => `${strategy}\n${tokenId}`;

function settlementOf(status: TradeStatus | undefined): FillSettlement {
  return status === 'confirmed' ? 'confirmed' : status === 'failed' ? 'failed' : 'pending';
}

/** What the executor publishes; the rows are already committed when these are called. */
export interface TradingSink {
  order(o: OrderRow): void;
  fill(t: TradeRow): void;
  position(p: PositionRow): void;
}

export interface VenueTradingOptions {
  store: ExecutorStore;
  signer: TypedDataSigner;
  urls: { clob: string; ws: string };
  log: Logger;
  sink: TradingSink;
  orderTimeoutMs: number;
  /** Passed through to the session (tests shorten timings). */
  session?: Partial<VenueSessionOptions>;
}

export class VenueTrading {
  readonly session: VenueSession;
  private readonly store: ExecutorStore;
  private readonly log: Logger;
  private readonly sink: TradingSink;
  private readonly inventories = new Map<string, Inventory>();
  /** Fee schedules by condition id (`/clob-markets/{cid}` `fd`); null = the market charges no fee. */
  private readonly feeSchedules = new Map<string, PaperFeeSchedule | null>();
  private reconciledOnce = false;
  /** The venue's order version (`GET /version`), from the last reconciliation or a re-read after a mismatch. */
  orderVersion: number | undefined;
  private readyListeners: Array<() => void> = [];
  readonly counters = {
    posts_accepted: 0,
    posts_rejected: 0,
    posts_not_sent: 0,
    posts_ambiguous: 0,
    reconciliations: 0,
    orders_settled_at_start: 0,
    order_updates_refused: 0,
    foreign_order_updates: 0,
    foreign_fills: 0,
    trade_updates: 0,
    fills_voided: 0,
    balance_mismatches: 0,
  };
  /** Last reconciliation's token balance differences (venue − ours), for status and logs. */
  private mismatches: string[] = [];

  constructor(private readonly opts: VenueTradingOptions) {
    this.store = opts.store;
    this.log = opts.log;
    this.sink = opts.sink;
    this.session = new VenueSession({
      urls: opts.urls,
      signer: opts.signer,
      log: opts.log.child({ component: 'venue' }),
      tradingEnabled: true,
      orderTimeoutMs: opts.orderTimeoutMs,
      ...opts.session,
    });
    this.session.onReconciled((s) => this.guard('reconciliation', () => this.onReconciled(s)));
    this.session.onOrderUpdate((u) => this.guard('order update', () => this.onOrderUpdate(u)));
    this.session.onTradeUpdate((u) => this.guard('trade update', () => this.onTradeUpdate(u)));
    this.session.onState((s) => this.onState(s));
    this.loadInventories();
  }

  /**
   * Reads a market's fee schedule once, so fills can carry their fee when they arrive. A failure
   * is logged and tried again with the next order; fills meanwhile count no fee.
   */
  async prepareMarket(conditionId: string): Promise<void> {
    if (this.feeSchedules.has(conditionId)) return;
    try {
      const body = (await getPublicJson(`${this.opts.urls.clob}/clob-markets/${encodeURIComponent(conditionId)}`, { timeoutMs: 5_000 })) as {
        fd?: { r?: unknown; e?: unknown } | null;
      };
      const fd = body.fd;
      const ok = fd && typeof fd.r === 'number' && typeof fd.e === 'number' && Number.isInteger(fd.e) && fd.e >= 0 && fd.e <= 8;
      // The rate in basis points, as the paper engine's fee function takes it (0.25 → 2500).
      this.feeSchedules.set(conditionId, ok ? { rateBps: toMicros(String(fd.r)) / 100n, exponent: fd.e as number } : null);
    } catch (err) {
      if (err instanceof PublicApiError && err.status === 404) this.feeSchedules.set(conditionId, null);
      else this.log.warn({ market: conditionId, err: (err as Error).message }, 'fee schedule not available; fills count no fee until it is');
    }
  }

  /** Starts the session with what the tables know; `onReady` runs once, after the first reconciliation. */
  async start(onReady: () => void): Promise<void> {
    this.readyListeners.push(onReady);
    // Fees of the markets already traded, so fills reconciled at start carry theirs.
    const markets = new Set([...this.store.listPositions().map((p) => p.market), ...this.store.openOrderRows().map((o) => o.market)]);
    await Promise.all([...markets].slice(0, 200).map((m) => this.prepareMarket(m)));
    const since = this.store.tradeReadFrom();
    const open = this.store.openOrderRows().filter((o) => o.status === 'live' || o.status === 'partially_filled');
    const tokens = new Set(this.store.listPositions().map((p) => p.token_id));
    void this.session.start({
      ...(since === undefined ? {} : { tradesSinceMs: Math.max(0, since - TRADE_OVERLAP_MS) }),
      openOrderIds: open.map((o) => o.venue_order_id ?? o.order_id),
      tokens: [...tokens],
    });
  }

  state(): SessionState {
    return this.session.state();
  }

  canTrade(postOnly = false): CanTrade {
    return this.session.canTrade(postOnly ? 'post_only_order' : 'order');
  }

  get apiKey(): string | undefined {
    return this.session.apiKey;
  }

  get balanceMismatches(): readonly string[] {
    return this.mismatches;
  }

  /** The position of one strategy in one token, from its fills (settled and pending apart). */
  inventory(strategy: string, tokenId: string): Inventory {
    const key = posKey(strategy, tokenId);
    let inv = this.inventories.get(key);
    if (!inv) {
      inv = new Inventory();
      this.inventories.set(key, inv);
    }
    return inv;
  }

  /** Posts an order whose row (with the signed body) is already committed, and applies the answer. */
  async submit(row: OrderRow, body: PostOrderBody, negRisk: boolean): Promise<void> {
    const res = await this.session.submit(body, { negRisk, orderId: row.order_id });
    this.counters[`posts_${res.outcome.kind}`]++;
    this.apply(row.order_id, res.input, 'post');
  }

  private lastVersionRead = 0;

  /** While the venue is on a version this executor does not sign, look again now and then (it may come back). */
  refreshVersionSoon(): void {
    if (Date.now() - this.lastVersionRead > 10_000) void this.rereadVersion();
  }

  /** Reads `GET /version` again (after an `order_version_mismatch`, or while on another version). */
  async rereadVersion(): Promise<void> {
    this.lastVersionRead = Date.now();
    try {
      this.orderVersion = await this.session.version();
      this.log.warn({ version: this.orderVersion }, 'order version re-read from the venue');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not re-read the order version');
    }
  }

  async cancel(orderIds: readonly string[]): Promise<CancelResult> {
    const res = await this.session.cancel(orderIds);
    this.applyCancel(res);
    return res;
  }

  async cancelAll(): Promise<CancelResult> {
    const res = await this.session.cancelAll();
    this.applyCancel(res);
    return res;
  }

  /** A market resolved: its positions close at 1 (winning token) or 0. */
  resolveMarket(conditionId: string, winningTokenId: string): void {
    const now = Date.now();
    for (const p of this.store.listPositions()) {
      if (p.market !== conditionId) continue;
      const inv = this.inventory(p.strategy, p.token_id);
      const r = inv.resolveOutcome(p.token_id === winningTokenId);
      if (!r.ok) {
        this.log.warn({ market: conditionId, token: p.token_id, code: r.code, reason: r.reason }, 'resolution not applied');
        continue;
      }
      if (!r.changed) continue;
      const row = this.positionRow(p.strategy, p.token_id, p.market, now);
      this.store.upsertPosition(row);
      this.log.info({ market: conditionId, token: p.token_id, strategy: p.strategy, won: p.token_id === winningTokenId, realized: row.realized_pnl }, 'position settled by resolution');
      this.sink.position(row);
    }
  }

  /** Stops the session; with `cancelAll` the account's open orders are cancelled first and the rows say so. */
  async stop(cancelAll: boolean): Promise<void> {
    if (cancelAll && this.session.apiKey) {
      const r = await this.cancelAll();
      if (r.error) this.log.warn({ error: r.error }, 'cancel-all before stop did not complete; the venue dead-man switch is the backstop');
      else this.log.info({ canceled: r.canceled.length }, 'open orders cancelled before stop');
    }
    await this.session.stop();
  }

  // ---------------------------------------------------------------- state from the tables

  /** Positions are the fold of their fills: rebuilt from the trade rows at start, in arrival order. */
  private loadInventories(): void {
    for (const t of this.store.allTrades()) {
      const inv = this.inventory(t.strategy, t.token_id);
      const r = inv.addFill(
        { tradeId: t.trade_id, side: t.side, size: toMicros(t.size), usdc: toMicros(t.usdc ?? '0'), fee: toMicros(t.fee) },
        settlementOf(t.status as TradeStatus | undefined),
      );
      if (!r.ok) this.log.warn({ trade: t.trade_id, code: r.code, reason: r.reason }, 'stored trade not folded into its position');
    }
    for (const p of this.store.listPositions()) {
      if (p.resolved !== null && p.resolved !== undefined) this.inventory(p.strategy, p.token_id).resolve(p.resolved);
    }
  }

  private orderState(row: OrderRow): OrderState {
    const fills = new Map<string, bigint>();
    let sum = 0n;
    for (const t of this.store.tradesOfOrder(row.order_id)) {
      if (t.status === 'failed') continue;
      const n = toMicros(t.size);
      fills.set(t.trade_id, n);
      sum += n;
    }
    const filled = toMicros(row.filled);
    return {
      status: row.status,
      orderType: row.order_type,
      size: toMicros(row.size),
      venueMatched: filled,
      fills,
      matched: filled > sum ? filled : sum,
      ...(row.venue_order_id ? { venueOrderId: row.venue_order_id } : {}),
      ...(row.reason ? { reason: row.reason } : {}),
    };
  }

  private positionRow(strategy: string, tokenId: string, market: string, now: number): PositionRow {
    const v = this.inventory(strategy, tokenId).view();
    return {
      strategy,
      token_id: tokenId,
      market,
      size: fromMicros(v.size),
      avg_price: fromMicros(v.avgPrice),
      cost: fromMicros(v.cost),
      realized_pnl: fromMicros(v.realized),
      updated_at: now,
      settled: fromMicros(v.settled),
      pending_buy: fromMicros(v.pendingBuy),
      pending_sell: fromMicros(v.pendingSell),
      fees: fromMicros(v.fees),
      resolved: v.resolved === undefined ? null : fromMicros(v.resolved),
    };
  }

  // ---------------------------------------------------------------- venue → tables

  /** Applies one input to a stored order; commits and publishes only a real change. */
  private apply(orderId: string, input: OrderInput, why: string): void {
    const row = this.store.order(orderId);
    if (!row) {
      this.counters.foreign_order_updates++;
      this.log.debug({ order: orderId, why }, 'update for an order this executor does not hold');
      return;
    }
    const t = applyOrderInput(this.orderState(row), input);
    if (!t.ok) {
      this.counters.order_updates_refused++;
      this.log.warn({ order: orderId, why, code: t.code, reason: t.reason }, 'order update refused');
      return;
    }
    const s = t.state;
    const next: OrderRow = {
      ...row,
      status: toWireStatus(s),
      filled: fromMicros(s.matched),
      reason: s.reason ? clip(s.reason) : row.reason,
      venue_order_id: s.venueOrderId ?? row.venue_order_id,
    };
    if (next.status === row.status && next.filled === row.filled && next.reason === row.reason && next.venue_order_id === row.venue_order_id) return;
    next.updated_at = Date.now();
    this.store.recordOutcome(next, [], undefined, TERMINAL.has(next.status) ? 'done' : undefined);
    this.log.info({ order: orderId, why, status: next.status, filled: next.filled, reason: next.reason ?? undefined }, 'order updated');
    this.sink.order(next);
  }

  private applyCancel(res: CancelResult): void {
    for (const a of res.acks) this.apply(a.orderId, a.input, 'cancel');
  }

  private onOrderUpdate(u: VenueOrderUpdate): void {
    this.apply(u.orderId, u.input, u.settlement ? `settle:${u.settlement}` : u.source);
  }

  private onTradeUpdate(u: VenueTradeUpdate): void {
    this.counters.trade_updates++;
    const now = Date.now();
    const fills: TradeRow[] = [];
    const touched = new Map<string, PositionRow>();
    const orders: Array<[string, OrderInput]> = [];
    this.store.db.transaction(() => {
      for (const f of u.fills) {
        const row = this.store.order(f.orderId);
        if (!row) {
          this.counters.foreign_fills++;
          this.log.warn({ trade: u.tradeId, order: f.orderId }, 'fill for an order this executor does not hold');
          continue;
        }
        if (f.size <= 0n) continue;
        const fillId = f.role === 'TAKER' ? u.tradeId : `${u.tradeId}:${row.order_id}`;
        const inv = this.inventory(row.strategy, row.token_id);
        const stored = this.store.trade(fillId);
        if (!stored) {
          const settlement = settlementOf(u.status);
          const px = toMicros(f.price);
          const usdc = mulMicros(px, f.size);
          // Makers pay no fee; the taker pays it in pUSD on top of (buy) or out of (sell) the proceeds.
          const fee = f.role === 'TAKER' ? takerFee(f.size, px, usdc, this.feeSchedules.get(row.market) ?? undefined) : 0n;
          const r = inv.addFill({ tradeId: fillId, side: row.side, size: f.size, usdc, fee }, settlement);
          if (!r.ok) {
            this.log.warn({ trade: fillId, code: r.code, reason: r.reason }, 'fill refused by the position');
            continue;
          }
          const trade: TradeRow = {
            trade_id: fillId,
            order_id: row.order_id,
            strategy: row.strategy,
            token_id: row.token_id,
            market: row.market,
            side: row.side,
            price: f.price,
            size: fromMicros(f.size),
            fee: fromMicros(fee),
            ts: now,
            venue_trade_id: u.tradeId,
            status: u.status ?? 'matched',
            usdc: fromMicros(usdc),
            match_ts: u.trade.match_time_ms ?? u.trade.timestamp_ms,
          };
          this.store.insertTrade(trade);
          if (settlement !== 'failed') {
            fills.push(trade);
            orders.push([row.order_id, { kind: 'fill', tradeId: fillId, size: f.size }]);
          } else this.counters.fills_voided++;
          touched.set(posKey(row.strategy, row.token_id), this.positionRow(row.strategy, row.token_id, row.market, now));
          continue;
        }
        if (!u.status) continue;
        const t = applyTradeStatus({ tradeId: fillId, status: (stored.status ?? 'matched') as TradeStatus }, fillId, u.status);
        if (!t.ok) {
          this.log.warn({ trade: fillId, code: t.code, reason: t.reason }, 'trade status refused');
          continue;
        }
        if (!t.changed) continue;
        this.store.setTradeStatus(fillId, t.state.status);
        if (t.effect === 'confirmed' || t.effect === 'voided') {
          const r = t.effect === 'confirmed' ? inv.confirm(fillId) : inv.fail(fillId);
          if (!r.ok) this.log.warn({ trade: fillId, code: r.code, reason: r.reason }, 'settlement refused by the position');
          if (t.effect === 'voided') {
            this.counters.fills_voided++;
            this.log.warn({ trade: fillId, order: row.order_id }, 'trade FAILED: its fill is voided');
          }
          touched.set(posKey(row.strategy, row.token_id), this.positionRow(row.strategy, row.token_id, row.market, now));
        }
      }
      for (const p of touched.values()) this.store.upsertPosition(p);
    })();
    for (const [id, input] of orders) this.apply(id, input, 'fill');
    for (const t of fills) this.sink.fill(t);
    for (const p of touched.values()) this.sink.position(p);
  }

  private onReconciled(s: ReconciledSnapshot): void {
    this.counters.reconciliations++;
    this.orderVersion = s.version;
    for (const u of s.orders) this.onOrderUpdate(u);
    for (const t of s.trades) this.onTradeUpdate(t);
    this.checkBalances(s);
    if (s.cause === 'start' && !this.reconciledOnce) {
      // Orders a previous run persisted but never saw answered: looked up, or the identical body re-posted.
      for (const row of this.store.unsettledOrders()) {
        const body = this.bodyOf(row);
        if (!body) {
          this.apply(row.order_id, { kind: 'lookup', found: false, final: true }, 'no stored request');
          continue;
        }
        this.counters.orders_settled_at_start++;
        this.session.settle(body.body, { negRisk: body.negRisk, orderId: row.order_id });
        this.log.warn({ order: row.order_id, status: row.status }, 'settling an order left open by the last run');
      }
    }
  }

  /** The signed body stored with the order, and the exchange it was signed for. */
  private bodyOf(row: OrderRow): { body: PostOrderBody; negRisk: boolean } | undefined {
    if (!row.request) return undefined;
    try {
      const body = JSON.parse(row.request) as PostOrderBody;
      if (!body.order || typeof body.order !== 'object') return undefined;
      return { body, negRisk: this.store.market(row.token_id)?.negRisk === true };
    } catch {
      return undefined;
    }
  }

  /** Our positions against the venue's token balances; differences are logged and counted, never papered over. */
  private checkBalances(s: ReconciledSnapshot): void {
    const now = Date.now();
    const c = s.balances.collateral;
    this.store.setWallet(this.opts.signer.address, fromMicros(BigInt(c.balance)), c.allowances ? JSON.stringify(c.allowances) : null, now);
    const ours = new Map<string, bigint>();
    for (const p of this.store.listPositions()) ours.set(p.token_id, (ours.get(p.token_id) ?? 0n) + toMicros(p.size));
    const out: string[] = [];
    for (const [token, b] of Object.entries(s.balances.tokens)) {
      const venue = BigInt(b.balance);
      const mine = ours.get(token) ?? 0n;
      if (venue !== mine) out.push(`${token}: venue ${fromMicros(venue)}, executor ${fromMicros(mine)}`);
    }
    this.mismatches = out;
    if (out.length > 0) {
      this.counters.balance_mismatches += out.length;
      this.log.warn({ mismatches: out.slice(0, 20) }, 'token balances differ from the executor positions (trades still settling, or activity outside this executor)');
    }
  }

  private onState(s: SessionState): void {
    if (s.state !== 'ready' || this.reconciledOnce) return;
    this.reconciledOnce = true;
    // Signals queued while the executor was down arrive at once: open the intake when a new order
    // may go (the first heartbeat accepted), not a moment before, or they would all be denied.
    // Bounded: past it the intake opens and denials say why.
    const until = Date.now() + INTAKE_WAIT_MS;
    const open = () => {
      if (this.session.canTrade().ok || Date.now() >= until || this.session.state().state === 'closed') {
        for (const f of this.readyListeners.splice(0)) f();
        return;
      }
      setTimeout(open, 25).unref();
    };
    open();
  }

  /** A bad venue message must not take the executor down: logged, counted, and the rest goes on. */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.counters.order_updates_refused++;
      this.log.error({ err }, `applying a ${what} failed`);
    }
  }
}
