import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, chmodSync, writeSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Exchange, SNAPSHOT_VERSION, type ExchangeOptions, type ExchangeSnapshot } from './exchange.js';

/**
 * Restart without loss: the exchange's snapshot (`Exchange.toSnapshot`, format `{ v: 1, … }`) is
 * written atomically to `<data dir>/sim/state.json` every few seconds and on stop, and loaded at
 * start. A snapshot of another configuration (seed, market count, neg-risk event, rounds) or an
 * unreadable one is moved aside (`state.json.mismatch-<ms>` / `state.json.corrupt-<ms>`) and the
 * simulator starts fresh from the seed; it never crashes on a bad file.
 */

/** The pino methods used here (any `Logger` of `@polybot/core` fits). */
export interface PersistLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const DEFAULT_SAVE_INTERVAL_MS = 5_000;

/** `<data dir>/sim/state.json`. */
export function statePath(dataDir: string): string {
  return join(dataDir, 'sim', 'state.json');
}

/** Writes `text` to `path` atomically: `<path>.tmp` (mode 0600), fsync, rename, fsync of the directory. */
export function writeFileAtomic(path: string, text: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Directories cannot be opened for fsync on every platform; the rename itself is atomic.
  }
}

/**
 * State of other simulator components saved along with the exchange (e.g. the simulated traders'
 * generator and bookkeeping), by component name; JSON-safe values only.
 */
export type Extras = Record<string, unknown>;

/**
 * Saves the exchange's snapshot (plus `extras` under `"extras"`) to `<data dir>/sim/state.json`
 * (atomically); returns the path and size.
 */
export function saveState(exchange: Exchange, dataDir: string, extras?: Extras): { path: string; bytes: number } {
  const path = statePath(dataDir);
  const text = JSON.stringify(extras ? { ...exchange.toSnapshot(), extras } : exchange.toSnapshot());
  writeFileAtomic(path, text);
  return { path, bytes: Buffer.byteLength(text) };
}

/** Moves a state file out of the way (kept for inspection); returns the new path. */
function moveAside(path: string, why: 'corrupt' | 'mismatch'): string {
  const to = `${path}.${why}-${Date.now()}`;
  renameSync(path, to);
  return to;
}

export type LoadOutcome =
  | { status: 'absent' }
  | { status: 'loaded'; snapshot: ExchangeSnapshot }
  | { status: 'mismatch' | 'corrupt'; reason: string; movedTo: string };

/**
 * Reads `<data dir>/sim/state.json`: the snapshot when it parses and belongs to `opts`' configuration;
 * otherwise the file is moved aside (with a warning) and nothing is returned. Never throws for a
 * bad file.
 */
export function loadState(dataDir: string, opts: ExchangeOptions, log?: PersistLog): LoadOutcome {
  const path = statePath(dataDir);
  if (!existsSync(path)) return { status: 'absent' };
  let snapshot: ExchangeSnapshot;
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError('not a JSON object');
    const s = v as Partial<ExchangeSnapshot>;
    if (s.v !== SNAPSHOT_VERSION) throw new TypeError(`unknown format version ${JSON.stringify(s.v)} (expected ${SNAPSHOT_VERSION})`);
    snapshot = v as ExchangeSnapshot;
  } catch (err) {
    return corrupt(path, err, log);
  }
  const why = Exchange.snapshotMismatch(opts, snapshot);
  if (why) {
    const movedTo = moveAside(path, 'mismatch');
    log?.warn({ path, movedTo, reason: why }, `saved simulator state belongs to another configuration (${why}): starting fresh, old state kept in ${movedTo}`);
    return { status: 'mismatch', reason: why, movedTo };
  }
  return { status: 'loaded', snapshot };
}

function corrupt(path: string, err: unknown, log?: PersistLog): LoadOutcome {
  const reason = err instanceof Error ? err.message : String(err);
  const movedTo = moveAside(path, 'corrupt');
  log?.error({ path, movedTo, reason }, `saved simulator state is unreadable (${reason}): starting fresh, the file was moved to ${movedTo}`);
  return { status: 'corrupt', reason, movedTo };
}

/**
 * The exchange of a starting simulator: restored from `<data dir>/sim/state.json` when it holds a
 * usable snapshot of this configuration, else fresh from the seed (a bad or foreign file is moved aside).
 */
export function openExchange(
  opts: ExchangeOptions,
  deps: { dataDir: string; log?: PersistLog },
): { exchange: Exchange; restored: boolean; outcome: LoadOutcome['status']; extras: Extras } {
  const res = loadState(deps.dataDir, opts, deps.log);
  if (res.status === 'loaded') {
    try {
      const exchange = Exchange.fromSnapshot(opts, res.snapshot);
      const s = res.snapshot;
      deps.log?.info(
        { path: statePath(deps.dataDir), savedAt: new Date(s.savedAt).toISOString(), accounts: s.accounts.length, orders: s.orders.length, trades: s.trades.length, pendingTrades: s.pending.length },
        'simulator state restored',
      );
      const extras = (s as ExchangeSnapshot & { extras?: unknown }).extras;
      return { exchange, restored: true, outcome: 'loaded', extras: typeof extras === 'object' && extras !== null ? (extras as Extras) : {} };
    } catch (err) {
      // The configuration was checked already: a snapshot that fails to restore is malformed.
      corrupt(statePath(deps.dataDir), err, deps.log);
      return { exchange: new Exchange(opts), restored: false, outcome: 'corrupt', extras: {} };
    }
  }
  return { exchange: new Exchange(opts), restored: false, outcome: res.status, extras: {} };
}

export interface Autosave {
  /** Saves now; errors are logged, not thrown. Returns whether it succeeded. */
  saveNow(): boolean;
  /** Stops the timer and saves a last time (call after the HTTP server stopped taking orders). */
  stop(): boolean;
}

/** Saves the exchange every `intervalMs` (default 5 s; ≤ 0 = only on `saveNow`/`stop`). */
export function autosave(
  exchange: Exchange,
  deps: { dataDir: string; log?: PersistLog; intervalMs?: number; extras?: () => Extras },
): Autosave {
  const interval = deps.intervalMs ?? DEFAULT_SAVE_INTERVAL_MS;
  let failing = false;
  const saveNow = (): boolean => {
    try {
      saveState(exchange, deps.dataDir, deps.extras?.());
      if (failing) deps.log?.info({ path: statePath(deps.dataDir) }, 'simulator state saved again');
      failing = false;
      return true;
    } catch (err) {
      // Log the first failure of a streak only, so a full disk does not flood the log.
      if (!failing) deps.log?.error({ err, path: statePath(deps.dataDir) }, 'saving the simulator state failed');
      failing = true;
      return false;
    }
  };
  let timer: NodeJS.Timeout | undefined;
  if (interval > 0) {
    timer = setInterval(saveNow, interval);
    timer.unref?.();
  }
  return {
    saveNow,
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      return saveNow();
    },
  };
}
