/**
 * Retention for `<data>/recordings/`: deletes whole segments, oldest first, and whole recordings
 * once none of their segments is left. Never deletes what `keep` names (recording directories or
 * segment files, e.g. `writer.activePaths()`) nor the newest segment of a recording whose writer is
 * alive (`writer.lock`), so the one being written survives even without a keep list.
 *
 * `applyRetention(root, { maxAgeMs?, maxBytes?, keep?, now? })`: first every segment last written
 * (mtime, or its newest record if later) before `now - maxAgeMs`, then the oldest
 * segments until the total is at most `maxBytes`. Returns what it deleted and what is left.
 */
import { readdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isRecordingDir, liveWriterPid, readIndexFile, segmentSeq, listSegmentFiles, writeIndexFile, type SegmentInfo } from './reader.js';

export interface RetentionOptions {
  maxAgeMs?: number;
  maxBytes?: number;
  /** Recording directories or segment files that must not be deleted. */
  keep?: Iterable<string>;
  now?: number;
}

export interface DeletedSegment {
  path: string;
  bytes: number;
  reason: 'age' | 'bytes';
}

export interface RetentionResult {
  deleted: DeletedSegment[];
  /** Recording directories removed because no segment was left. */
  removedRecordings: string[];
  freedBytes: number;
  remainingBytes: number;
}

interface Candidate {
  dir: string;
  path: string;
  file: string;
  bytes: number;
  /** Newest record time, or mtime when the index cannot vouch for the file. */
  ts: number;
  seq: number;
  protected: boolean;
}

export function applyRetention(root: string, opts: RetentionOptions = {}): RetentionResult {
  const now = opts.now ?? Date.now();
  const keep = new Set([...(opts.keep ?? [])].map((p) => resolve(p)));
  const result: RetentionResult = { deleted: [], removedRecordings: [], freedBytes: 0, remainingBytes: 0 };
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return result;
  }

  const byDir = new Map<string, Candidate[]>();
  const live = new Set<string>();
  for (const name of names) {
    const dir = resolve(root, name);
    try {
      if (!statSync(dir).isDirectory() || !isRecordingDir(dir)) continue;
    } catch {
      continue;
    }
    const writing = liveWriterPid(dir) !== null;
    if (writing) live.add(dir);
    const index = new Map((readIndexFile(dir)?.segments ?? []).map((s) => [s.file, s]));
    const files = listSegmentFiles(dir);
    const newest = files[files.length - 1];
    const list: Candidate[] = [];
    for (const file of files) {
      const path = join(dir, file);
      let st;
      try {
        st = statSync(path);
      } catch {
        continue;
      }
      const entry = index.get(file);
      const trusted = entry && entry.sealed && entry.bytes === st.size && entry.lastTs !== null;
      list.push({
        // Age is time on this disk: a recording copied here to be replayed must not vanish because
        // what it holds is old. The newest record counts only if it is later (clock-skewed copies).
        dir,
        path,
        file,
        bytes: st.size,
        ts: trusted ? Math.max(entry.lastTs!, st.mtimeMs) : st.mtimeMs,
        seq: segmentSeq(file),
        protected: keep.has(dir) || keep.has(path) || (writing && file === newest),
      });
    }
    byDir.set(dir, list);
  }

  const all = [...byDir.values()].flat().sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  const gone = new Set<Candidate>();
  const remove = (c: Candidate, reason: DeletedSegment['reason']) => {
    try {
      unlinkSync(c.path);
    } catch {
      return;
    }
    gone.add(c);
    result.deleted.push({ path: c.path, bytes: c.bytes, reason });
    result.freedBytes += c.bytes;
  };

  if (opts.maxAgeMs !== undefined) {
    const cutoff = now - opts.maxAgeMs;
    for (const c of all) if (!c.protected && c.ts < cutoff) remove(c, 'age');
  }
  if (opts.maxBytes !== undefined) {
    let total = all.reduce((n, c) => n + (gone.has(c) ? 0 : c.bytes), 0);
    for (const c of all) {
      if (total <= opts.maxBytes) break;
      if (c.protected || gone.has(c)) continue;
      remove(c, 'bytes');
      if (gone.has(c)) total -= c.bytes;
    }
  }

  for (const [dir, list] of byDir) {
    const left = list.filter((c) => !gone.has(c));
    result.remainingBytes += left.reduce((n, c) => n + c.bytes, 0);
    if (left.length === list.length) continue;
    if (left.length === 0 && !live.has(dir) && !keep.has(dir)) {
      rmSync(dir, { recursive: true, force: true });
      result.removedRecordings.push(dir);
    } else if (!live.has(dir)) {
      // A live writer rewrites its own index without the deleted files.
      const index = readIndexFile(dir);
      const files = new Set(left.map((c) => c.file));
      const kept: SegmentInfo[] = (index?.segments ?? []).filter((s) => files.has(s.file));
      try {
        writeIndexFile(dir, kept);
      } catch {
        // The reader rebuilds a stale index anyway.
      }
    }
  }
  return result;
}
