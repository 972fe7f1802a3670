/**
 * Reading recordings: the segment walker (CRC checks, chain continuity, resynchronisation after
 * garbage), the index (`index.json`, rebuilt by scanning when missing or stale) and `RecordingReader`.
 *
 * API:
 * - `RecordingReader.open(dir)` → reader; throws a clear Error only when `dir` is not a recording.
 * - `reader.info()` → totals for progress display: records, rawFrames, events, firstTs, lastTs,
 *   segments, bytes, corruptBlocks. From the index, as written; only segments that are unsealed or
 *   whose size changed are rescanned (headers and CRCs, no decompression).
 * - `reader.records({ fromTs?, toTs? })` → synchronous iterator over records of all segments, in
 *   order, each made as it is reached (what a replay wants: only the record in hand is alive);
 *   `reader.blocks()` the same in per-block arrays;
 *   `reader.blockRecords()` the same a block at a time, decompressing the next chain on libuv's
 *   thread pool meanwhile (what a replay uses); `reader.recordsAsync()` an async iterator that
 *   yields to the event loop between blocks.
 * - `reader.corruptBlocksSeen` → corrupt blocks met by the iterators so far (damage that left the
 *   file size unchanged, e.g. a flipped bit, only shows up here).
 * Bad bytes in a file are skipped and counted, never thrown.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { RecordingRecord } from '../pipeline/types.js';
import {
  BLOCK_HEADER_BYTES,
  BLOCK_MAGIC,
  SEGMENT_HEADER_BYTES,
  blockBytes,
  blockDataOk,
  BodyDecoder,
  decodeBlockBody,
  decompressChainAsync,
  decompressChain,
  isSegmentHeader,
  readBlockHeader,
  type BlockHeader,
  type ChainBlock,
} from './format.js';

type ChainBody = { header: BlockHeader; body: Buffer; data: Buffer };

/** Whether a block may hold records in [from, to] (a block without valid times always may). */
const inRange = (h: BlockHeader, from: number, to: number) => (h.maxTs >= from && h.minTs <= to) || Number.isNaN(h.minTs) || Number.isNaN(h.maxTs);

export const INDEX_FILE = 'index.json';
export const LOCK_FILE = 'writer.lock';
export const SEGMENT_RE = /^seg-(\d{6,})\.pbr$/;
export const segmentFileName = (seq: number) => `seg-${String(seq).padStart(6, '0')}.pbr`;

export interface SegmentInfo {
  file: string;
  /** File size. */
  bytes: number;
  blocks: number;
  records: number;
  rawFrames: number;
  events: number;
  /** Smallest and largest record receive time (ms), null when empty. */
  firstTs: number | null;
  lastTs: number | null;
  corruptBlocks: number;
  /** Closed by its writer (or found finished on reopen); an unsealed segment is always rescanned. */
  sealed: boolean;
}

export interface RecordingIndex {
  format: 'polybot-recording';
  version: 1;
  name: string;
  updatedAt: number;
  segments: SegmentInfo[];
}

export interface RecordingInfo {
  name: string;
  dir: string;
  records: number;
  rawFrames: number;
  events: number;
  firstTs: number | null;
  lastTs: number | null;
  segments: number;
  bytes: number;
  corruptBlocks: number;
  /** The index was missing or stale and segments were rescanned. */
  rescanned: boolean;
}

// ------------------------------------------------------------------ segment walking

type Walked = { kind: 'block'; header: BlockHeader; data: Buffer; offset: number } | { kind: 'bad'; offset: number; reason: string };

const SCAN_CHUNK = 1 << 20;

/** Up to `len` bytes at `pos`; short at the end of the file, and on a read error (seen as a torn tail). */
function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let got = 0;
  try {
    while (got < len) {
      const n = readSync(fd, b, got, len - got, pos + got);
      if (n === 0) break;
      got += n;
    }
  } catch {
    // EIO, EISDIR…: what could be read is all there is.
  }
  return got === len ? b : b.subarray(0, got);
}

/** Next offset ≥ from where a valid block header starts, or -1. */
function resync(fd: number, size: number, from: number): number {
  for (let pos = from; pos < size; pos += SCAN_CHUNK - BLOCK_HEADER_BYTES) {
    const chunk = readAt(fd, pos, Math.min(SCAN_CHUNK, size - pos));
    let i = 0;
    for (;;) {
      i = chunk.indexOf(BLOCK_MAGIC, i, 'latin1');
      if (i < 0 || i + BLOCK_HEADER_BYTES > chunk.length) break;
      if (readBlockHeader(chunk, i)) return pos + i;
      i++;
    }
    if (pos + chunk.length >= size) break;
  }
  return -1;
}

/** Every block of a segment file with a valid header and CRC, and every bad region, in file order. */
function* walkSegment(fd: number, withData: (h: BlockHeader) => boolean): Generator<Walked> {
  const size = fstatSync(fd).size;
  if (size === 0) return;
  if (readAt(fd, 0, 1).length === 0) {
    yield { kind: 'bad', offset: 0, reason: 'unreadable' };
    return;
  }
  let off: number;
  const head = readAt(fd, 0, Math.min(size, SEGMENT_HEADER_BYTES));
  if (isSegmentHeader(head)) off = SEGMENT_HEADER_BYTES;
  else {
    yield { kind: 'bad', offset: 0, reason: size < SEGMENT_HEADER_BYTES ? 'torn segment header' : 'bad segment header' };
    off = resync(fd, size, 0);
    if (off < 0) return;
  }
  while (off < size) {
    const hb = readAt(fd, off, Math.min(BLOCK_HEADER_BYTES, size - off));
    const h = hb.length === BLOCK_HEADER_BYTES ? readBlockHeader(hb, 0) : null;
    if (!h) {
      yield { kind: 'bad', offset: off, reason: hb.length < BLOCK_HEADER_BYTES ? 'torn block header' : 'bad block header' };
      off = resync(fd, size, off + 1);
      if (off < 0) return;
      continue;
    }
    const len = blockBytes(h);
    if (off + len > size) {
      yield { kind: 'bad', offset: off, reason: 'torn block' };
      off = resync(fd, size, off + 1);
      if (off < 0) return;
      continue;
    }
    // CRC needs the data anyway; callers that skip a block by time still get it checked.
    const data = readAt(fd, off + BLOCK_HEADER_BYTES, len - BLOCK_HEADER_BYTES);
    if (!blockDataOk(h, data)) yield { kind: 'bad', offset: off, reason: 'block CRC mismatch' };
    else yield { kind: 'block', header: h, data: withData(h) ? data : Buffer.alloc(0), offset: off };
    off += len;
  }
}

type ChainEvent = { kind: 'chain'; blocks: ChainBlock[] } | { kind: 'corrupt'; count: number };

/**
 * Groups valid blocks into decodable chains. A bad region ends the chain it interrupts; blocks that
 * continue a broken chain cannot be decompressed and are reported as corrupt until the next start.
 */
function* chainsOf(walked: Iterable<Walked>): Generator<ChainEvent> {
  let chain: ChainBlock[] = [];
  let expected = 0;
  for (const w of walked) {
    if (w.kind === 'bad') {
      if (chain.length) yield { kind: 'chain', blocks: chain };
      chain = [];
      expected = -1;
      yield { kind: 'corrupt', count: 1 };
      continue;
    }
    if (w.header.chainIndex === 0) {
      if (chain.length) yield { kind: 'chain', blocks: chain };
      chain = [{ header: w.header, data: w.data }];
      expected = 1;
    } else if (expected >= 1 && w.header.chainIndex === expected) {
      chain.push({ header: w.header, data: w.data });
      expected++;
    } else {
      if (chain.length) yield { kind: 'chain', blocks: chain };
      chain = [];
      expected = -1;
      yield { kind: 'corrupt', count: 1 };
    }
  }
  if (chain.length) yield { kind: 'chain', blocks: chain };
}

/** Stats of one segment file from its block headers, CRCs and chain continuity (no decompression). */
export function scanSegment(path: string): SegmentInfo {
  const info: SegmentInfo = {
    file: basename(path),
    bytes: 0,
    blocks: 0,
    records: 0,
    rawFrames: 0,
    events: 0,
    firstTs: null,
    lastTs: null,
    corruptBlocks: 0,
    sealed: false,
  };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return info;
  }
  try {
    info.bytes = fstatSync(fd).size;
    for (const ev of chainsOf(walkSegment(fd, () => false))) {
      if (ev.kind === 'corrupt') {
        info.corruptBlocks += ev.count;
        continue;
      }
      for (const { header: h } of ev.blocks) {
        info.blocks++;
        info.records += h.records;
        info.events += h.events;
        info.rawFrames += h.records - h.events;
        if (h.records > 0) {
          if (info.firstTs === null || h.minTs < info.firstTs) info.firstTs = h.minTs;
          if (info.lastTs === null || h.maxTs > info.lastTs) info.lastTs = h.maxTs;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return info;
}

// ------------------------------------------------------------------ index

export function listSegmentFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => SEGMENT_RE.test(n)).sort((a, b) => segmentSeq(a) - segmentSeq(b));
}

export function segmentSeq(file: string): number {
  const m = SEGMENT_RE.exec(file);
  return m ? Number(m[1]) : -1;
}

export function readIndexFile(dir: string): RecordingIndex | null {
  try {
    const idx = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8')) as RecordingIndex;
    if (idx?.format !== 'polybot-recording' || !Array.isArray(idx.segments)) return null;
    return idx;
  } catch {
    return null;
  }
}

/** Atomic replace: a crash leaves either the old or the new index, never half of one. */
export function writeIndexFile(dir: string, segments: SegmentInfo[]): void {
  const idx: RecordingIndex = { format: 'polybot-recording', version: 1, name: basename(dir), updatedAt: Date.now(), segments };
  const tmp = join(dir, `${INDEX_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(idx, null, 1)}\n`);
  renameSync(tmp, join(dir, INDEX_FILE));
}

/**
 * The segments of a recording, from the index where it is still true (sealed and the file has the
 * size it lists), rescanned otherwise; files missing from the index are scanned and added, entries
 * whose files are gone are dropped.
 */
export function loadSegments(dir: string, opts: { sealUnsealed?: boolean } = {}): { segments: SegmentInfo[]; rescanned: boolean } {
  const idx = readIndexFile(dir);
  const known = new Map((idx?.segments ?? []).map((s) => [s.file, s]));
  let rescanned = idx === null;
  const segments: SegmentInfo[] = [];
  for (const file of listSegmentFiles(dir)) {
    const entry = known.get(file);
    let size: number;
    try {
      size = statSync(join(dir, file)).size;
    } catch {
      continue;
    }
    if (entry && entry.sealed && entry.bytes === size) {
      segments.push(entry);
      continue;
    }
    if (!entry || entry.sealed) rescanned = true;
    const s = scanSegment(join(dir, file));
    s.sealed = opts.sealUnsealed ?? false;
    segments.push(s);
  }
  if (idx && idx.segments.length !== segments.length) rescanned = true;
  return { segments, rescanned };
}

/** A live process holds the recording's writer lock. */
export function liveWriterPid(dir: string): number | null {
  try {
    const lock = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid?: unknown };
    const pid = Number(lock.pid);
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? Number.NaN : null;
  }
}

export function isRecordingDir(dir: string): boolean {
  return existsSync(join(dir, INDEX_FILE)) || listSegmentFiles(dir).length > 0;
}

// ------------------------------------------------------------------ reader

export interface ReadOptions {
  /** Only records with recvTs ≥ fromTs (whole blocks before it are not decompressed). */
  fromTs?: number;
  /** Only records with recvTs ≤ toTs. */
  toTs?: number;
  /**
   * Template frames with their JSON value built (`parsed`) and their text made only if read: what
   * a replay wants. Off by default: the records then hold plain `data` strings.
   */
  parsed?: boolean;
}

export class RecordingReader {
  /** Corrupt blocks the iterators have met so far (the scan's count is in `info()`). */
  corruptBlocksSeen = 0;

  private constructor(
    readonly dir: string,
    private readonly segs: SegmentInfo[],
    private readonly rescanned: boolean,
  ) {}

  /**
   * Opens a recording directory. Rebuilds the index from the segments if it is missing or stale
   * (and saves it when no writer holds the recording). Throws only if `dir` is not a recording.
   */
  static async open(dir: string): Promise<RecordingReader> {
    let st;
    try {
      st = statSync(dir);
    } catch {
      throw new Error(`recording not found: ${dir} does not exist; pass a directory under <data>/recordings/ (e.g. data/recordings/<name>)`);
    }
    if (!st.isDirectory() || !isRecordingDir(dir)) {
      throw new Error(
        `not a recording: ${dir} has no ${INDEX_FILE} and no seg-NNNNNN.pbr segment files; pass a directory a RecordingWriter wrote, e.g. <data>/recordings/<name>`,
      );
    }
    const { segments, rescanned } = loadSegments(dir);
    if (rescanned && liveWriterPid(dir) === null) {
      try {
        writeIndexFile(dir, segments.map((s) => ({ ...s, sealed: true })));
      } catch {
        // A read-only recording is still readable.
      }
    }
    return new RecordingReader(dir, segments, rescanned);
  }

  info(): RecordingInfo {
    const info: RecordingInfo = {
      name: basename(this.dir),
      dir: this.dir,
      records: 0,
      rawFrames: 0,
      events: 0,
      firstTs: null,
      lastTs: null,
      segments: this.segs.length,
      bytes: 0,
      corruptBlocks: 0,
      rescanned: this.rescanned,
    };
    for (const s of this.segs) {
      info.records += s.records;
      info.rawFrames += s.rawFrames;
      info.events += s.events;
      info.bytes += s.bytes;
      info.corruptBlocks += s.corruptBlocks;
      if (s.firstTs !== null && (info.firstTs === null || s.firstTs < info.firstTs)) info.firstTs = s.firstTs;
      if (s.lastTs !== null && (info.lastTs === null || s.lastTs > info.lastTs)) info.lastTs = s.lastTs;
    }
    return info;
  }

  segments(): readonly SegmentInfo[] {
    return this.segs;
  }

  /** Every chain of blocks with records in range, cut after its last such block, in order. */
  private *chains(from: number, to: number): Generator<ChainBlock[]> {
    for (const seg of this.segs) {
      if (seg.lastTs !== null && seg.lastTs < from) continue;
      if (seg.firstTs !== null && seg.firstTs > to) continue;
      let fd: number;
      try {
        fd = openSync(join(this.dir, seg.file), 'r');
      } catch {
        continue;
      }
      try {
        for (const ev of chainsOf(walkSegment(fd, () => true))) {
          if (ev.kind === 'corrupt') {
            this.corruptBlocksSeen += ev.count;
            continue;
          }
          // Decompress only up to the last block that has records in range.
          let last = -1;
          ev.blocks.forEach((b, i) => {
            if (inRange(b.header, from, to)) last = i;
          });
          if (last >= 0) yield ev.blocks.slice(0, last + 1);
        }
      } finally {
        closeSync(fd);
      }
    }
  }

  /** A decompressed chain's blocks with records in range; a chain that failed is counted. */
  private *chainBodies(chain: ChainBlock[], bodies: Buffer[] | null, from: number, to: number): Generator<ChainBody> {
    if (!bodies) {
      this.corruptBlocksSeen += chain.length;
      return;
    }
    for (let i = 0; i < chain.length; i++) {
      const b = chain[i]!;
      if (inRange(b.header, from, to)) yield { header: b.header, body: bodies[i]!, data: b.data };
    }
  }

  /** Every block with records in range, decompressed, in order. */
  private *bodies(from: number, to: number): Generator<ChainBody> {
    for (const chain of this.chains(from, to)) yield* this.chainBodies(chain, decompressChain(chain), from, to);
  }

  /** A block's records, each made as it is reached; a block that stops decoding is counted. */
  private *bodyRecords({ header, body, data }: ChainBody, opts: ReadOptions, from: number, to: number): Generator<RecordingRecord> {
    const all = opts.fromTs === undefined && opts.toTs === undefined;
    const stored = data.subarray(header.compressedBytes, header.compressedBytes + header.storedBytes);
    let n = 0;
    try {
      const dec = new BodyDecoder(body, stored, opts.parsed === true);
      for (let r = dec.next(); r !== null; r = dec.next()) {
        n++;
        if (all || (r.recvTs >= from && r.recvTs <= to)) yield r;
      }
    } catch {
      this.corruptBlocksSeen++;
      return;
    }
    if (n !== header.records) this.corruptBlocksSeen++;
  }

  /** Records in per-block arrays, in order. */
  *blocks(opts: ReadOptions = {}): Generator<RecordingRecord[]> {
    const from = opts.fromTs ?? -Infinity;
    const to = opts.toTs ?? Infinity;
    for (const { header, body, data } of this.bodies(from, to)) {
      const recs = decodeBlockBody(header, body, data, opts.parsed === true);
      if (!recs) {
        this.corruptBlocksSeen++;
        continue;
      }
      if (opts.fromTs === undefined && opts.toTs === undefined) yield recs;
      else yield recs.filter((r) => r.recvTs >= from && r.recvTs <= to);
    }
  }

  /**
   * Every record of every segment, in the order they were appended. Records are made one at a
   * time, not a block at once. A block that passed its checksum but stops decoding part way (which
   * only a writer of another format could cause) gives the records before that point and is
   * counted corrupt.
   */
  *records(opts: ReadOptions = {}): Generator<RecordingRecord> {
    const from = opts.fromTs ?? -Infinity;
    const to = opts.toTs ?? Infinity;
    for (const body of this.bodies(from, to)) yield* this.bodyRecords(body, opts, from, to);
  }

  /**
   * `records()` a block at a time, for a replay: while one chain of blocks is read, the next is
   * decompressed on libuv's thread pool (another core). Each block's records are made as they are
   * reached, as with `records()`.
   */
  async *blockRecords(opts: ReadOptions = {}): AsyncGenerator<Iterable<RecordingRecord>> {
    const from = opts.fromTs ?? -Infinity;
    const to = opts.toTs ?? Infinity;
    const chains = this.chains(from, to);
    const start = (c: IteratorResult<ChainBlock[]>) => (c.done ? undefined : { chain: c.value, bodies: decompressChainAsync(c.value) });
    try {
      for (let cur = start(chains.next()); cur !== undefined; ) {
        const next = start(chains.next());
        for (const body of this.chainBodies(cur.chain, await cur.bodies, from, to)) yield this.bodyRecords(body, opts, from, to);
        cur = next;
      }
    } finally {
      // A reader that stops early still closes the segment file.
      chains.return(undefined);
    }
  }

  /** As `records()`, yielding to the event loop after every block. */
  async *recordsAsync(opts: ReadOptions = {}): AsyncGenerator<RecordingRecord> {
    for await (const block of this.blockRecords(opts)) {
      yield* block;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  [Symbol.iterator](): Generator<RecordingRecord> {
    return this.records();
  }
}
