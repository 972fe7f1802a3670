/**
 * Replay without text: a template frame's JSON value built straight from its skeleton and column
 * values, skipping the rebuilt text and JSON.parse (together about a third of a replayed frame's
 * cost). The result is what JSON.parse would give for the rebuilt text, or nothing: a builder is
 * made only for skeletons it fully understands (JSON with whole-string and number holes, no
 * `__proto__` key), and it throws for any value that would not be read as one token in the text
 * (an unescaped quote or a control character in a string, an escape JSON rejects, a malformed
 * number). The caller then rebuilds the text and parses it, so odd frames fail or succeed exactly
 * as before.
 */

export interface TemplateBuilder {
  /** For any values: throws for one that would not read as one JSON token in the text. */
  checked: (values: readonly string[]) => unknown;
  /**
   * For values known to hold no quote, backslash or control character (the caller's columns say
   * so): string holes take them as they are.
   */
  plain: (values: readonly string[]) => unknown;
}

const HOLE = 0;
const MAX_SKELETON = 64 * 1024;
const CACHE_MAX = 512;
const cache = new Map<string, TemplateBuilder | null>();

/** A JSON number token exactly (what JSON.parse reads with the same rounding as Number()). */
const NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

class NotPlain extends Error {}
const NOT_PLAIN = new NotPlain('value is not a plain JSON token');

/** A string hole's value as JSON.parse reads `"value"` inside the frame. */
function str(v: string): string {
  if (plainText(v)) return v;
  // Escapes, quotes, control characters: JSON.parse of the one token decides. It parses only if the
  // value is exactly one string's content (an unescaped quote would leave text after it), and then
  // the frame's text holds the same token.
  try {
    return JSON.parse(`"${v}"`) as string;
  } catch {
    throw NOT_PLAIN;
  }
}

function num(v: string): number {
  if (!NUMBER_RE.test(v)) throw NOT_PLAIN;
  return Number(v);
}

/** Parses a skeleton into the source of one JS expression over `v` (the values), or null. */
class SkeletonParser {
  private i = 0;
  holes = 0;

  constructor(
    private readonly s: string,
    private readonly plainStrings: boolean,
  ) {}

  parse(): string | null {
    const e = this.value();
    if (e === null) return null;
    this.ws();
    return this.i === this.s.length ? e : null;
  }

  private ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i++;
      else break;
    }
  }

  /** A literal string token (no hole) at `i`, decoded, or null. */
  private literal(): string | null {
    const s = this.s;
    const start = this.i;
    let j = start + 1;
    for (;;) {
      if (j >= s.length) return null;
      const c = s.charCodeAt(j);
      if (c === 0x22) break;
      if (c === HOLE) return null;
      j += c === 0x5c ? 2 : 1;
    }
    this.i = j + 1;
    try {
      const v: unknown = JSON.parse(s.slice(start, j + 1));
      return typeof v === 'string' ? v : null;
    } catch {
      return null;
    }
  }

  private value(): string | null {
    this.ws();
    const s = this.s;
    if (this.i >= s.length) return null;
    const c = s.charCodeAt(this.i);
    if (c === HOLE) {
      this.i++;
      return `N(v[${this.holes++}])`;
    }
    if (c === 0x22) {
      if (s.charCodeAt(this.i + 1) === HOLE && s.charCodeAt(this.i + 2) === 0x22) {
        this.i += 3;
        return this.plainStrings ? `v[${this.holes++}]` : `S(v[${this.holes++}])`;
      }
      const lit = this.literal();
      return lit === null ? null : JSON.stringify(lit);
    }
    if (c === 0x7b) return this.object();
    if (c === 0x5b) return this.array();
    for (const word of ['true', 'false', 'null']) {
      if (s.startsWith(word, this.i)) {
        this.i += word.length;
        return word;
      }
    }
    // Bare numbers never stay in a skeleton (they become holes): anything else is not understood.
    return null;
  }

  private object(): string | null {
    const s = this.s;
    this.i++;
    this.ws();
    if (s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return '{}';
    }
    const members: string[] = [];
    for (;;) {
      this.ws();
      if (s.charCodeAt(this.i) !== 0x22) return null;
      const key = this.literal();
      // A `__proto__` literal key would set the prototype where JSON.parse makes a property.
      if (key === null || key === '__proto__') return null;
      this.ws();
      if (s.charCodeAt(this.i) !== 0x3a) return null;
      this.i++;
      const v = this.value();
      if (v === null) return null;
      members.push(`${JSON.stringify(key)}: ${v}`);
      this.ws();
      const c = s.charCodeAt(this.i++);
      if (c === 0x7d) return `{ ${members.join(', ')} }`;
      if (c !== 0x2c) return null;
    }
  }

  private array(): string | null {
    const s = this.s;
    this.i++;
    this.ws();
    if (s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return '[]';
    }
    const items: string[] = [];
    for (;;) {
      const v = this.value();
      if (v === null) return null;
      items.push(v);
      this.ws();
      const c = s.charCodeAt(this.i++);
      if (c === 0x5d) return `[${items.join(', ')}]`;
      if (c !== 0x2c) return null;
    }
  }
}

function compile(skeleton: string, holes: number, plainStrings: boolean): ((values: readonly string[]) => unknown) | null {
  const p = new SkeletonParser(skeleton, plainStrings);
  const expr = p.parse();
  if (expr === null || p.holes !== holes) return null;
  // Keys are JSON-quoted (JS string literals whatever they hold) and values come in `v`, so the
  // generated code is one literal whatever the recording holds.
  const make = new Function('S', 'N', `return function (v) { return ${expr}; };`) as (s: typeof str, n: typeof num) => (values: readonly string[]) => unknown;
  return make(str, num);
}

/** Whether `v` can stand in a JSON string as it is (no quote, backslash or control character). */
export function plainText(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x22 || c === 0x5c || c < 0x20) return false;
  }
  return true;
}

/**
 * The builder for `skeleton` with `holes` values, or null when it must go the text way. Builders
 * are kept across blocks (a recording has a handful of skeletons).
 */
export function templateBuilder(skeleton: string, holes: number): TemplateBuilder | null {
  const known = cache.get(skeleton);
  if (known !== undefined) return known;
  let built: TemplateBuilder | null = null;
  if (skeleton.length <= MAX_SKELETON) {
    const checked = compile(skeleton, holes, false);
    const plain = checked && compile(skeleton, holes, true);
    if (checked && plain) built = { checked, plain };
  }
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(skeleton, built);
  return built;
}
