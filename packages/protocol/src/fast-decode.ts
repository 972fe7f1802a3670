/**
 * A msgpack reader for what the bus carries (maps with string keys, ASCII strings, numbers,
 * booleans, null, arrays, binary), giving exactly what @msgpack/msgpack's Decoder gives for them at
 * a fraction of the cost: every consumer decodes every message, and the general decoder spends
 * ~3 µs on one price message. Anything else — extensions, non-ASCII text, numeric map keys, a
 * limit crossed, truncated or trailing bytes, `__proto__` — returns BAIL, and the caller asks the
 * general decoder, which then decides (and words the error). So this reader never has to be right
 * about bad input, only about good input.
 */
type Slice = (this: Uint8Array, start: number, end: number) => string;
const nativeLatin1 = (Buffer.prototype as unknown as { latin1Slice?: Slice }).latin1Slice;

/** Bytes `start..end` of `b` as Latin-1 text: a loop for short runs, Node's native slice otherwise. */
function latin1Slice(b: Uint8Array, start: number, end: number): string {
  if (end - start <= 6) {
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(b[i]!);
    return s;
  }
  return nativeLatin1 ? nativeLatin1.call(b, start, end) : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', start, end);
}

export const BAIL: unique symbol = Symbol('bail');
export type Decoded = unknown;

export interface FlatDecoderLimits {
  maxStrLength: number;
  maxBinLength: number;
  maxArrayLength: number;
  maxMapLength: number;
}

/** Nesting deeper than this is left to the general decoder (bus messages are two levels deep). */
const MAX_DEPTH = 16;
/** Keys up to this many bytes are looked up in the key cache. */
const KEY_CACHE_MAX = 24;
const KEY_SLOTS = 512;

/** Trie nodes kept (key sequences of all maps seen); past this, maps are built key by key. */
const MAX_SHAPE_NODES = 4096;
/** A shape is compiled into a literal once it has been seen this often. */
const COMPILE_AFTER = 4;

/**
 * A node of the key-sequence trie: the keys read so far. `make` builds a map whose keys are exactly
 * this path, in this order, as assigning them one by one would (duplicate and integer-like keys
 * included).
 */
class Shape {
  private readonly children = new Map<string, Shape>();
  private last: Shape | undefined;
  private seen = 0;
  private build: ((v: unknown[]) => Record<string, unknown>) | undefined;

  constructor(
    private readonly parent: Shape | undefined,
    /** The last key of this path ('' at the root). */
    readonly key: string,
    private readonly budget: { nodes: number },
  ) {}

  /** The keys of this path, root first (made only while a shape is young, or past the node budget). */
  keys(): string[] {
    const out: string[] = [];
    if (this.parent === undefined) return out;
    out.push(this.key);
    for (let s = this.parent; s.parent !== undefined; s = s.parent) out.push(s.key);
    return out.reverse();
  }

  next(k: string): Shape | undefined {
    const last = this.last;
    if (last !== undefined && last.key === k) return last;
    let c = this.children.get(k);
    if (c === undefined) {
      if (this.budget.nodes >= MAX_SHAPE_NODES) return undefined;
      this.budget.nodes++;
      c = new Shape(this, k, this.budget);
      this.children.set(k, c);
    }
    this.last = c;
    return c;
  }

  make(vals: unknown[]): Record<string, unknown> {
    if (this.build) return this.build(vals);
    const keys = this.keys();
    if (++this.seen >= COMPILE_AFTER) {
      // JSON-quoted keys are JS string literals whatever they hold. A quoted `"__proto__":` would
      // set the prototype, but that key never reaches a shape (the reader bails on it).
      const body = keys.map((k, i) => `${JSON.stringify(k)}: v[${i}]`).join(', ');
      this.build = new Function('v', `return { ${body} };`) as (v: unknown[]) => Record<string, unknown>;
      return this.build(vals);
    }
    return assign(keys, vals);
  }
}

function assign(keys: readonly string[], vals: readonly unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) o[keys[i]!] = vals[i];
  return o;
}

export class FlatDecoder {
  private bytes: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.bytes.buffer);
  private pos = 0;
  private end = 0;
  /** Keys repeat in every message: the same string object back saves making and interning it. */
  private readonly keyBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(KEY_SLOTS);
  private readonly keyStrs: string[] = new Array<string>(KEY_SLOTS);
  private readonly keyFlagged = new Uint8Array(KEY_SLOTS);
  /** Whether the last decode met a key in `flagKeys` (so the caller need not walk the value again). */
  flagged = false;
  private readonly shapes = new Shape(undefined, '', { nodes: 0 });

  constructor(
    private readonly limits: FlatDecoderLimits,
    private readonly flagKeys: ReadonlySet<string> = new Set(),
  ) {}

  /** The value `payload` holds, or BAIL. */
  decode(payload: Uint8Array): Decoded | typeof BAIL {
    this.bytes = payload;
    if (this.view.buffer !== payload.buffer || this.view.byteOffset !== payload.byteOffset || this.view.byteLength !== payload.byteLength) {
      this.view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    }
    this.pos = 0;
    this.end = payload.byteLength;
    this.flagged = false;
    const v = this.value(0);
    // Trailing bytes are an error the general decoder reports.
    return this.pos === this.end ? v : BAIL;
  }

  private value(depth: number): Decoded | typeof BAIL {
    if (this.pos >= this.end) return BAIL;
    const h = this.bytes[this.pos++]!;
    if (h < 0x80) return h;
    if (h >= 0xe0) return h - 0x100;
    if (h < 0x90) return this.map(h - 0x80, depth);
    if (h < 0xa0) return this.array(h - 0x90, depth);
    if (h < 0xc0) return this.str(h - 0xa0);
    const v = this.view;
    let p: number;
    switch (h) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xca:
        return (p = this.skip(4)) < 0 ? BAIL : v.getFloat32(p);
      case 0xcb:
        return (p = this.skip(8)) < 0 ? BAIL : v.getFloat64(p);
      case 0xcc:
        return (p = this.skip(1)) < 0 ? BAIL : v.getUint8(p);
      case 0xcd:
        return (p = this.skip(2)) < 0 ? BAIL : v.getUint16(p);
      case 0xce:
        return (p = this.skip(4)) < 0 ? BAIL : v.getUint32(p);
      case 0xcf:
        // As the general decoder reads 64-bit integers without BigInt: high * 2^32 + low.
        return (p = this.skip(8)) < 0 ? BAIL : v.getUint32(p) * 4294967296 + v.getUint32(p + 4);
      case 0xd0:
        return (p = this.skip(1)) < 0 ? BAIL : v.getInt8(p);
      case 0xd1:
        return (p = this.skip(2)) < 0 ? BAIL : v.getInt16(p);
      case 0xd2:
        return (p = this.skip(4)) < 0 ? BAIL : v.getInt32(p);
      case 0xd3:
        return (p = this.skip(8)) < 0 ? BAIL : v.getInt32(p) * 4294967296 + v.getUint32(p + 4);
      case 0xd9:
        return this.str(this.length(1));
      case 0xda:
        return this.str(this.length(2));
      case 0xdb:
        return this.str(this.length(4));
      case 0xdc:
        return this.array(this.length(2), depth);
      case 0xdd:
        return this.array(this.length(4), depth);
      case 0xde:
        return this.map(this.length(2), depth);
      case 0xdf:
        return this.map(this.length(4), depth);
      case 0xc4:
        return this.bin(this.length(1));
      case 0xc5:
        return this.bin(this.length(2));
      case 0xc6:
        return this.bin(this.length(4));
      default:
        // Extensions (refused on the bus) and the unused byte 0xc1.
        return BAIL;
    }
  }

  /** Moves past `n` bytes and returns where they start, or -1 if the payload ends first. */
  private skip(n: number): number {
    const p = this.pos;
    if (p + n > this.end) return -1;
    this.pos = p + n;
    return p;
  }

  /** A big-endian length of `n` bytes (1, 2 or 4) after a type byte, or -1 if the payload ends first. */
  private length(n: 1 | 2 | 4): number {
    const p = this.skip(n);
    if (p < 0) return -1;
    return n === 1 ? this.bytes[p]! : n === 2 ? this.view.getUint16(p) : this.view.getUint32(p);
  }

  private map(n: number, depth: number): Decoded | typeof BAIL {
    if (n < 0 || n > this.limits.maxMapLength || depth >= MAX_DEPTH || n > this.end - this.pos) return BAIL;
    // Values first, the object after: a map's keys pick its shape, and a shape seen often is built
    // by one object literal instead of n stores under changing keys.
    const vals = new Array<unknown>(n);
    let node: Shape | undefined = this.shapes;
    let keys: string[] | undefined;
    for (let i = 0; i < n; i++) {
      const k = this.key();
      if (k === BAIL) return BAIL;
      const v = this.value(depth + 1);
      if (v === BAIL) return BAIL;
      vals[i] = v;
      if (node !== undefined) {
        const next: Shape | undefined = node.next(k);
        if (next === undefined) keys = [...node.keys(), k];
        node = next;
      } else keys!.push(k);
    }
    return node !== undefined ? node.make(vals) : assign(keys!, vals);
  }

  private array(n: number, depth: number): Decoded | typeof BAIL {
    if (n < 0 || n > this.limits.maxArrayLength || depth >= MAX_DEPTH || n > this.end - this.pos) return BAIL;
    const a = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      const v = this.value(depth + 1);
      if (v === BAIL) return BAIL;
      a[i] = v;
    }
    return a;
  }

  private key(): string | typeof BAIL {
    if (this.pos >= this.end) return BAIL;
    const h = this.bytes[this.pos]!;
    let len: number;
    let start: number;
    if (h >= 0xa0 && h < 0xc0) {
      len = h - 0xa0;
      start = this.pos + 1;
    } else if (h === 0xd9 && this.pos + 1 < this.end) {
      len = this.bytes[this.pos + 1]!;
      start = this.pos + 2;
    } else {
      // Numeric and other keys: the general decoder's rules.
      return BAIL;
    }
    if (len > KEY_CACHE_MAX || start + len > this.end) {
      const s = this.value(0);
      if (typeof s !== 'string' || s === '__proto__') return BAIL;
      if (this.flagKeys.has(s)) this.flagged = true;
      return s;
    }
    const b = this.bytes;
    let hash = len;
    for (let i = 0; i < len; i++) hash = (Math.imul(hash, 31) + b[start + i]!) | 0;
    const slot = hash & (KEY_SLOTS - 1);
    const known = this.keyBytes[slot];
    if (known !== undefined && known.length === len) {
      let same = true;
      for (let i = 0; i < len; i++) {
        if (known[i] !== b[start + i]) {
          same = false;
          break;
        }
      }
      if (same) {
        this.pos = start + len;
        if (this.keyFlagged[slot] === 1) this.flagged = true;
        return this.keyStrs[slot]!;
      }
    }
    for (let i = 0; i < len; i++) if (b[start + i]! >= 0x80) return BAIL;
    const s = latin1Slice(b, start, start + len);
    if (s === '__proto__') return BAIL;
    this.keyBytes[slot] = b.slice(start, start + len);
    this.keyStrs[slot] = s;
    this.keyFlagged[slot] = this.flagKeys.has(s) ? 1 : 0;
    if (this.keyFlagged[slot] === 1) this.flagged = true;
    this.pos = start + len;
    return s;
  }

  private str(len: number): string | typeof BAIL {
    if (len < 0 || len > this.limits.maxStrLength) return BAIL;
    const start = this.pos;
    const end = start + len;
    if (end > this.end) return BAIL;
    const b = this.bytes;
    // ASCII reads the same as Latin-1; other text is the general decoder's (it has its own
    // rules for malformed UTF-8).
    for (let i = start; i < end; i++) if (b[i]! >= 0x80) return BAIL;
    this.pos = end;
    return latin1Slice(b, start, end);
  }

  private bin(len: number): Uint8Array | typeof BAIL {
    if (len < 0 || len > this.limits.maxBinLength) return BAIL;
    const start = this.pos;
    if (start + len > this.end) return BAIL;
    this.pos = start + len;
    // A view, as the general decoder returns.
    return this.bytes.subarray(start, start + len);
  }
}
