import { migrate, openDatabase, type Migration, type SqliteDb } from '@polybot/core';
import type { OrderStatus, Side, SignalMessage } from '@polybot/protocol';

/** The executor's tables, exactly as docs/interfaces.md; money columns are exact decimal strings. */
export const EXECUTOR_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'signals, orders, trades, positions, dead letters',
    sql: `
CREATE TABLE signals (id TEXT PRIMARY KEY, strategy TEXT NOT NULL, token_id TEXT NOT NULL, received_at INTEGER NOT NULL,
  status TEXT NOT NULL, code TEXT, reason TEXT, payload TEXT NOT NULL);
CREATE TABLE orders (order_id TEXT PRIMARY KEY, signal_id TEXT UNIQUE, strategy TEXT NOT NULL, venue_order_id TEXT,
  token_id TEXT NOT NULL, market TEXT NOT NULL, side TEXT NOT NULL, order_type TEXT NOT NULL,
  price TEXT NOT NULL, size TEXT NOT NULL, filled TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
  request TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE trades (trade_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, strategy TEXT NOT NULL, token_id TEXT NOT NULL,
  market TEXT NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL, size TEXT NOT NULL, fee TEXT NOT NULL, ts INTEGER NOT NULL);
CREATE TABLE positions (strategy TEXT NOT NULL, token_id TEXT NOT NULL, market TEXT NOT NULL, size TEXT NOT NULL,
  avg_price TEXT NOT NULL, cost TEXT NOT NULL, realized_pnl TEXT NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (strategy, token_id));
CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, code TEXT NOT NULL,
  reason TEXT NOT NULL, topic TEXT, payload BLOB, created_at INTEGER NOT NULL);
CREATE INDEX orders_strategy_created ON orders (strategy, created_at);
CREATE INDEX orders_open ON orders (strategy, token_id, status);
CREATE INDEX trades_order ON trades (order_id);
`,
  },
  {
    version: 2,
    name: 'executor controls (trading state, limits, daily baseline)',
    sql: `
CREATE TABLE executor_controls (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);
`,
  },
  {
    version: 3,
    name: 'trade settlement, settled/pending inventory, resolution, wallets',
    sql: `
ALTER TABLE trades ADD COLUMN venue_trade_id TEXT;
ALTER TABLE trades ADD COLUMN status TEXT NOT NULL DEFAULT 'confirmed';
ALTER TABLE trades ADD COLUMN usdc TEXT NOT NULL DEFAULT '0';
ALTER TABLE trades ADD COLUMN match_ts INTEGER;
CREATE INDEX trades_venue ON trades (venue_trade_id);
CREATE INDEX orders_venue ON orders (venue_order_id);
ALTER TABLE positions ADD COLUMN settled TEXT NOT NULL DEFAULT '0';
ALTER TABLE positions ADD COLUMN pending_buy TEXT NOT NULL DEFAULT '0';
ALTER TABLE positions ADD COLUMN pending_sell TEXT NOT NULL DEFAULT '0';
ALTER TABLE positions ADD COLUMN fees TEXT NOT NULL DEFAULT '0';
ALTER TABLE positions ADD COLUMN resolved TEXT;
CREATE TABLE wallets (address TEXT PRIMARY KEY, collateral TEXT NOT NULL, allowance TEXT, updated_at INTEGER NOT NULL);
`,
  },
];

export type SignalStatus = 'accepted' | 'denied' | 'dead_lettered' | 'done';

export interface OrderRow {
  order_id: string;
  signal_id: string | null;
  strategy: string;
  venue_order_id: string | null;
  token_id: string;
  market: string;
  side: Side;
  order_type: SignalMessage['order_type'];
  price: string;
  size: string;
  filled: string;
  status: OrderStatus;
  reason: string | null;
  request: string | null;
  created_at: number;
  updated_at: number;
}

export interface TradeRow {
  /** The venue trade id; `<trade id>:<order id>` for a maker fill (one trade can fill several of our orders). */
  trade_id: string;
  order_id: string;
  strategy: string;
  token_id: string;
  market: string;
  side: Side;
  price: string;
  size: string;
  fee: string;
  ts: number;
  venue_trade_id?: string | null;
  /** matched | mined | retrying | confirmed | failed (trade-state.ts); a failed trade's fill does not count. */
  status?: string;
  /** pUSD that changed hands for the shares (exact decimal). */
  usdc?: string;
  /** The venue's match time (ms). */
  match_ts?: number | null;
}

export interface PositionRow {
  strategy: string;
  token_id: string;
  market: string;
  size: string;
  avg_price: string;
  cost: string;
  realized_pnl: string;
  updated_at: number;
  /** Shares of confirmed trades; `size` minus this is still settling. */
  settled?: string;
  pending_buy?: string;
  pending_sell?: string;
  fees?: string;
  /** Payout per share once the market resolved ("1" or "0"). */
  resolved?: string | null;
}

/** A market as the scanner registered it. */
export interface MarketInfo {
  conditionId: string;
  negRisk: boolean;
  tickSize: string;
  minOrderSize: string;
  active: boolean;
  closed: boolean;
}

export const OPEN_STATUSES: readonly OrderStatus[] = ['pending', 'live', 'partially_filled', 'unknown'];

function prepareStatements(db: SqliteDb) {
  return {
    hasSignal: db.prepare('SELECT 1 FROM signals WHERE id = ?').pluck(),
    insertSignal: db.prepare(
      'INSERT INTO signals (id, strategy, token_id, received_at, status, code, reason, payload) VALUES (@id, @strategy, @token_id, @received_at, @status, @code, @reason, @payload)',
    ),
    setSignalStatus: db.prepare('UPDATE signals SET status = ? WHERE id = ?'),
    insertOrder: db.prepare(
      `INSERT INTO orders (order_id, signal_id, strategy, venue_order_id, token_id, market, side, order_type, price, size, filled, status, reason, request, created_at, updated_at)
       VALUES (@order_id, @signal_id, @strategy, @venue_order_id, @token_id, @market, @side, @order_type, @price, @size, @filled, @status, @reason, @request, @created_at, @updated_at)`,
    ),
    updateOrder: db.prepare(
      'UPDATE orders SET venue_order_id = @venue_order_id, filled = @filled, status = @status, reason = @reason, updated_at = @updated_at WHERE order_id = @order_id',
    ),
    insertTrade: db.prepare(
      `INSERT OR IGNORE INTO trades (trade_id, order_id, strategy, token_id, market, side, price, size, fee, ts, venue_trade_id, status, usdc, match_ts)
       VALUES (@trade_id, @order_id, @strategy, @token_id, @market, @side, @price, @size, @fee, @ts, @venue_trade_id, @status, @usdc, @match_ts)`,
    ),
    trade: db.prepare('SELECT * FROM trades WHERE trade_id = ?'),
    order: db.prepare('SELECT * FROM orders WHERE order_id = ? OR venue_order_id = ?'),
    setTradeStatus: db.prepare('UPDATE trades SET status = ? WHERE trade_id = ?'),
    tradesOfOrder: db.prepare('SELECT trade_id, size, status FROM trades WHERE order_id = ?'),
    allTrades: db.prepare('SELECT * FROM trades ORDER BY rowid'),
    position: db.prepare('SELECT * FROM positions WHERE strategy = ? AND token_id = ?'),
    upsertPosition: db.prepare(
      `INSERT INTO positions (strategy, token_id, market, size, avg_price, cost, realized_pnl, updated_at, settled, pending_buy, pending_sell, fees, resolved)
       VALUES (@strategy, @token_id, @market, @size, @avg_price, @cost, @realized_pnl, @updated_at, @settled, @pending_buy, @pending_sell, @fees, @resolved)
       ON CONFLICT (strategy, token_id) DO UPDATE SET market = excluded.market, size = excluded.size, avg_price = excluded.avg_price,
         cost = excluded.cost, realized_pnl = excluded.realized_pnl, updated_at = excluded.updated_at, settled = excluded.settled,
         pending_buy = excluded.pending_buy, pending_sell = excluded.pending_sell, fees = excluded.fees, resolved = excluded.resolved`,
    ),
    positionsAll: db.prepare('SELECT * FROM positions ORDER BY strategy, token_id'),
    positionsOf: db.prepare('SELECT * FROM positions WHERE strategy = ? ORDER BY token_id'),
    openOrders: db.prepare(
      `SELECT side, size, filled FROM orders WHERE strategy = ? AND token_id = ? AND status IN (${OPEN_STATUSES.map(() => '?').join(', ')})`,
    ),
    ordersByStatus: db.prepare('SELECT status, COUNT(*) AS n FROM orders GROUP BY status'),
    pendingOrders: db.prepare("SELECT * FROM orders WHERE status = 'pending'"),
    insertDeadLetter: db.prepare(
      'INSERT INTO dead_letters (source, code, reason, topic, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
  };
}
type Statements = ReturnType<typeof prepareStatements>;

/** Everything the executor reads and writes in `polybot.db`. */
export class ExecutorStore {
  readonly db: SqliteDb;
  private readonly st: Statements;
  private marketStmt?: ReturnType<SqliteDb['prepare']>;
  private allOpenStmt?: { all(...params: unknown[]): unknown[] };
  // Asked on every signal (daily loss window): prepared once.
  private controlGet?: { get(...params: unknown[]): unknown };
  private controlSet?: { run(...params: unknown[]): unknown };

  constructor(file: string) {
    // NORMAL (WAL): commits survive a process crash; only the order intent also has to survive
    // power loss (persist before send), so `acceptSignal` alone commits with FULL. Everything else
    // is the venue's record first and comes back by reconciliation.
    this.db = openDatabase(file, { synchronous: 'NORMAL' });
    migrate(this.db, 'executor', EXECUTOR_MIGRATIONS);
    this.st = prepareStatements(this.db);
  }

  hasSignal(id: string): boolean {
    return this.st.hasSignal.get(id) !== undefined;
  }

  /** The scanner's view of a token's market; undefined when unknown or the scanner has not created its tables yet. */
  market(tokenId: string): MarketInfo | undefined {
    try {
      this.marketStmt ??= this.db.prepare(
        `SELECT m.condition_id, m.neg_risk, m.tick_size, m.min_order_size, m.active, m.closed
         FROM market_tokens t JOIN markets m ON m.condition_id = t.condition_id WHERE t.token_id = ?`,
      );
    } catch {
      return undefined; // no such table: scanner not started yet; prepare again next time
    }
    const r = this.marketStmt.get(tokenId) as
      | { condition_id: string; neg_risk: number; tick_size: string; min_order_size: string; active: number; closed: number }
      | undefined;
    if (!r) return undefined;
    return {
      conditionId: r.condition_id,
      negRisk: r.neg_risk !== 0,
      tickSize: String(r.tick_size),
      minOrderSize: String(r.min_order_size),
      active: r.active !== 0,
      closed: r.closed !== 0,
    };
  }

  position(strategy: string, tokenId: string): PositionRow | undefined {
    return this.st.position.get(strategy, tokenId) as PositionRow | undefined;
  }

  openOrders(strategy: string, tokenId: string): { side: Side; size: string; filled: string }[] {
    return this.st.openOrders.all(strategy, tokenId, ...OPEN_STATUSES) as { side: Side; size: string; filled: string }[];
  }

  insertSignal(sig: SignalMessage, status: SignalStatus, receivedAt: number, code: string | null = null, reason: string | null = null): void {
    this.st.insertSignal.run({
      id: sig.id,
      strategy: sig.strategy,
      token_id: sig.token_id,
      received_at: receivedAt,
      status,
      code,
      reason,
      payload: JSON.stringify(sig),
    });
  }

  setSignalStatus(id: string, status: SignalStatus): void {
    this.st.setSignalStatus.run(status, id);
  }

  /** Persist before send: the accepted signal and its signed order commit together. */
  acceptSignal(sig: SignalMessage, order: OrderRow): void {
    this.durably(() => {
      this.insertSignal(sig, 'accepted', order.created_at);
      this.st.insertOrder.run(order);
    });
  }

  /** One transaction committed with FULL sync: an order intent must survive power loss, not only a crash. */
  private durably(fn: () => void): void {
    this.db.pragma('synchronous = FULL');
    try {
      this.db.transaction(fn)();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** The venue's answer: order state, its trades and the position move in one transaction. */
  recordOutcome(order: OrderRow, trades: TradeRow[], position: PositionRow | undefined, signalStatus: SignalStatus | undefined): number {
    let inserted = 0;
    this.db.transaction(() => {
      this.st.updateOrder.run(order);
      for (const t of trades) inserted += this.insertTrade(t);
      if (position) this.upsertPosition(position);
      if (signalStatus && order.signal_id) this.setSignalStatus(order.signal_id, signalStatus);
    })();
    return inserted;
  }

  upsertPosition(p: PositionRow): void {
    this.st.upsertPosition.run({ settled: p.size, pending_buy: '0', pending_sell: '0', fees: '0', resolved: null, ...p });
  }

  /** 1 when the trade row is new, 0 when it was already stored. */
  insertTrade(t: TradeRow): number {
    return this.st.insertTrade.run({ venue_trade_id: null, status: 'confirmed', usdc: '0', match_ts: null, ...t }).changes;
  }

  trade(tradeId: string): TradeRow | undefined {
    return this.st.trade.get(tradeId) as TradeRow | undefined;
  }

  setTradeStatus(tradeId: string, status: string): void {
    this.st.setTradeStatus.run(status, tradeId);
  }

  tradesOfOrder(orderId: string): { trade_id: string; size: string; status: string }[] {
    return this.st.tradesOfOrder.all(orderId) as { trade_id: string; size: string; status: string }[];
  }

  /** Every trade row in arrival order (positions are the fold of their fills in this order). */
  allTrades(): TradeRow[] {
    return this.st.allTrades.all() as TradeRow[];
  }

  /**
   * Where reconciliation re-reads trades from: the earliest trade still settling (its CONFIRMED or
   * FAILED may have come while we were down), else the latest match seen; undefined = everything.
   */
  tradeReadFrom(): number | undefined {
    const r = this.db
      .prepare("SELECT MIN(CASE WHEN status NOT IN ('confirmed', 'failed') THEN match_ts END) AS open, MAX(match_ts) AS last, COUNT(*) AS n FROM trades")
      .get() as { open: number | null; last: number | null; n: number };
    if (r.n === 0) return undefined;
    return r.open ?? r.last ?? undefined;
  }

  setWallet(address: string, collateral: string, allowance: string | null, at: number): void {
    this.db
      .prepare(
        'INSERT INTO wallets (address, collateral, allowance, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(address) DO UPDATE SET collateral = excluded.collateral, allowance = excluded.allowance, updated_at = excluded.updated_at',
      )
      .run(address, collateral, allowance, at);
  }

  wallet(address: string): { address: string; collateral: string; allowance: string | null; updated_at: number } | undefined {
    return this.db.prepare('SELECT * FROM wallets WHERE address = ?').get(address) as { address: string; collateral: string; allowance: string | null; updated_at: number } | undefined;
  }

  /**
   * A certain refusal answered by a fresh order for the same signal: the refused row keeps its
   * outcome but no longer holds the signal, and the new one is committed before it is sent.
   */
  replaceRejectedOrder(refused: OrderRow, retry: OrderRow): void {
    this.durably(() => {
      this.db
        .prepare('UPDATE orders SET signal_id = NULL, reason = ?, updated_at = ? WHERE order_id = ?')
        .run(`${refused.reason ?? 'rejected'}; retried as ${retry.order_id}`.slice(0, 500), retry.created_at, refused.order_id);
      this.st.insertOrder.run(retry);
      if (retry.signal_id) this.setSignalStatus(retry.signal_id, 'accepted');
    });
  }

  /** Orders newest first: open ones, or all. */
  listOrders(opts: { strategy?: string; all?: boolean; limit: number }): OrderRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.strategy !== undefined) {
      where.push('strategy = ?');
      args.push(opts.strategy);
    }
    if (!opts.all) {
      where.push(`status IN (${OPEN_STATUSES.map(() => '?').join(',')})`);
      args.push(...OPEN_STATUSES);
    }
    const sql = `SELECT * FROM orders ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, rowid DESC LIMIT ?`;
    return this.db.prepare(sql).all(...args, opts.limit) as OrderRow[];
  }

  /** Open (not terminal) order rows still `pending` or `unknown`: their fate at the venue is not known. */
  unsettledOrders(): OrderRow[] {
    return this.db.prepare("SELECT * FROM orders WHERE status IN ('pending', 'unknown')").all() as OrderRow[];
  }

  listPositions(strategy?: string): PositionRow[] {
    return (strategy === undefined ? this.st.positionsAll.all() : this.st.positionsOf.all(strategy)) as PositionRow[];
  }

  ordersByStatus(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.st.ordersByStatus.all() as { status: string; n: number }[]) out[r.status] = r.n;
    return out;
  }

  /** Orders persisted but never answered (a crash between persist and the answer): the venue may have them. */
  pendingOrders(): OrderRow[] {
    return this.st.pendingOrders.all() as OrderRow[];
  }

  updateOrder(order: OrderRow): void {
    this.st.updateOrder.run(order);
  }

  order(orderId: string): OrderRow | undefined {
    return this.st.order.get(orderId, orderId) as OrderRow | undefined;
  }

  /** Open order rows, optionally of one strategy (for cancels). */
  openOrderRows(strategy?: string): OrderRow[] {
    const marks = OPEN_STATUSES.map(() => '?').join(',');
    return (
      strategy === undefined
        ? this.db.prepare(`SELECT * FROM orders WHERE status IN (${marks})`).all(...OPEN_STATUSES)
        : this.db.prepare(`SELECT * FROM orders WHERE strategy = ? AND status IN (${marks})`).all(strategy, ...OPEN_STATUSES)
    ) as OrderRow[];
  }

  /** Every open order (all strategies), for portfolio limits. */
  allOpenOrders(): { market: string; side: Side; price: string; size: string; filled: string }[] {
    this.allOpenStmt ??= this.db.prepare(
      `SELECT market, side, price, size, filled FROM orders WHERE status IN (${OPEN_STATUSES.map(() => '?').join(',')})`,
    );
    return this.allOpenStmt.all(...(OPEN_STATUSES as unknown[])) as { market: string; side: Side; price: string; size: string; filled: string }[];
  }

  control(key: string): string | undefined {
    this.controlGet ??= this.db.prepare('SELECT value FROM executor_controls WHERE key = ?');
    return (this.controlGet.get(key) as { value: string } | undefined)?.value;
  }

  setControl(key: string, value: string, at: number): void {
    this.controlSet ??= this.db.prepare(
      'INSERT INTO executor_controls (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    );
    this.controlSet.run(key, value, at);
  }

  insertDeadLetter(source: string, code: string, reason: string, topic: string | null, payload: Uint8Array | null, at: number): void {
    this.st.insertDeadLetter.run(source, code, reason, topic, payload ? Buffer.from(payload) : null, at);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
