/**
 * The recording format: segment files of checksummed blocks.
 *
 * Segment file `seg-NNNNNN.pbr` = 16-byte header (`PBRSEG01` + creation time f64 LE), then blocks.
 * Block = 56-byte header (little endian), compressed body, stored (incompressible) bytes:
 *
 *   0 magic "PBRB" | 4 version u8 | 5 compression u8 (0 none, 1 brotli) | 6 flags u16 (0)
 *   8 records u32 | 12 events u32 | 16 chain index u32 | 20 compressed bytes u32 | 24 body bytes u32
 *   28 stored bytes u32 | 32 min recvTs f64 | 40 max recvTs f64 | 48 CRC32 of compressed + stored bytes
 *   52 CRC32 of header bytes 0..51
 *
 * Consecutive blocks of a segment form chains: one brotli stream, flushed at every block boundary,
 * restarted (chain index 0) at the start of a segment and every `chainBytes` of body. A block is on
 * disk complete as soon as it is written; later blocks reuse what the compressor learnt from earlier
 * ones, which keeps small (low-rate, flushed every second) blocks compact. A torn tail block costs
 * only its own records; a corrupt block in the middle also costs the rest of its chain, up to the
 * next chain start. Block bodies never refer to each other, only the compression stream does.
 *
 * The body is columnar: per record a kind byte and a receive-time delta; sources and topics in a
 * string table; event payloads as their msgpack bytes. A raw frame that is JSON-looking text is split
 * into a skeleton (structure and keys, one per distinct shape per block) and its values; each value
 * goes to a column named after its key, stored the way that suits the column: repeated strings (token
 * and condition ids, prices) as dictionary indexes, random hex (order hashes) as bytes outside the
 * compressed part, integer strings (timestamps) as deltas, decimal strings (sizes) as integers,
 * anything else as text. A split is valid only if the skeleton and values rebuild the text exactly
 * (checked on encode), and a column mode only takes values it reproduces exactly; other frames are
 * stored verbatim (UTF-16 if they hold lone surrogates), so reading gives back the same strings.
 */
import { brotliCompressSync, brotliDecompress, brotliDecompressSync, constants as zc, crc32, createBrotliCompress, type BrotliCompress, type BrotliOptions } from 'node:zlib';
import { decode as msgpackDecode } from '@msgpack/msgpack';
import type { FrameSource, RecordingRecord } from '../pipeline/types.js';
import { plainText, templateBuilder, type TemplateBuilder } from './template-value.js';

export const FORMAT_VERSION = 1;
export const SEGMENT_MAGIC = 'PBRSEG01';
export const SEGMENT_HEADER_BYTES = 16;
export const BLOCK_MAGIC = 'PBRB';
export const BLOCK_HEADER_BYTES = 56;
export const COMPRESSION_NONE = 0;
export const COMPRESSION_BROTLI = 1;
/** A block body larger than this is refused on read (a corrupt length must not allocate gigabytes). */
export const MAX_BLOCK_BODY_BYTES = 256 * 1024 * 1024;

const BLOCK_MAGIC_U32 = Buffer.from(BLOCK_MAGIC, 'latin1').readUInt32LE(0);

// Kind byte bits.
const K_EVENT = 1;
const K_TS_FLOAT = 2;
const K_TEMPLATE = 4;
const K_UTF16 = 8;
const K_CONN_FLOAT = 16;

// Column modes.
const M_TEXT = 0;
const M_DICT = 1;
const M_HEX = 2;
const M_INT = 3;
const M_DEC = 4;

const HOLE = '\x00';

// ------------------------------------------------------------------ byte buffers

/** Node 20 has String.prototype.isWellFormed; the ES2023 lib typings do not. */
const isWellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

class Out {
  buf: Buffer;
  pos = 0;

  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Unsigned LEB128 for any safe integer. */
  varint(n: number): void {
    if (n < 0x80 && this.pos < this.buf.length) {
      this.buf[this.pos++] = n;
      return;
    }
    this.ensure(8);
    const buf = this.buf;
    let pos = this.pos;
    while (n >= 0x80) {
      buf[pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    buf[pos++] = n;
    this.pos = pos;
  }

  f64(x: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(x, this.pos);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }

  /** Length-prefixed UTF-8. */
  str(s: string): void {
    const n = s.length;
    if (n < 128) {
      // Short ASCII (ids, prices, keys) without the native call: most strings here are.
      this.ensure(n + 1);
      const buf = this.buf;
      const start = this.pos;
      let pos = start + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[pos++] = c;
      }
      if (i === n) {
        buf[start] = n;
        this.pos = pos;
        return;
      }
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.varint(len);
    this.ensure(len);
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
  }

  /** Any JS string, lone surrogates included (topics and sources are not guaranteed well formed). */
  anyStr(s: string): void {
    if (isWellFormed(s)) {
      this.u8(0);
      this.str(s);
    } else {
      const b = Buffer.from(s, 'utf16le');
      this.u8(1);
      this.varint(b.length);
      this.bytes(b);
    }
  }

  section(o: Out): void {
    this.varint(o.pos);
    this.ensure(o.pos);
    o.buf.copy(this.buf, this.pos, 0, o.pos);
    this.pos += o.pos;
  }

  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Thrown (and caught by the block decoder) when a body does not parse: the block is counted as corrupt. */
class BadBlock extends Error {}

class In {
  pos = 0;

  constructor(
    readonly buf: Buffer,
    private readonly end = buf.length,
  ) {}

  u8(): number {
    if (this.pos >= this.end) throw new BadBlock('truncated');
    return this.buf[this.pos++]!;
  }

  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    let n = 0;
    let mul = 1;
    for (;;) {
      if (pos >= this.end || mul > 2 ** 56) throw new BadBlock('bad varint');
      const b = buf[pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 0x80;
    }
    this.pos = pos;
    return n;
  }

  f64(): number {
    if (this.pos + 8 > this.end) throw new BadBlock('truncated');
    const x = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return x;
  }

  take(n: number): Buffer {
    if (n > this.end - this.pos) throw new BadBlock('truncated');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  str(): string {
    const len = this.varint();
    if (len > this.end - this.pos) throw new BadBlock('truncated');
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  anyStr(): string {
    return this.u8() === 0 ? this.str() : this.take(this.varint()).toString('utf16le');
  }

  /** A second reader from the current position to the same end. */
  fork(): In {
    const f = new In(this.buf, this.end);
    f.pos = this.pos;
    return f;
  }

  /** Moves past `n` bytes; returns where they start. */
  skip(n: number): number {
    if (n > this.end - this.pos) throw new BadBlock('truncated');
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** Moves past `n` varints without reading them (their readers check them). */
  skipVarints(n: number): void {
    const buf = this.buf;
    let pos = this.pos;
    for (let k = 0; k < n; k++) {
      while (pos < this.end && buf[pos]! >= 0x80) pos++;
      if (pos >= this.end) throw new BadBlock('bad varint');
      pos++;
    }
    this.pos = pos;
  }

  section(): In {
    const len = this.varint();
    if (len > this.end - this.pos) throw new BadBlock('truncated section');
    const sub = new In(this.buf, this.pos + len);
    sub.pos = this.pos;
    this.pos += len;
    return sub;
  }
}

const zigzag = (d: number) => (d >= 0 ? d * 2 : -d * 2 - 1);
const unzigzag = (z: number) => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

// ------------------------------------------------------------------ frame templates

/**
 * Splits JSON-looking text into a skeleton (each value replaced by a NUL) and the values, or null
 * when the text has control characters (not JSON anyway) or an unterminated string. Object keys and
 * empty strings stay in the skeleton. Works on the text and never re-serializes, so the skeleton's
 * parts interleaved with the values are the input (checked again by the encoder).
 */
export function splitFrame(s: string, values: string[]): string | null {
  const n = s.length;
  let skel = '';
  let seg = 0;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 0x20) return null;
    if (c === 0x22) {
      let j = i + 1;
      for (;;) {
        if (j >= n) return null;
        const d = s.charCodeAt(j);
        if (d === 0x22) break;
        if (d < 0x20) return null;
        if (d === 0x5c) {
          // Nor may an escaped one: a NUL in a skeleton would read as a hole.
          if (j + 1 >= n || s.charCodeAt(j + 1) < 0x20) return null;
          j += 2;
        } else {
          j++;
        }
      }
      if (j + 1 < n && s.charCodeAt(j + 1) === 0x3a) {
        i = j + 2;
        continue;
      }
      if (j > i + 1) {
        skel += s.slice(seg, i + 1) + HOLE;
        values.push(s.slice(i + 1, j));
        seg = j;
      }
      i = j + 1;
    } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
      let j = i + 1;
      while (j < n) {
        const d = s.charCodeAt(j);
        if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) j++;
        else break;
      }
      skel += s.slice(seg, i) + HOLE;
      values.push(s.slice(i, j));
      seg = j;
      i = j;
    } else {
      i++;
    }
  }
  return skel + s.slice(seg);
}

interface Template {
  id: number;
  skeleton: string;
  parts: string[];
  /** Column of each hole: the key the value belongs to. */
  cols: string[];
}

/** Hole columns of a skeleton; encoder and decoder both derive them from the skeleton alone. */
function holeColumns(skel: string): string[] {
  const cols: string[] = [];
  let lastKey = '';
  const n = skel.length;
  let i = 0;
  while (i < n) {
    const c = skel.charCodeAt(i);
    if (c === 0) {
      cols.push(lastKey);
      i++;
    } else if (c === 0x22) {
      let j = i + 1;
      while (j < n && skel.charCodeAt(j) !== 0x22) j += skel.charCodeAt(j) === 0x5c ? 2 : 1;
      if (j === i + 2 && skel.charCodeAt(i + 1) === 0) cols.push(lastKey);
      else if (j + 1 < n && skel.charCodeAt(j + 1) === 0x3a) lastKey = skel.slice(i + 1, j);
      i = j + 1;
    } else {
      i++;
    }
  }
  return cols;
}

/**
 * Splits `s` along a known template: its literal parts must appear in order at the exact positions
 * and the values between them follow the same rules as `splitFrame`. On success the text is, by
 * construction, the parts interleaved with the values. Cheaper than splitting: no skeleton to build
 * and look up.
 */
function matchTemplate(t: Template, s: string, values: string[], plain: boolean): boolean {
  const parts = t.parts;
  const n = s.length;
  const last = parts.length - 1;
  let pos = 0;
  values.length = 0;
  for (let k = 0; ; k++) {
    const part = parts[k]!;
    const len = part.length;
    if (pos + len > n) return false;
    // Hand-rolled startsWith: most parts are a few characters and the builtin's call costs more.
    for (let i = 0; i < len; i++) if (s.charCodeAt(pos + i) !== part.charCodeAt(i)) return false;
    pos += len;
    if (k === last) return pos === n;
    const start = pos;
    if (part.charCodeAt(len - 1) === 0x22 && plain) {
      // No backslash anywhere in the frame: the value ends at the next quote.
      pos = s.indexOf('"', pos);
      if (pos < 0) return false;
    } else if (part.charCodeAt(len - 1) === 0x22) {
      for (;;) {
        if (pos >= n) return false;
        const d = s.charCodeAt(pos);
        if (d === 0x22) break;
        if (d < 0x20) return false;
        if (d === 0x5c) {
          if (pos + 1 >= n || s.charCodeAt(pos + 1) < 0x20) return false;
          pos += 2;
        } else {
          pos++;
        }
      }
    } else {
      while (pos < n) {
        const d = s.charCodeAt(pos);
        if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) pos++;
        else break;
      }
    }
    if (pos === start) return false;
    values.push(s.slice(start, pos));
  }
}

function makeTemplate(id: number, skeleton: string): Template | null {
  const parts = skeleton.split(HOLE);
  const cols = holeColumns(skeleton);
  return cols.length === parts.length - 1 ? { id, skeleton, parts, cols } : null;
}

// ------------------------------------------------------------------ columns

// Modes a column can still use, narrowed value by value.
const F_INT = 1;
const F_DEC = 2;
const F_HEX = 4;
/** A column with more distinct values than this is not worth a dictionary. */
const DICT_MAX = 1 << 16;

/**
 * Which of INT (canonical integer, ≤ 15 digits so deltas stay exact), DEC (canonical decimal with
 * ≤ 7 decimals whose mantissa * 8 + scale is a safe integer) and HEX (lowercase hex, `len` chars,
 * with or without the column's `0x` prefix) `v` fits, among `flags`.
 */
function classify(v: string, flags: number, hexLen: number, prefixed: boolean): number {
  const n = v.length;
  if (n === 0) return 0;
  if (flags & F_HEX) {
    let ok = n === hexLen;
    const start = prefixed ? 2 : 0;
    if (ok && prefixed) ok = v.charCodeAt(0) === 0x30 && v.charCodeAt(1) === 0x78;
    for (let i = start; ok && i < n; i++) {
      const c = v.charCodeAt(i);
      ok = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);
    }
    if (!ok) flags &= ~F_HEX;
  }
  if (n > 16) flags &= ~(F_INT | F_DEC);
  if (flags & (F_INT | F_DEC)) {
    let dot = -1;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c === 0x2e && dot < 0 && i > 0) dot = i;
      else if (c < 0x30 || c > 0x39) {
        ok = false;
        break;
      }
    }
    const intLen = dot < 0 ? n : dot;
    // No leading zeros ("0" itself is fine), no trailing dot.
    if (!ok || (intLen > 1 && v.charCodeAt(0) === 0x30) || dot === n - 1) flags &= ~(F_INT | F_DEC);
    else {
      if (dot >= 0 || n > 15) flags &= ~F_INT;
      if (flags & F_DEC && (n - intLen - 1 > 7 || n > 16)) flags &= ~F_DEC;
    }
  }
  return flags;
}

function decCode(v: string): number {
  const dot = v.indexOf('.');
  if (dot < 0) return Number(v) * 8;
  const scale = v.length - dot - 1;
  return Number(v.slice(0, dot) + v.slice(dot + 1)) * 8 + scale;
}

/**
 * Decimal texts recently made, by code, in a direct-mapped table: prices take a few hundred values,
 * so most are made once instead of per value read.
 */
const DEC_SLOTS = 4096;
const decCodes = new Float64Array(DEC_SLOTS).fill(-1);
const decTexts = new Array<string>(DEC_SLOTS).fill('');

function fromDec(code: number): string {
  const slot = code % DEC_SLOTS;
  if (decCodes[slot] === code) return decTexts[slot]!;
  const text = decText(code);
  decCodes[slot] = code;
  decTexts[slot] = text;
  return text;
}

function decText(code: number): string {
  const scale = code % 8;
  const mant = (code - scale) / 8;
  if (scale === 0) return String(mant);
  const digits = String(mant).padStart(scale + 1, '0');
  return `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

class Column {
  readonly values: string[] = [];
  hexLen = -1;
  prefixed = false;
  dict: Map<string, number> | null = new Map();
  /** Dictionary index of each value, while the dictionary is kept. */
  ids: number[] = [];

  constructor(readonly name: string) {}

  push(v: string): void {
    const values = this.values;
    if (values.length === 0) {
      this.prefixed = v.startsWith('0x');
      this.hexLen = v.length;
    }
    values.push(v);
    const dict = this.dict;
    if (dict) {
      let id = dict.get(v);
      if (id === undefined) {
        // Mostly distinct so far (hashes, sizes): stop paying for a dictionary it will not use.
        if (dict.size >= DICT_MAX || (values.length >= 512 && dict.size * 4 > values.length * 3)) {
          this.dict = null;
          this.ids = [];
          return;
        }
        dict.set(v, (id = dict.size));
      }
      this.ids.push(id);
    }
  }

  /** Whether every value fits `flag`; stops at the first that does not (most columns fail INT at once). */
  private fits(flag: number): boolean {
    for (const v of this.values) if (!(classify(v, flag, this.hexLen, this.prefixed) & flag)) return false;
    return true;
  }

  mode(): number {
    if (this.fits(F_INT)) return M_INT;
    if (this.dict && this.dict.size * 4 <= this.values.length) return M_DICT;
    const hexShape = this.hexLen >= 16 && (this.hexLen - (this.prefixed ? 2 : 0)) % 2 === 0;
    if (hexShape && this.fits(F_HEX)) return M_HEX;
    if (this.fits(F_DEC)) {
      // Mantissa * 8 must stay a safe integer.
      for (const v of this.values) if (!Number.isSafeInteger(decCode(v))) return M_TEXT;
      return M_DEC;
    }
    return M_TEXT;
  }

  encode(out: Out, stored: Out): void {
    const mode = this.mode();
    const values = this.values;
    out.str(this.name);
    out.u8(mode);
    out.varint(values.length);
    if (mode === M_INT) {
      let prev = 0;
      for (const v of values) {
        const n = Number(v);
        out.varint(zigzag(n - prev));
        prev = n;
      }
    } else if (mode === M_DICT) {
      const dict = this.dict!;
      out.varint(dict.size);
      for (const k of dict.keys()) out.str(k);
      for (const id of this.ids) out.varint(id);
    } else if (mode === M_HEX) {
      out.u8(this.prefixed ? 1 : 0);
      const skip = this.prefixed ? 2 : 0;
      const bytes = (this.hexLen - skip) / 2;
      out.varint(bytes);
      stored.ensure(bytes * values.length);
      const buf = stored.buf;
      let pos = stored.pos;
      for (const v of values) {
        buf.write(skip ? v.slice(skip) : v, pos, bytes, 'hex');
        pos += bytes;
      }
      stored.pos = pos;
    } else if (mode === M_DEC) {
      for (const v of values) out.varint(decCode(v));
    } else {
      for (const v of values) out.str(v);
    }
  }
}

/** Hex values made per native call (see ColumnCursor). */
const HEX_RUN = 64;

/** No quote, backslash or control byte: UTF-8 text that can stand in a JSON string as it is. */
function plainBytes(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = buf[i]!;
    if (c === 0x22 || c === 0x5c || c < 0x20) return false;
  }
  return true;
}

/**
 * A column's values, made one at a time as records need them: a block's values are not all built
 * up front, so a replay holds one record's strings at a time rather than a whole block's (a
 * block's worth of live strings made every young-generation collection copy and promote them).
 */
class ColumnCursor {
  private left: number;
  private prev = 0;
  private hexAt = 0;
  private hexRun = '';
  private hexRunAt = 0;
  private intText = '';

  constructor(
    readonly name: string,
    private readonly mode: number,
    n: number,
    /** Reads this column's values (its own position in the shared section). */
    private readonly inp: In,
    /** With `checkPlain`: every value can stand in a JSON string as it is. */
    readonly plain: boolean,
    private readonly dict: string[] | null,
    private readonly hex: Buffer | null,
    private readonly hexBytes: number,
    private readonly prefix: string,
  ) {
    this.left = n;
  }

  next(): string {
    if (this.left-- <= 0) throw new BadBlock('column underrun');
    switch (this.mode) {
      case M_INT: {
        // Runs of equal values (frames of one millisecond share its timestamp) share one text.
        const d = unzigzag(this.inp.varint());
        if (d !== 0 || this.intText === '') this.intText = String((this.prev += d));
        return this.intText;
      }
      case M_DICT: {
        const s = this.dict![this.inp.varint()];
        if (s === undefined) throw new BadBlock('bad dictionary index');
        return s;
      }
      case M_HEX: {
        // Hex is made for a run of values at once and each value sliced from it: one native
        // call per run instead of one per value, and a slice of a long string costs no copy.
        // Short runs keep what a stored slice holds on to small.
        const chars = this.hexBytes * 2;
        if (this.hexRunAt >= this.hexRun.length) {
          const end = Math.min(this.hex!.length, this.hexAt + this.hexBytes * HEX_RUN);
          this.hexRun = this.hex!.toString('hex', this.hexAt, end);
          this.hexAt = end;
          this.hexRunAt = 0;
        }
        const o = this.hexRunAt;
        this.hexRunAt += chars;
        const v = this.hexRun.slice(o, o + chars);
        return this.prefix ? this.prefix + v : v;
      }
      case M_DEC:
        return fromDec(this.inp.varint());
      default:
        return this.inp.str();
    }
  }
}

/**
 * Opens the next column of `inp` and moves `inp` past its values without making them (the
 * dictionary of a dictionary column is made now). With `checkPlain` (for replay) it also finds
 * whether all values can stand in a JSON string as they are: numbers and hex always can;
 * dictionary entries and text are checked here, on their bytes.
 */
function openColumn(inp: In, stored: In, checkPlain: boolean): ColumnCursor {
  const name = inp.str();
  const mode = inp.u8();
  const n = inp.varint();
  if (n > inp.buf.length * 8 + 1) throw new BadBlock('bad column length');
  let plain = checkPlain;
  let dict: string[] | null = null;
  let hex: Buffer | null = null;
  let hexBytes = 0;
  let prefix = '';
  if (mode === M_DICT) {
    const size = inp.varint();
    if (size > n) throw new BadBlock('bad dictionary');
    dict = new Array<string>(size);
    for (let i = 0; i < size; i++) {
      dict[i] = inp.str();
      if (plain && !plainText(dict[i]!)) plain = false;
    }
  } else if (mode === M_HEX) {
    prefix = inp.u8() ? '0x' : '';
    hexBytes = inp.varint();
    hex = stored.take(hexBytes * n);
  } else if (mode !== M_INT && mode !== M_DEC && mode !== M_TEXT) {
    throw new BadBlock(`unknown column mode ${mode}`);
  }
  const values = inp.fork();
  if (mode === M_TEXT) {
    for (let i = 0; i < n; i++) {
      const len = inp.varint();
      const at = inp.skip(len);
      if (plain && !plainBytes(inp.buf, at, at + len)) plain = false;
    }
  } else if (mode !== M_HEX) {
    inp.skipVarints(n);
  }
  return new ColumnCursor(name, mode, n, values, plain, dict, hex, hexBytes, prefix);
}

/** First-appearance dictionary for sources and topics. */
class StringTable {
  readonly index = new Map<string, number>();
  readonly list: string[] = [];

  id(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.list.length;
      this.index.set(s, i);
      this.list.push(s);
    }
    return i;
  }
}

// ------------------------------------------------------------------ block bodies

export interface EncodedBody {
  /** The part to compress. */
  body: Buffer;
  /** Stored as is after the compressed part (random bytes do not compress). */
  stored: Buffer;
  records: number;
  rawFrames: number;
  events: number;
  minTs: number;
  maxTs: number;
}

const RECENT_TEMPLATES = 8;

interface BlockTemplate extends Template {
  columns: Column[];
}

/** Builds the uncompressed columnar body of one block. Pure; the records are not modified. */
export function encodeBody(records: readonly RecordingRecord[]): EncodedBody {
  const kinds = new Out(records.length + 16);
  const ts = new Out(records.length * 2 + 16);
  const tsf = new Out(64);
  const meta = new Out(1024);
  const connf = new Out(64);
  const tplIds = new Out(1024);
  const texts = new Out(1024);
  const topics = new Out(1024);
  const payLens = new Out(1024);
  const payloads: Uint8Array[] = [];
  let payloadBytes = 0;
  const strings = new StringTable();
  const templates = new Map<string, BlockTemplate>();
  const tplList: BlockTemplate[] = [];
  const columns = new Map<string, Column>();
  const values: string[] = [];
  /** Most recently used templates, tried first (most frames share a handful of shapes). */
  const recent: BlockTemplate[] = [];

  let prevTs = 0;
  let minTs = Infinity;
  let maxTs = -Infinity;
  let rawFrames = 0;
  let events = 0;

  for (const r of records) {
    let kind = 0;
    const t = r.recvTs;
    if (t < minTs) minTs = t;
    if (t > maxTs) maxTs = t;
    if (Number.isSafeInteger(t) && !Object.is(t, -0) && Math.abs(t - prevTs) < 2 ** 51) {
      ts.varint(zigzag(t - prevTs));
      prevTs = t;
    } else {
      kind |= K_TS_FLOAT;
      tsf.f64(t);
    }
    if (r.kind === 'event') {
      kind |= K_EVENT;
      events++;
      topics.varint(strings.id(r.topic));
      payLens.varint(r.payload.byteLength);
      payloads.push(r.payload);
      payloadBytes += r.payload.byteLength;
    } else {
      rawFrames++;
      meta.varint(strings.id(r.source));
      if (Number.isSafeInteger(r.conn) && r.conn >= 0 && !Object.is(r.conn, -0)) meta.varint(r.conn);
      else {
        kind |= K_CONN_FLOAT;
        connf.f64(r.conn);
      }
      const data = r.data;
      const c0 = data.charCodeAt(0);
      let tpl: BlockTemplate | null | undefined;
      // Values are stored as UTF-8, so only well-formed text is split (cheap: one-byte strings are).
      const splittable = (c0 === 0x7b || c0 === 0x5b) && data.length > 8 && isWellFormed(data);
      if (splittable && recent.length > 0) {
        const plain = data.indexOf('\\') < 0;
        for (let i = 0; i < recent.length; i++) {
          if (matchTemplate(recent[i]!, data, values, plain)) {
            tpl = recent[i]!;
            if (i > 0) {
              recent.splice(i, 1);
              recent.unshift(tpl);
            }
            break;
          }
        }
      }
      if (!tpl && splittable) {
        values.length = 0;
        const skel = splitFrame(data, values);
        if (skel !== null) {
          tpl = templates.get(skel);
          if (tpl === undefined) {
            const t = makeTemplate(tplList.length, skel);
            if (t) {
              tpl = {
                ...t,
                columns: t.cols.map((name) => {
                  let c = columns.get(name);
                  if (!c) columns.set(name, (c = new Column(name)));
                  return c;
                }),
              };
              templates.set(skel, tpl);
              tplList.push(tpl);
            }
          }
          if (tpl && !rebuildsTo(tpl, values, data)) tpl = null;
          if (tpl) {
            recent.unshift(tpl);
            if (recent.length > RECENT_TEMPLATES) recent.pop();
          }
        }
      }
      if (tpl) {
        kind |= K_TEMPLATE;
        tplIds.varint(tpl.id);
        const cols = tpl.columns;
        for (let k = 0; k < values.length; k++) cols[k]!.push(values[k]!);
      } else if (isWellFormed(data)) {
        texts.str(data);
      } else {
        // Lone surrogates would not survive UTF-8; keep the UTF-16 code units.
        kind |= K_UTF16;
        const b = Buffer.from(data, 'utf16le');
        texts.varint(b.length);
        texts.bytes(b);
      }
    }
    kinds.u8(kind);
  }

  const stored = new Out(1024);
  const cols = new Out(16 * 1024);
  cols.varint(columns.size);
  for (const c of columns.values()) c.encode(cols, stored);
  const tpls = new Out(1024);
  tpls.varint(tplList.length);
  for (const t of tplList) tpls.str(t.skeleton);
  const table = new Out(1024);
  table.varint(strings.list.length);
  for (const s of strings.list) table.anyStr(s);

  const sections = [kinds, ts, tsf, meta, connf, table, tpls, tplIds, texts, cols, topics, payLens];
  const body = new Out(sections.reduce((n, o) => n + o.pos + 8, 0) + payloadBytes + 16);
  body.varint(records.length);
  for (const o of sections) body.section(o);
  // Payloads last and copied once: they are most of an event block.
  body.varint(payloadBytes);
  const buf = body.buf;
  let pos = body.pos;
  for (const p of payloads) {
    buf.set(p, pos);
    pos += p.byteLength;
  }
  body.pos = pos;
  return { body: body.done(), stored: stored.done(), records: records.length, rawFrames, events, minTs, maxTs };
}

/**
 * A template frame's text, joined, not `+=`: concatenation leaves a rope that JSON.parse must flatten
 * first, which costs as much as the parse itself.
 */
function joinTemplate(parts: readonly string[], values: readonly string[]): string {
  const pieces = new Array<string>(values.length * 2 + 1);
  pieces[0] = parts[0]!;
  for (let k = 0; k < values.length; k++) {
    pieces[2 * k + 1] = values[k]!;
    pieces[2 * k + 2] = parts[k + 1]!;
  }
  return pieces.join('');
}

/** A replayed template frame: its value is built; its text only when someone reads `data`. */
class TemplateFrame {
  readonly kind = 'raw' as const;
  private text: string | undefined;

  constructor(
    readonly source: FrameSource,
    readonly conn: number,
    readonly recvTs: number,
    readonly parsed: unknown,
    private readonly parts: readonly string[],
    private readonly values: readonly string[],
  ) {}

  get data(): string {
    return (this.text ??= joinTemplate(this.parts, this.values));
  }
}

function rebuildsTo(t: Template, values: string[], text: string): boolean {
  if (values.length !== t.cols.length) return false;
  const parts = t.parts;
  let s = parts[0]!;
  for (let k = 0; k < values.length; k++) s += values[k]! + parts[k + 1]!;
  return s === text;
}

/**
 * Decodes a block body; throws BadBlock (internal) on anything inconsistent. With `parsed`, template
 * frames come with their JSON value built from the columns and their text only made if read.
 */
export function decodeBody(body: Buffer, storedBuf: Buffer, parsed = false): RecordingRecord[] {
  const dec = new BodyDecoder(body, storedBuf, parsed);
  const out: RecordingRecord[] = [];
  for (let r = dec.next(); r !== null; r = dec.next()) out.push(r);
  return out;
}

type ReadTemplate = { parts: string[]; cols: ColumnCursor[]; build: TemplateBuilder['plain'] | null };

/**
 * A block body read one record at a time: each record's values are made as it is reached, so only
 * the record in hand is alive. Throws BadBlock where the body stops making sense, after the records
 * before that point.
 */
export class BodyDecoder {
  private readonly count: number;
  private r = 0;
  private prevTs = 0;
  private readonly kinds: In;
  private readonly ts: In;
  private readonly tsf: In;
  private readonly meta: In;
  private readonly connf: In;
  private readonly tplIds: In;
  private readonly texts: In;
  private readonly topics: In;
  private readonly payLens: In;
  private readonly payloads: In;
  private readonly strings: string[];
  private readonly templates: ReadTemplate[] = [];

  constructor(body: Buffer, storedBuf: Buffer, parsed = false) {
    const inp = new In(body);
    this.count = inp.varint();
    if (this.count > body.length) throw new BadBlock('bad record count');
    this.kinds = inp.section();
    this.ts = inp.section();
    this.tsf = inp.section();
    this.meta = inp.section();
    this.connf = inp.section();
    const table = inp.section();
    const tpls = inp.section();
    this.tplIds = inp.section();
    this.texts = inp.section();
    const colsIn = inp.section();
    this.topics = inp.section();
    this.payLens = inp.section();
    this.payloads = inp.section();

    const nStrings = table.varint();
    if (nStrings > body.length) throw new BadBlock('bad string table');
    this.strings = new Array<string>(nStrings);
    for (let i = 0; i < nStrings; i++) this.strings[i] = table.anyStr();
    const stored = new In(storedBuf);
    const columns = new Map<string, ColumnCursor>();
    const nCols = colsIn.varint();
    for (let i = 0; i < nCols; i++) {
      const c = openColumn(colsIn, stored, parsed);
      columns.set(c.name, c);
    }
    const nTpl = tpls.varint();
    for (let i = 0; i < nTpl; i++) {
      const t = makeTemplate(i, tpls.str());
      if (!t) throw new BadBlock('bad template');
      const cols = t.cols.map((name) => {
        const c = columns.get(name);
        if (!c) throw new BadBlock('missing column');
        return c;
      });
      const builder: TemplateBuilder | null = parsed ? templateBuilder(t.skeleton, t.cols.length) : null;
      // Columns free of quotes, backslashes and control characters need no check per value.
      const build = builder && (cols.every((c) => c.plain) ? builder.plain : builder.checked);
      this.templates.push({ parts: t.parts, build, cols });
    }
  }

  /** The next record, or null after the last. */
  next(): RecordingRecord | null {
    if (this.r >= this.count) return null;
    this.r++;
    const kind = this.kinds.u8();
    let recvTs: number;
    if (kind & K_TS_FLOAT) recvTs = this.tsf.f64();
    else recvTs = this.prevTs += unzigzag(this.ts.varint());
    if (kind & K_EVENT) {
      const topic = this.strings[this.topics.varint()];
      if (topic === undefined) throw new BadBlock('bad topic index');
      // Copy: the caller may keep payloads longer than the block buffer lives.
      const payload = new Uint8Array(this.payloads.take(this.payLens.varint()));
      return { kind: 'event', recvTs, topic, payload };
    }
    const source = this.strings[this.meta.varint()] as FrameSource | undefined;
    if (source === undefined) throw new BadBlock('bad source index');
    const conn = kind & K_CONN_FLOAT ? this.connf.f64() : this.meta.varint();
    let data: string;
    if (kind & K_TEMPLATE) {
      const t = this.templates[this.tplIds.varint()];
      if (!t) throw new BadBlock('bad template id');
      const { parts, cols, build } = t;
      const values = new Array<string>(cols.length);
      for (let k = 0; k < cols.length; k++) values[k] = cols[k]!.next();
      if (build !== null) {
        let value: unknown;
        try {
          value = build(values);
        } catch {
          // Not plain tokens: the text, parsed as before, decides what the frame is.
          value = undefined;
        }
        if (value !== undefined) return new TemplateFrame(source, conn, recvTs, value, parts, values);
      }
      data = joinTemplate(parts, values);
    } else if (kind & K_UTF16) {
      data = this.texts.take(this.texts.varint()).toString('utf16le');
    } else {
      data = this.texts.str();
    }
    return { kind: 'raw', source, conn, recvTs, data };
  }
}

// ------------------------------------------------------------------ blocks

export interface BlockHeader {
  version: number;
  compression: number;
  records: number;
  events: number;
  /** Position in its compression chain; 0 = starts a new chain (decodable on its own). */
  chainIndex: number;
  compressedBytes: number;
  bodyBytes: number;
  storedBytes: number;
  minTs: number;
  maxTs: number;
  crc: number;
}

export interface CompressionOptions {
  /** Brotli quality 0..11 (default 5). */
  quality?: number;
  /** Brotli window, log2 bytes (default 22 = 4 MiB). */
  lgwin?: number;
}

function brotliParams(opts: CompressionOptions, sizeHint?: number) {
  return {
    params: {
      [zc.BROTLI_PARAM_QUALITY]: opts.quality ?? 5,
      [zc.BROTLI_PARAM_LGWIN]: opts.lgwin ?? 22,
      ...(sizeHint !== undefined ? { [zc.BROTLI_PARAM_SIZE_HINT]: sizeHint } : {}),
    },
  };
}

/**
 * One brotli stream shared by consecutive blocks (a chain), flushed at each block boundary so every
 * block's bytes are complete on disk. Later blocks reuse what earlier ones taught the compressor
 * (ids, shapes, statistics), which is most of the gain at low rates where blocks are small. Runs on
 * the libuv thread pool, off the main thread.
 */
export class ChainCompressor {
  private readonly stream: BrotliCompress;
  private chunks: Buffer[] = [];
  private error: Error | undefined;

  constructor(opts: CompressionOptions = {}) {
    this.stream = createBrotliCompress(brotliParams(opts));
    this.stream.on('data', (c: Buffer) => this.chunks.push(c));
    this.stream.on('error', (err: Error) => (this.error = err));
  }

  async compress(body: Buffer): Promise<Buffer> {
    if (this.error) throw this.error;
    this.stream.write(body);
    await new Promise<void>((resolve) => this.stream.flush(zc.BROTLI_OPERATION_FLUSH, () => resolve()));
    // Output pushed while flushing may still be queued for 'data' in this turn's ticks.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.error) throw this.error;
    const out = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    return out;
  }

  close(): void {
    this.stream.destroy();
  }
}

/** Header + compressed body + stored bytes, ready to append to a segment. */
export function assembleBlock(enc: EncodedBody, compressed: Buffer, chainIndex: number): Buffer {
  const total = BLOCK_HEADER_BYTES + compressed.length + enc.stored.length;
  const b = Buffer.allocUnsafe(total);
  b.write(BLOCK_MAGIC, 0, 'latin1');
  b.writeUInt8(FORMAT_VERSION, 4);
  b.writeUInt8(COMPRESSION_BROTLI, 5);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(enc.records, 8);
  b.writeUInt32LE(enc.events, 12);
  b.writeUInt32LE(chainIndex, 16);
  b.writeUInt32LE(compressed.length, 20);
  b.writeUInt32LE(enc.body.length, 24);
  b.writeUInt32LE(enc.stored.length, 28);
  b.writeDoubleLE(enc.records ? enc.minTs : 0, 32);
  b.writeDoubleLE(enc.records ? enc.maxTs : 0, 40);
  compressed.copy(b, BLOCK_HEADER_BYTES);
  enc.stored.copy(b, BLOCK_HEADER_BYTES + compressed.length);
  b.writeUInt32LE(crc32(enc.stored, crc32(compressed)), 48);
  b.writeUInt32LE(crc32(b.subarray(0, 52)), 52);
  return b;
}

/** Encodes records into one stand-alone block (chain of one), synchronously: tests and tools. */
export function encodeBlockSync(records: readonly RecordingRecord[], opts: CompressionOptions = {}): Buffer {
  const enc = encodeBody(records);
  return assembleBlock(enc, brotliCompressSync(enc.body, brotliParams(opts, enc.body.length)), 0);
}

/** Parses a block header at `off`, or null if it is not a valid one (bad magic or header CRC). */
export function readBlockHeader(buf: Buffer, off = 0): BlockHeader | null {
  if (off + BLOCK_HEADER_BYTES > buf.length) return null;
  if (buf.readUInt32LE(off) !== BLOCK_MAGIC_U32) return null;
  if (crc32(buf.subarray(off, off + 52)) !== buf.readUInt32LE(off + 52)) return null;
  const h: BlockHeader = {
    version: buf.readUInt8(off + 4),
    compression: buf.readUInt8(off + 5),
    records: buf.readUInt32LE(off + 8),
    events: buf.readUInt32LE(off + 12),
    chainIndex: buf.readUInt32LE(off + 16),
    compressedBytes: buf.readUInt32LE(off + 20),
    bodyBytes: buf.readUInt32LE(off + 24),
    storedBytes: buf.readUInt32LE(off + 28),
    minTs: buf.readDoubleLE(off + 32),
    maxTs: buf.readDoubleLE(off + 40),
    crc: buf.readUInt32LE(off + 48),
  };
  if (h.version !== FORMAT_VERSION || h.bodyBytes > MAX_BLOCK_BODY_BYTES || h.compressedBytes + h.storedBytes > MAX_BLOCK_BODY_BYTES) return null;
  if (h.events > h.records) return null;
  return h;
}

export const blockBytes = (h: BlockHeader) => BLOCK_HEADER_BYTES + h.compressedBytes + h.storedBytes;

/** Checks the data CRC of a block; `data` = the bytes after its header (compressed + stored). */
export function blockDataOk(h: BlockHeader, data: Buffer): boolean {
  if (data.length < h.compressedBytes + h.storedBytes) return false;
  const comp = data.subarray(0, h.compressedBytes);
  const stored = data.subarray(h.compressedBytes, h.compressedBytes + h.storedBytes);
  return crc32(stored, crc32(comp)) === h.crc;
}

export interface ChainBlock {
  header: BlockHeader;
  /** Bytes after the header (compressed + stored), CRC already checked. */
  data: Buffer;
}

/**
 * Decompresses consecutive CRC-checked blocks of one chain (the first has chainIndex 0) into their
 * bodies, or null if the chain does not decompress to the lengths the headers promise.
 */
export function decompressChain(blocks: readonly ChainBlock[]): Buffer[] | null {
  const job = chainJob(blocks);
  if (job === null || Array.isArray(job)) return job;
  try {
    return splitChain(blocks, brotliDecompressSync(job.comp, job.opts));
  } catch {
    return null;
  }
}

/**
 * `decompressChain` on libuv's thread pool: a replay reads one chain while the next is
 * decompressed on another core.
 */
export function decompressChainAsync(blocks: readonly ChainBlock[]): Promise<Buffer[] | null> {
  const job = chainJob(blocks);
  if (job === null || Array.isArray(job)) return Promise.resolve(job);
  return new Promise((resolve) => {
    try {
      brotliDecompress(job.comp, job.opts, (err, out) => resolve(err ? null : splitChain(blocks, out)));
    } catch {
      resolve(null);
    }
  });
}

/** What decompressing a chain takes, or its bodies / null when nothing needs decompressing. */
function chainJob(blocks: readonly ChainBlock[]): Buffer[] | null | { comp: Buffer; opts: BrotliOptions } {
  if (blocks.length === 0) return [];
  const first = blocks[0]!.header;
  if (first.compression === COMPRESSION_NONE && blocks.length === 1) {
    return first.bodyBytes === first.compressedBytes ? [blocks[0]!.data.subarray(0, first.compressedBytes)] : null;
  }
  let total = 0;
  for (const b of blocks) {
    if (b.header.compression !== COMPRESSION_BROTLI) return null;
    total += b.header.bodyBytes;
  }
  const comp = blocks.length === 1 ? blocks[0]!.data.subarray(0, first.compressedBytes) : Buffer.concat(blocks.map((b) => b.data.subarray(0, b.header.compressedBytes)));
  // The chain's stream is never finished (the writer only flushes), so decode up to the last flush.
  return { comp, opts: { finishFlush: zc.BROTLI_OPERATION_FLUSH, maxOutputLength: Math.max(1, total) } };
}

/** A chain's decompressed stream cut into its blocks' bodies; null if its length is not theirs. */
function splitChain(blocks: readonly ChainBlock[], out: Buffer): Buffer[] | null {
  let total = 0;
  for (const b of blocks) total += b.header.bodyBytes;
  if (out.length !== total) return null;
  const bodies: Buffer[] = [];
  let off = 0;
  for (const b of blocks) {
    bodies.push(out.subarray(off, off + b.header.bodyBytes));
    off += b.header.bodyBytes;
  }
  return bodies;
}

/** Decodes one block body (from `decompressChain`) into records, or null if it does not parse. */
export function decodeBlockBody(h: BlockHeader, body: Buffer, data: Buffer, parsed = false): RecordingRecord[] | null {
  try {
    const recs = decodeBody(body, data.subarray(h.compressedBytes, h.compressedBytes + h.storedBytes), parsed);
    return recs.length === h.records ? recs : null;
  } catch {
    return null;
  }
}

/** Decodes a stand-alone block (`buf` starts at its header): null on any problem, never throws. */
export function decodeBlock(buf: Buffer): RecordingRecord[] | null {
  const h = readBlockHeader(buf, 0);
  if (!h || h.chainIndex !== 0) return null;
  const data = buf.subarray(BLOCK_HEADER_BYTES);
  if (!blockDataOk(h, data)) return null;
  const bodies = decompressChain([{ header: h, data }]);
  return bodies ? decodeBlockBody(h, bodies[0]!, data) : null;
}

export function segmentHeader(createdAt: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  b.write(SEGMENT_MAGIC, 0, 'latin1');
  b.writeDoubleLE(createdAt, 8);
  return b;
}

export function isSegmentHeader(buf: Buffer): boolean {
  return buf.length >= SEGMENT_HEADER_BYTES && buf.toString('latin1', 0, 8) === SEGMENT_MAGIC;
}

/** Finds the next offset ≥ `from` where a valid block header starts, or -1. */
export function findNextBlock(buf: Buffer, from: number): number {
  let off = from;
  for (;;) {
    off = buf.indexOf(BLOCK_MAGIC, off, 'latin1');
    if (off < 0) return -1;
    if (readBlockHeader(buf, off)) return off;
    off++;
  }
}

// ------------------------------------------------------------------ JSON-lines baseline

function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return v;
}

/**
 * The record as one line of the obvious uncompressed format the 10x target is measured against:
 * raw → `{"source","conn","recv_ts","frame"}` with the frame parsed as JSON (or the text if it is not
 * JSON); event → `{"topic","recv_ts",...the msgpack payload's fields}`. Ends with a newline.
 */
export function toJsonLine(r: RecordingRecord): string {
  if (r.kind === 'raw') {
    let frame: unknown = r.data;
    try {
      frame = JSON.parse(r.data);
    } catch {
      // Not JSON (e.g. PONG): the text itself.
    }
    return `${JSON.stringify({ source: r.source, conn: r.conn, recv_ts: r.recvTs, frame })}\n`;
  }
  let payload: unknown;
  try {
    payload = msgpackDecode(r.payload);
  } catch {
    payload = { payload: Buffer.from(r.payload).toString('base64') };
  }
  const fields = payload !== null && typeof payload === 'object' && !Array.isArray(payload) && !(payload instanceof Uint8Array) ? payload : { payload };
  return `${JSON.stringify({ topic: r.topic, recv_ts: r.recvTs, ...fields }, jsonSafe)}\n`;
}

/** Bytes (UTF-8) of the records as JSON lines; see `toJsonLine`. */
export function jsonLinesSize(records: Iterable<RecordingRecord>): number {
  let n = 0;
  for (const r of records) n += Buffer.byteLength(toJsonLine(r), 'utf8');
  return n;
}
