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
    enableWal(db);
    db.pragma(`synchronous = ${opts.synchronous ?? 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
  }
  return db;
}

/**
 * Switches a file to WAL. Several services open `polybot.db` at once when a stack starts; the switch
 * needs an exclusive lock and SQLite answers SQLITE_BUSY at once rather than waiting (the busy
 * handler is not used there), so it is retried for up to ~10 s. Once a file is WAL it stays WAL.
 */
function enableWal(db: SqliteDb): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; ; attempt++) {
    try {
      if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal') return;
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || attempt >= 100) throw err;
      Atomics.wait(pause, 0, 0, 20 + Math.floor(Math.random() * 80));
    }
  }
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
