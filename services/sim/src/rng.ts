/**
 * Seeded PRNG (sfc32, seeded through splitmix32) so that every market, id and maker decision of
 * the simulator follows from POLYBOT_SIM_SEED alone. Math.random is never used by the exchange.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const split = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** The generator's internal state (four uint32), for snapshots. */
  getState(): [number, number, number, number] {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  /** Continues from a state `getState` returned: the same numbers follow as from the original. */
  setState(state: readonly number[]): this {
    if (state.length !== 4 || !state.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) {
      throw new RangeError('rng state must be four uint32 values');
    }
    [this.a, this.b, this.c, this.d] = state as [number, number, number, number];
    return this;
  }

  /** Next unsigned 32-bit integer. */
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1) — for decisions and probabilities, never for money. */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const v = items[this.int(0, items.length - 1)];
    if (v === undefined) throw new RangeError('pick from an empty list');
    return v;
  }

  /** `n` random bytes as lower-case hex. */
  hex(bytes: number): string {
    let out = '';
    for (let i = 0; i < bytes; i += 4) out += this.u32().toString(16).padStart(8, '0');
    return out.slice(0, bytes * 2);
  }

  /** A uniformly random 256-bit unsigned integer. */
  u256(): bigint {
    return BigInt(`0x${this.hex(32)}`);
  }

  /** Deterministic Fisher-Yates shuffle (in place). */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }
}
