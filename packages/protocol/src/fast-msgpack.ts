/**
 * A msgpack writer for the bus's flat maps (strings, numbers, booleans, null, arrays of those and
 * arrays of such arrays), byte-for-byte what @msgpack/msgpack writes for them with
 * `ignoreUndefined`, at a fraction of the cost: market data publishes tens of thousands of maps a
 * second. Anything else (nested maps, binary, bigint) returns undefined and the caller falls back
 * to the general encoder.
 */
const EMPTY: readonly string[] = [];

export class FlatEncoder {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  private readonly keyCache = new Map<string, Uint8Array>();
  /** Long string values repeat message after message (token and condition ids): keep their bytes. */
  private readonly valueCache = new Map<string, Uint8Array>();

  /** Encodes `a`'s entries then `b`'s (the envelope) as one map; undefined if a value is unsupported. */
  encode(a: Record<string, unknown>, b?: Record<string, unknown>): Uint8Array | undefined {
    this.pos = 0;
    const ka = Object.keys(a);
    const kb = b ? Object.keys(b) : EMPTY;
    let n = 0;
    for (const k of ka) if (a[k] !== undefined) n++;
    for (const k of kb) if (b![k] !== undefined && a[k] === undefined) n++;
    this.mapHeader(n);
    for (const k of ka) {
      const v = a[k];
      if (v === undefined) continue;
      this.key(k);
      if (!this.value(v, 0)) return undefined;
    }
    for (const k of kb) {
      const v = b![k];
      if (v === undefined || a[k] !== undefined) continue;
      this.key(k);
      if (!this.value(v, 0)) return undefined;
    }
    return this.buf.slice(0, this.pos);
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
    let enc = this.keyCache.get(k);
    if (!enc) {
      const start = this.pos;
      this.str(k);
      enc = this.buf.slice(start, this.pos);
      this.pos = start;
      if (this.keyCache.size < 1024) this.keyCache.set(k, enc);
    }
    this.ensure(enc.length);
    this.buf.set(enc, this.pos);
    this.pos += enc.length;
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
        if (Array.isArray(v) && depth < 2) {
          this.arrayHeader(v.length);
          for (const x of v) {
            // @msgpack writes undefined inside arrays as nil.
            if (x === undefined) {
              this.ensure(1);
              this.buf[this.pos++] = 0xc0;
            } else if (!this.value(x, depth + 1)) return false;
          }
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  private cachedStr(v: string): void {
    let enc = this.valueCache.get(v);
    if (!enc) {
      const start = this.pos;
      this.str(v);
      enc = this.buf.slice(start, this.pos);
      this.pos = start;
      if (this.valueCache.size >= 20_000) this.valueCache.clear();
      this.valueCache.set(v, enc);
    }
    this.ensure(enc.length);
    this.buf.set(enc, this.pos);
    this.pos += enc.length;
  }

  private mapHeader(n: number): void {
    this.ensure(5);
    if (n < 16) this.buf[this.pos++] = 0x80 | n;
    else if (n < 0x10000) {
      this.buf[this.pos++] = 0xde;
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = 0xdf;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
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
