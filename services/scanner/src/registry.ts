import { migrate, openDatabase, type Migration, type SqliteDb } from '@polybot/core';
import type { MarketInfo } from '@polybot/polymarket';

/** The scanner owns `markets` and `market_tokens` (docs/interfaces.md). */
export const SCANNER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'markets and market_tokens',
    sql: `
CREATE TABLE IF NOT EXISTS markets(condition_id TEXT PRIMARY KEY, gamma_id TEXT, question TEXT NOT NULL, slug TEXT,
        active INTEGER NOT NULL, closed INTEGER NOT NULL, neg_risk INTEGER NOT NULL DEFAULT 0,
        tick_size TEXT NOT NULL, min_order_size TEXT NOT NULL, end_date TEXT, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS market_tokens(token_id TEXT PRIMARY KEY, condition_id TEXT NOT NULL REFERENCES markets(condition_id),
              outcome TEXT NOT NULL, outcome_index INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS market_tokens_condition ON market_tokens(condition_id);
`,
  },
];

/** Writes the market registry to SQLite; the only writer of these two tables. */
export class MarketRegistry {
  private readonly db: SqliteDb;
  private readonly upsertMarket;
  private readonly upsertToken;
  private readonly setTick;
  private readonly upsertAll;

  constructor(file: string) {
    this.db = openDatabase(file);
    migrate(this.db, 'scanner', SCANNER_MIGRATIONS);
    this.upsertMarket = this.db.prepare(`
      INSERT INTO markets (condition_id, gamma_id, question, slug, active, closed, neg_risk, tick_size, min_order_size, end_date, updated_at)
      VALUES (@conditionId, @gammaId, @question, @slug, @active, @closed, @negRisk, @tickSize, @minOrderSize, @endDate, @updatedAt)
      ON CONFLICT(condition_id) DO UPDATE SET gamma_id = excluded.gamma_id, question = excluded.question, slug = excluded.slug,
        active = excluded.active, closed = excluded.closed, neg_risk = excluded.neg_risk, tick_size = excluded.tick_size,
        min_order_size = excluded.min_order_size, end_date = excluded.end_date, updated_at = excluded.updated_at`);
    this.upsertToken = this.db.prepare(`
      INSERT INTO market_tokens (token_id, condition_id, outcome, outcome_index) VALUES (?, ?, ?, ?)
      ON CONFLICT(token_id) DO UPDATE SET condition_id = excluded.condition_id, outcome = excluded.outcome,
        outcome_index = excluded.outcome_index`);
    this.setTick = this.db.prepare('UPDATE markets SET tick_size = ?, updated_at = ? WHERE condition_id = ?');
    this.upsertAll = this.db.transaction((markets: readonly MarketInfo[], now: number) => {
      for (const m of markets) {
        this.upsertMarket.run({
          conditionId: m.conditionId,
          gammaId: m.gammaId,
          question: m.question,
          slug: m.slug,
          active: m.active ? 1 : 0,
          closed: m.closed ? 1 : 0,
          negRisk: m.negRisk ? 1 : 0,
          tickSize: m.tickSize,
          minOrderSize: m.minOrderSize,
          endDate: m.endDate,
          updatedAt: now,
        });
        for (const t of m.tokens) this.upsertToken.run(t.tokenId, m.conditionId, t.outcome, t.outcomeIndex);
      }
    });
  }

  /** One transaction per discovery round, so readers never see a market without its tokens. */
  upsert(markets: readonly MarketInfo[]): void {
    this.upsertAll(markets, Date.now());
  }

  setTickSize(conditionId: string, tickSize: string): void {
    this.setTick.run(tickSize, Date.now(), conditionId);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
