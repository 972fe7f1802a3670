/**
 * Appends records to a recording directory `<data>/recordings/<name>/`.
 *
 * API:
 * - `await RecordingWriter.open(dir, opts)` creates the directory or reopens a recording: segments
 *   left by a crash are scanned (a torn tail block is counted, never rewritten) and sealed, and
 *   writing continues in a new segment. One writer per recording (`writer.lock`, pid checked).
 * - `w.append(record)` buffers the record (cheap; never throws, never blocks). A block is sealed
 *   when `blockBytes` of records are buffered or every `flushMs`, so a crash loses at most that
 *   window; sealing splits the block into columns on this thread (see format.ts), compression and
 *   writes happen on the libuv pool, in order.
 * - `w.stats()` → counters of this writer (records, rawFrames, events, blocks, segments, bytes on
 *   disk, dropped, pending, error).
 * - `await w.flush()` seals the buffer and waits until everything appended is written.
 * - `await w.close()` flushes, seals the segment (fsync), writes `index.json`, releases the lock.
 * - `w.activePaths()` → the segment being written, for retention's keep list.
 *
 * Segments rotate when they reach `maxSegmentBytes` or when a block's records are `maxSegmentMs`
 * (receive time) after the segment's first record. Append order is preserved; records are stored
 * exactly as given (the caller must not mutate a record's payload after appending it).
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RecordingRecord } from '../pipeline/types.js';
import { ChainCompressor, assembleBlock, encodeBody, segmentHeader, type CompressionOptions, type EncodedBody } from './format.js';
import { LOCK_FILE, isRecordingDir, listSegmentFiles, liveWriterPid, loadSegments, segmentFileName, segmentSeq, writeIndexFile, type SegmentInfo } from './reader.js';

export interface WriterOptions extends CompressionOptions {
  /** Start a new segment once the current one has this many bytes (default 64 MiB). */
  maxSegmentBytes?: number;
  /** Start a new segment for records this long (receive time) after its first one (default 1 h). */
  maxSegmentMs?: number;
  /** Seal and write buffered records at least this often (default 1000 ms). */
  flushMs?: number;
  /** Seal a block once this many record bytes are buffered (default 1 MiB). */
  blockBytes?: number;
  /** Restart the compression chain after this many body bytes (default 8 MiB); 0 = every block alone. */
  chainBytes?: number;
  /** Stop buffering (and count drops) while this many bytes wait for compression/disk (default 256 MiB). */
  maxPendingBytes?: number;
  /** fsync after every block (default false: only on rotation and close). */
  fsync?: boolean;
}

export interface WriterStats {
  records: number;
  rawFrames: number;
  events: number;
  blocks: number;
  /** Segments this writer created. */
  segments: number;
  /** Bytes this writer wrote to disk. */
  bytes: number;
  /** Records refused: writer closed or failed, or too much pending. */
  dropped: number;
  /** Records appended but not yet on disk. */
  pendingRecords: number;
  pendingBytes: number;
  /** The write error that stopped the writer, if any. */
  error: string | null;
}

interface Segment {
  info: SegmentInfo;
  path: string;
  fh: FileHandle;
  compressor: ChainCompressor | null;
  chainIndex: number;
  chainBody: number;
}

const recordBytes = (r: RecordingRecord) => (r.kind === 'raw' ? r.data.length + 16 : r.payload.byteLength + r.topic.length + 16);

export class RecordingWriter {
  private readonly opts: Required<Omit<WriterOptions, keyof CompressionOptions>> & CompressionOptions;
  private buffer: RecordingRecord[] = [];
  private bufferBytes = 0;
  private queue: Promise<void> = Promise.resolve();
  private pendingBytes = 0;
  private pendingRecords = 0;
  private seg: Segment | null = null;
  private nextSeq: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private failure: Error | null = null;
  private readonly counters = { records: 0, rawFrames: 0, events: 0, blocks: 0, segments: 0, bytes: 0, dropped: 0 };

  private constructor(
    readonly dir: string,
    private readonly segments: SegmentInfo[],
    opts: WriterOptions,
  ) {
    this.opts = {
      maxSegmentBytes: opts.maxSegmentBytes ?? 64 * 1024 * 1024,
      maxSegmentMs: opts.maxSegmentMs ?? 3_600_000,
      flushMs: opts.flushMs ?? 1000,
      blockBytes: opts.blockBytes ?? 1024 * 1024,
      chainBytes: opts.chainBytes ?? 8 * 1024 * 1024,
      maxPendingBytes: opts.maxPendingBytes ?? 256 * 1024 * 1024,
      fsync: opts.fsync ?? false,
      quality: opts.quality,
      lgwin: opts.lgwin,
    };
    const last = segments.length ? Math.max(...segments.map((s) => segmentSeq(s.file))) : 0;
    this.nextSeq = Math.max(last, ...listSegmentFiles(dir).map(segmentSeq), 0) + 1;
    this.timer = setInterval(() => this.seal(), Math.max(1, this.opts.flushMs));
    this.timer.unref();
  }

  static async open(dir: string, opts: WriterOptions = {}): Promise<RecordingWriter> {
    dir = resolve(dir);
    mkdirSync(dir, { recursive: true });
    const owner = liveWriterPid(dir);
    if (owner !== null) {
      throw new Error(
        `recording ${dir} is being written by process ${Number.isNaN(owner) ? '(another user)' : owner}; stop that writer or record under another name ` +
          `(if that process is not a recording writer, delete ${join(dir, LOCK_FILE)})`,
      );
    }
    // A lock whose process is gone is stale (the writer crashed): take it over.
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, since: Date.now() }));
    try {
      // Whatever a crashed writer left is final now: scan it once, seal it, append after it.
      const segments = isRecordingDir(dir) ? loadSegments(dir, { sealUnsealed: true }).segments : [];
      writeIndexFile(dir, segments);
      return new RecordingWriter(dir, segments, opts);
    } catch (err) {
      unlinkSync(join(dir, LOCK_FILE));
      throw err;
    }
  }

  append(record: RecordingRecord): void {
    if (this.closed || this.failure || this.pendingBytes + this.bufferBytes > this.opts.maxPendingBytes) {
      this.counters.dropped++;
      return;
    }
    this.buffer.push(record);
    this.bufferBytes += recordBytes(record);
    if (this.bufferBytes >= this.opts.blockBytes) this.seal();
  }

  stats(): WriterStats {
    return {
      ...this.counters,
      pendingRecords: this.pendingRecords + this.buffer.length,
      pendingBytes: this.pendingBytes + this.bufferBytes,
      error: this.failure ? this.failure.message : null,
    };
  }

  /**
   * The segment being written, for retention's keep list (its older segments may still be pruned;
   * keep `[w.dir]` to keep the whole recording).
   */
  activePaths(): string[] {
    return this.seg ? [this.seg.path] : [];
  }

  async flush(): Promise<void> {
    this.seal();
    await this.queue;
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    if (this.closed) {
      await this.queue;
      return;
    }
    this.seal();
    this.closed = true;
    clearInterval(this.timer);
    this.queue = this.queue.then(() => this.closeSegment());
    try {
      await this.queue;
    } finally {
      try {
        if (JSON.parse(readFileSync(join(this.dir, LOCK_FILE), 'utf8')).pid === process.pid) unlinkSync(join(this.dir, LOCK_FILE));
      } catch {
        // Already gone.
      }
    }
    if (this.failure) throw this.failure;
  }

  // ---------------------------------------------------------------- internals

  private seal(): void {
    if (this.buffer.length === 0 || this.failure) return;
    const records = this.buffer;
    const bytes = this.bufferBytes;
    this.buffer = [];
    this.bufferBytes = 0;
    let enc: EncodedBody;
    try {
      enc = encodeBody(records);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.pendingBytes += bytes;
    this.pendingRecords += records.length;
    this.queue = this.queue.then(async () => {
      try {
        if (this.failure) this.counters.dropped += records.length;
        else await this.writeBlock(enc);
      } catch (err) {
        this.counters.dropped += records.length;
        this.fail(err as Error);
      } finally {
        this.pendingBytes -= bytes;
        this.pendingRecords -= records.length;
      }
    });
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = new Error(`recording ${this.dir}: ${err.message}`);
    this.counters.dropped += this.buffer.length;
    this.buffer = [];
    this.bufferBytes = 0;
  }

  private async writeBlock(enc: EncodedBody): Promise<void> {
    let seg = this.seg;
    if (seg) {
      const first = seg.info.firstTs;
      if (seg.info.bytes >= this.opts.maxSegmentBytes || (first !== null && enc.minTs - first >= this.opts.maxSegmentMs)) {
        await this.closeSegment();
        seg = null;
      }
    }
    if (!seg) seg = await this.openSegment();
    const restart = !seg.compressor || this.opts.chainBytes <= 0 || (seg.chainBody > 0 && seg.chainBody + enc.body.length > this.opts.chainBytes);
    if (restart || !seg.compressor) {
      seg.compressor?.close();
      seg.compressor = new ChainCompressor(this.opts);
      seg.chainIndex = 0;
      seg.chainBody = 0;
    }
    const compressed = await seg.compressor.compress(enc.body);
    const block = assembleBlock(enc, compressed, seg.chainIndex);
    await seg.fh.write(block, 0, block.length, seg.info.bytes);
    if (this.opts.fsync) await seg.fh.sync();
    seg.chainIndex++;
    seg.chainBody += enc.body.length;
    const s = seg.info;
    s.bytes += block.length;
    s.blocks++;
    s.records += enc.records;
    s.rawFrames += enc.rawFrames;
    s.events += enc.events;
    if (enc.records > 0) {
      if (s.firstTs === null || enc.minTs < s.firstTs) s.firstTs = enc.minTs;
      if (s.lastTs === null || enc.maxTs > s.lastTs) s.lastTs = enc.maxTs;
    }
    this.counters.records += enc.records;
    this.counters.rawFrames += enc.rawFrames;
    this.counters.events += enc.events;
    this.counters.blocks++;
    this.counters.bytes += block.length;
  }

  private async openSegment(): Promise<Segment> {
    const file = segmentFileName(this.nextSeq++);
    const path = join(this.dir, file);
    // 'wx': a segment file is never reused, whatever is on disk.
    const fh = await openFile(path, 'wx');
    const header = segmentHeader(Date.now());
    await fh.write(header, 0, header.length, 0);
    const info: SegmentInfo = {
      file,
      bytes: header.length,
      blocks: 0,
      records: 0,
      rawFrames: 0,
      events: 0,
      firstTs: null,
      lastTs: null,
      corruptBlocks: 0,
      sealed: false,
    };
    this.segments.push(info);
    this.seg = { info, path, fh, compressor: null, chainIndex: 0, chainBody: 0 };
    this.counters.segments++;
    this.counters.bytes += header.length;
    this.saveIndex();
    return this.seg;
  }

  private async closeSegment(): Promise<void> {
    const seg = this.seg;
    if (!seg) {
      this.saveIndex();
      return;
    }
    this.seg = null;
    seg.compressor?.close();
    try {
      await seg.fh.sync();
    } finally {
      await seg.fh.close();
    }
    seg.info.sealed = true;
    this.saveIndex();
  }

  private saveIndex(): void {
    // Retention may have deleted old segments meanwhile; the index lists what exists.
    const present = new Set(listSegmentFiles(this.dir));
    const live = this.segments.filter((s) => present.has(s.file));
    this.segments.splice(0, this.segments.length, ...live);
    writeIndexFile(this.dir, this.segments);
  }
}

/** Writes records to a fresh recording in one go (tests, tools, conversions). */
export async function writeRecording(dir: string, records: Iterable<RecordingRecord>, opts: WriterOptions = {}): Promise<WriterStats> {
  const w = await RecordingWriter.open(dir, opts);
  const limit = Math.min(64 * 1024 * 1024, (opts.maxPendingBytes ?? 256 * 1024 * 1024) / 2);
  try {
    for (const r of records) {
      w.append(r);
      // Let the disk catch up instead of dropping.
      if (w.stats().pendingBytes > limit) await w.flush();
    }
  } finally {
    await w.close();
  }
  return w.stats();
}
