/**
 * A msgpack writer for the bus's flat maps (strings, numbers, booleans, null, arrays of those and
 * arrays of such arrays), byte-for-byte what @msgpack/msgpack writes for them with
 * `ignoreUndefined`, at a fraction of the cost: market data publishes tens of thousands of maps a
 * second. Anything else (nested maps, binary, bigint) returns undefined and the caller falls back
 * to the general encoder.
 */
const SLAB_BYTES = 256 * 1024;
const CACHE_SLAB_BYTES = 64 * 1024;

/** Pre-encoded map entries (`FlatEncoder.entries`). */
export interface EncodedEntries {
  readonly bytes: Uint8Array;
  readonly count: number;
}

/** What a layout writer may add to a begun map (see FlatEncoder's layout methods). */
export interface MapWriter {
  entries(e: EncodedEntries): MapWriter;
  field(key: Uint8Array): MapWriter;
  number(v: number): MapWriter;
  /** `number(m / 1e6)` for integer micro-units. */
  micros(m: number): MapWriter;
  /** An array of `[a[j] / 1e6, b[j] / 1e6]` pairs, j = start, start + step, … (n of them). */
  microsPairs(a: ArrayLike<number>, b: ArrayLike<number>, start: number, n: number, step: number): MapWriter;
  string(v: string): MapWriter;
  nil(): MapWriter;
  array(n: number): MapWriter;
}

/** Encodes the static pieces (`entries`, `key`); their bytes are copied out before it is used again. */
let scratch: FlatEncoder | undefined;

export class FlatEncoder implements MapWriter {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  private slab = new Uint8Array(SLAB_BYTES);
  private slabPos = 0;
  private cacheSlab = new Uint8Array(CACHE_SLAB_BYTES);
  private cacheSlabPos = 0;
  private readonly keyCache = new Map<string, Uint8Array>();
  /** Long string values repeat message after message (token and condition ids): keep their bytes. */
  private readonly valueCache = new Map<string, Uint8Array>();
  private readonly probation = new Set<string>();

  // ------------------------------------------------------------ layout writing
  // For publishers that know a message's fields (the scanner's price and depth messages, tens of
  // thousands a second): entries go straight into the buffer, with no object built, walked or looked
  // up, and fixed heads (type, token and market ids) copied as bytes encoded once. The bytes are
  // the same as `encode` gives for the equivalent object.

  /** Map entries encoded once, for `entries`. Undefined values are left out, as by `encode`. */
  static entries(fields: Record<string, unknown>): EncodedEntries {
    const out = (scratch ??= new FlatEncoder()).encode(fields);
    if (!out) throw new TypeError('FlatEncoder.entries: a value the flat encoder cannot write');
    // The count is in the one-byte map header; more than 15 entries would need a wider one.
    if ((out[0]! & 0xf0) !== 0x80) throw new RangeError('FlatEncoder.entries: at most 15 entries');
    return { bytes: out.slice(1), count: out[0]! & 0x0f };
  }

  /** A map key encoded once, for `field`. */
  static key(name: string): Uint8Array {
    return FlatEncoder.entries({ [name]: null }).bytes.slice(0, -1);
  }

  private written = 0;

  /** Starts a map written entry by entry; `end` finishes it. */
  begin(): this {
    this.pos = 1;
    this.written = 0;
    return this;
  }

  /** Copies pre-encoded entries (`FlatEncoder.entries`). */
  entries(e: EncodedEntries): this {
    this.copy(e.bytes);
    this.written += e.count;
    return this;
  }

  /** Starts an entry: its value must follow (`number`, `string`, `nil`, `array` …). */
  field(key: Uint8Array): this {
    this.copy(key);
    this.written++;
    return this;
  }

  number(v: number): this {
    this.num(v);
    return this;
  }

  /** `number(m / 1_000_000)` for integer micros (prices and sizes). */
  micros(m: number): this {
    this.ensure(9);
    this.microsIn(m);
    return this;
  }

  /**
   * An array of `n` pairs `[a[j] / 1e6, b[j] / 1e6]` for j = start, start + step, …: a book's depth
   * levels straight from its sorted price and size arrays, in one loop with one capacity check.
   * The bytes are those of `array(n)` then `array(2).micros(a[j]).micros(b[j])` per pair.
   */
  microsPairs(a: ArrayLike<number>, b: ArrayLike<number>, start: number, n: number, step: number): this {
    this.arrayHeader(n);
    this.ensure(n * 19);
    for (let i = 0, j = start; i < n; i++, j += step) {
      this.buf[this.pos++] = 0x92;
      this.microsIn(a[j]!);
      this.microsIn(b[j]!);
    }
    return this;
  }

  /** `micros` once 9 bytes of room are made. */
  private microsIn(m: number): void {
    // The quotient is written here, not handed to another call, where a fraction would be boxed.
    const v = m / 1_000_000;
    if (Number.isSafeInteger(v)) return this.numIn(v);
    this.buf[this.pos++] = 0xcb;
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }

  /** A string as it comes: strings that repeat belong in pre-encoded `entries`. */
  string(v: string): this {
    this.str(v);
    return this;
  }

  nil(): this {
    this.ensure(1);
    this.buf[this.pos++] = 0xc0;
    return this;
  }

  /** An array header: `n` values must follow. */
  array(n: number): this {
    this.arrayHeader(n);
    return this;
  }

  /**
   * Appends `tail`'s entries (the envelope; undefined values left out) and returns the map.
   * `transient`: a view of the working buffer, valid only until the next message is begun (for a
   * caller that copies it at once), instead of bytes of its own.
   */
  end(tail?: Record<string, unknown>, transient = false): Uint8Array | undefined {
    let n = this.written;
    if (tail) {
      const m = this.objectEntries(tail);
      if (m < 0) return undefined;
      n += m;
    }
    return this.finish(n, transient);
  }

  /** Encodes `a`'s entries then `b`'s (the envelope) as one map; undefined if a value is unsupported. */
  encode(a: Record<string, unknown>, b?: Record<string, unknown>): Uint8Array | undefined {
    // One pass: the entry count is known only at the end, so the header byte is written last.
    this.pos = 1;
    let n = this.objectEntries(a);
    if (n < 0) return undefined;
    if (b) {
      // Keys of `b` already set in `a` are skipped: the same as the merged object.
      const m = this.objectEntries(b, a);
      if (m < 0) return undefined;
      n += m;
    }
    return this.finish(n);
  }

  /** Writes `o`'s entries but undefined ones and those `skip` sets; their count, or -1 if a value cannot be written. */
  private objectEntries(o: Record<string, unknown>, skip?: Record<string, unknown>): number {
    let n = 0;
    const ks = Object.keys(o);
    for (let i = 0; i < ks.length; i++) {
      const k = ks[i]!;
      const v = o[k];
      if (v === undefined || (skip !== undefined && skip[k] !== undefined)) continue;
      this.key(k);
      if (!this.value(v, 0)) return -1;
      n++;
    }
    return n;
  }

  /** Writes the header for `n` entries before the body and returns the map. */
  private finish(n: number, transient = false): Uint8Array {
    if (n < 16) this.buf[0] = 0x80 | n;
    else {
      // Wider header (rare for bus messages): move the body up to make room.
      const wide = n < 0x10000 ? 3 : 5;
      this.ensure(wide);
      this.buf.copyWithin(wide, 1, this.pos);
      this.pos += wide - 1;
      if (wide === 3) {
        this.buf[0] = 0xde;
        this.view.setUint16(1, n);
      } else {
        this.buf[0] = 0xdf;
        this.view.setUint32(1, n);
      }
    }
    return transient ? this.buf.subarray(0, this.pos) : this.take();
  }

  /**
   * The encoded bytes, copied into a shared slab: a fresh typed array over 64 bytes gets its own
   * off-heap store, which costs more than encoding the message. Slab space is never reused, so a
   * returned payload stays valid while anyone (ZeroMQ, a recorder) holds it.
   */
  private take(): Uint8Array {
    const n = this.pos;
    if (n > SLAB_BYTES / 4) return this.buf.slice(0, n);
    if (this.slabPos + n > SLAB_BYTES) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.slabPos = 0;
    }
    const out = this.slab.subarray(this.slabPos, this.slabPos + n);
    out.set(this.buf.subarray(0, n));
    this.slabPos += n;
    return out;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private key(k: string): void {
    const enc = this.keyCache.get(k);
    if (enc) return this.copy(enc);
    const start = this.pos;
    this.str(k);
    if (this.keyCache.size < 1024) this.keyCache.set(k, this.stash(start));
  }

  /** Short runs are copied by hand: `set` costs more than the bytes it moves. */
  private copy(src: Uint8Array): void {
    const len = src.length;
    this.ensure(len);
    if (len > 24) this.buf.set(src, this.pos);
    else for (let i = 0; i < len; i++) this.buf[this.pos + i] = src[i]!;
    this.pos += len;
  }

  private value(v: unknown, depth: number): boolean {
    switch (typeof v) {
      case 'string':
        if (v.length >= 40) this.cachedStr(v);
        else this.str(v);
        return true;
      case 'number':
        this.num(v);
        return true;
      case 'boolean':
        this.ensure(1);
        this.buf[this.pos++] = v ? 0xc3 : 0xc2;
        return true;
      case 'object':
        if (v === null) {
          this.ensure(1);
          this.buf[this.pos++] = 0xc0;
          return true;
        }
        // Arrays nest two deep at most; the outer one hands its own arrays to `innerArray`.
        return Array.isArray(v) && depth === 0 && this.outerArray(v);
      default:
        return false;
    }
  }

  // Arrays in two methods (the outer one and its elements' arrays, e.g. book levels of
  // [price, size]): each element read then sees few array kinds and stays fast.
  private outerArray(v: unknown[]): boolean {
    const len = v.length;
    this.arrayHeader(len);
    for (let i = 0; i < len; i++) {
      const x: unknown = v[i];
      if (Array.isArray(x)) {
        if (!this.innerArray(x)) return false;
      } else if (!this.element(x, 1)) return false;
    }
    return true;
  }

  private innerArray(v: unknown[]): boolean {
    const len = v.length;
    this.arrayHeader(len);
    for (let i = 0; i < len; i++) {
      const x: unknown = v[i];
      // Numbers straight to `num`: through the generic call a double would be boxed first.
      if (typeof x === 'number') this.num(x);
      else if (!this.element(x, 2)) return false;
    }
    return true;
  }

  /** An array element: as `value`, except that @msgpack writes undefined inside arrays as nil. */
  private element(x: unknown, depth: number): boolean {
    if (x !== undefined) return this.value(x, depth);
    this.ensure(1);
    this.buf[this.pos++] = 0xc0;
    return true;
  }

  private cachedStr(v: string): void {
    const enc = this.valueCache.get(v);
    if (enc) return this.copy(enc);
    const start = this.pos;
    this.str(v);
    // Ids repeat, hashes never do: a string is kept only when seen again while on probation, so
    // a stream of unique hashes churns a small young set instead of filling the long-lived cache.
    if (!this.probation.has(v)) {
      if (this.probation.size >= 4096) this.probation.clear();
      this.probation.add(v);
      return;
    }
    this.probation.delete(v);
    if (this.valueCache.size >= 20_000) this.valueCache.clear();
    this.valueCache.set(v, this.stash(start));
  }

  /** A copy of the bytes written since `start`, in the cache's own slab (see `take`). */
  private stash(start: number): Uint8Array {
    const n = this.pos - start;
    if (n > CACHE_SLAB_BYTES / 4) return this.buf.slice(start, this.pos);
    if (this.cacheSlabPos + n > CACHE_SLAB_BYTES) {
      this.cacheSlab = new Uint8Array(CACHE_SLAB_BYTES);
      this.cacheSlabPos = 0;
    }
    const out = this.cacheSlab.subarray(this.cacheSlabPos, this.cacheSlabPos + n);
    out.set(this.buf.subarray(start, this.pos));
    this.cacheSlabPos += n;
    return out;
  }

  private arrayHeader(n: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x90 | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xdc;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdd;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  private num(v: number): void {
    this.ensure(9);
    this.numIn(v);
  }

  /** `num` once 9 bytes of room are made. */
  private numIn(v: number): void {
    if (!Number.isSafeInteger(v)) {
      this.buf[this.pos++] = 0xcb;
      this.view.setFloat64(this.pos, v);
      this.pos += 8;
      return;
    }
    if (v >= 0) {
      if (v < 0x80) this.buf[this.pos++] = v;
      else if (v < 0x100) {
        this.buf[this.pos++] = 0xcc;
        this.buf[this.pos++] = v;
      } else if (v < 0x10000) {
        this.buf[this.pos++] = 0xcd;
        this.view.setUint16(this.pos, v);
        this.pos += 2;
      } else if (v < 0x100000000) {
        this.buf[this.pos++] = 0xce;
        this.view.setUint32(this.pos, v);
        this.pos += 4;
      } else {
        this.buf[this.pos++] = 0xcf;
        this.view.setUint32(this.pos, Math.floor(v / 0x100000000));
        this.view.setUint32(this.pos + 4, v >>> 0);
        this.pos += 8;
      }
      return;
    }
    if (v >= -0x20) this.buf[this.pos++] = 0xe0 | (v + 0x20);
    else if (v >= -0x80) {
      this.buf[this.pos++] = 0xd0;
      this.view.setInt8(this.pos++, v);
    } else if (v >= -0x8000) {
      this.buf[this.pos++] = 0xd1;
      this.view.setInt16(this.pos, v);
      this.pos += 2;
    } else if (v >= -0x80000000) {
      this.buf[this.pos++] = 0xd2;
      this.view.setInt32(this.pos, v);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = 0xd3;
      this.view.setBigInt64(this.pos, BigInt(v));
      this.pos += 8;
    }
  }

  private str(s: string): void {
    const len = s.length;
    // ASCII is written directly; anything else takes Buffer's UTF-8 (lone surrogates become U+FFFD, as with TextEncoder).
    let ascii = true;
    for (let i = 0; i < len; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    const bytes = ascii ? len : Buffer.byteLength(s, 'utf8');
    this.ensure(bytes + 5);
    if (bytes < 32) this.buf[this.pos++] = 0xa0 | bytes;
    else if (bytes < 0x100) {
      this.buf[this.pos++] = 0xd9;
      this.buf[this.pos++] = bytes;
    } else if (bytes < 0x10000) {
      this.buf[this.pos++] = 0xda;
      this.view.setUint16(this.pos, bytes);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdb;
      this.view.setUint32(this.pos, bytes);
      this.pos += 4;
    }
    if (ascii) {
      for (let i = 0; i < len; i++) this.buf[this.pos + i] = s.charCodeAt(i);
    } else {
      Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength).write(s, this.pos, bytes, 'utf8');
    }
    this.pos += bytes;
  }
}
