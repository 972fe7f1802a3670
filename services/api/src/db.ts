import { existsSync } from 'node:fs';
import { openDatabase, type SqliteDb } from '@polybot/core';

export interface DbReader {
  /** The read-only handle, or undefined while the owner has not created the file yet. */
  get(): SqliteDb | undefined;
  /** Runs a read; a missing file or table (owner not started yet) reads as no rows. */
  all<T>(sql: string, ...params: unknown[]): T[];
  close(): void;
}

interface Logger {
  warn(obj: object, msg?: string): void;
}

const RETRY_MS = 1000;

/** Opens `polybot.db` read-only on first use, and retries later if it is not there yet. */
export function createDbReader(file: string, log?: Logger): DbReader {
  let db: SqliteDb | undefined;
  let lastTry = 0;
  let warned = false;

  const get = (): SqliteDb | undefined => {
    if (db) return db;
    const now = Date.now();
    if (now - lastTry < RETRY_MS) return undefined;
    lastTry = now;
    if (!existsSync(file)) return undefined;
    try {
      db = openDatabase(file, { readonly: true });
    } catch (err) {
      if (!warned) log?.warn({ err, file }, 'cannot open database read-only; answering empty');
      warned = true;
    }
    return db;
  };

  return {
    get,
    all<T>(sql: string, ...params: unknown[]): T[] {
      const d = get();
      if (!d) return [];
      try {
        return d.prepare(sql).all(...params) as T[];
      } catch (err) {
        if (/no such table/i.test((err as Error).message)) return [];
        throw err;
      }
    },
    close() {
      db?.close();
      db = undefined;
    },
  };
}
