import Database from 'better-sqlite3';
import { dirname } from 'node:path';
import { ensureDir } from './paths.js';

export type SqliteDb = Database.Database;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface OpenOptions {
  readonly?: boolean;
  /** FULL on the order-intent path: a committed intent must survive power loss. */
  synchronous?: 'NORMAL' | 'FULL';
}

/** Opens `polybot.db` (or another file) in WAL mode with a busy timeout for concurrent readers. */
export function openDatabase(file: string, opts: OpenOptions = {}): SqliteDb {
  if (!opts.readonly) ensureDir(dirname(file));
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  db.pragma('busy_timeout = 5000');
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous ?? 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
  }
  return db;
}

/**
 * Applies an owner's migrations in version order, each in its own transaction. Several owners
 * share one file (one owner per table), so versions are tracked per owner.
 */
export function migrate(db: SqliteDb, owner: string, migrations: readonly Migration[]): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    owner TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at INTEGER NOT NULL,
    PRIMARY KEY (owner, version))`);
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations WHERE owner = ?').all(owner) as { version: number }[]).map((r) => r.version),
  );
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  let count = 0;
  for (const m of sorted) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (owner, version, name, applied_at) VALUES (?, ?, ?, ?)').run(owner, m.version, m.name, Date.now());
    })();
    count++;
  }
  return count;
}
