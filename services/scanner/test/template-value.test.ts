import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { strictSame as same, tempDataDir } from '@polybot/testkit';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecordingRecord } from '../src/pipeline/types.js';
import { RecordingReader, splitFrame, syntheticRecording, writeRecording } from '../src/recording/index.js';
import { plainText, templateBuilder } from '../src/recording/template-value.js';

const SAMPLES = fileURLToPath(new URL('../../../../shared/polymarket/samples/', import.meta.url));

type Outcome = 'built' | 'declined' | 'no-template';

/** Builds `text`'s value from its template; it must equal JSON.parse, or the builder must decline. */
function check(text: string): Outcome {
  const values: string[] = [];
  const skel = splitFrame(text, values);
  if (skel === null) return 'no-template';
  const build = templateBuilder(skel, values.length);
  if (build === null) return 'no-template';
  let got: unknown;
  try {
    got = build.checked(values);
  } catch {
    return 'declined';
  }
  // Values a column would call plain take the unchecked path, which must build the same.
  if (values.every(plainText) && !same(build.plain(values), got)) throw new Error(`plain build differs for ${JSON.stringify(text)}`);
  let want: unknown;
  try {
    want = JSON.parse(text);
  } catch {
    throw new Error(`built a value for text JSON.parse refuses: ${JSON.stringify(text)}`);
  }
  if (!same(got, want)) throw new Error(`built value differs from JSON.parse for ${JSON.stringify(text)}`);
  return 'built';
}

function sampleFrames(): string[] {
  const out = readFileSync(join(SAMPLES, 'ws_market_messages.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  for (const f of readdirSync(join(SAMPLES, 'ws_market'))) {
    if (f.endsWith('.json')) out.push(JSON.stringify(JSON.parse(readFileSync(join(SAMPLES, 'ws_market', f), 'utf8'))));
  }
  return out;
}

describe('template values (replay without JSON.parse)', () => {
  let tmp: { dir: string; cleanup: () => void };
  beforeEach(() => {
    tmp = tempDataDir('tplv');
  });
  afterEach(() => tmp.cleanup());

  it('builds exactly what JSON.parse gives for every recorded market sample and generated frame', () => {
    const frames = sampleFrames();
    for (const r of syntheticRecording({ events: 3000, ratePerSec: 1000 })) if (r.kind === 'raw') frames.push(r.data);
    let built = 0;
    for (const text of frames) if (check(text) === 'built') built++;
    // Every JSON frame is read this way; only non-JSON text (PONG) and skeletons over 64 KB (the
    // opening snapshot of all books at once) go the text way.
    expect(built).toBe(frames.filter((t) => (t.startsWith('{') || t.startsWith('[')) && t.length < 64 * 1024).length);
  });

  it('builds exactly what JSON.parse gives for arbitrary JSON, compact or indented (property)', () => {
    let built = 0;
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 1, '\t'), (v, indent) => {
        if (check(JSON.stringify(v, null, indent)) === 'built') built++;
      }),
      { numRuns: 3000 },
    );
    // Bare scalars have no structure to build, and a string with a NUL cannot be split.
    expect(built).toBeGreaterThan(1500);
  });

  it('declines any value that would not read as one plain token in the text, so the text decides (property)', () => {
    const skel = '{"s":"\x00","n":[\x00],"t":"x"}'.replace('"x"', '""');
    const build = templateBuilder(skel, 2)!;
    expect(build).not.toBeNull();
    const parts = skel.split('\x00');
    const chars = fc.constantFrom('a', '"', '\\', 'n', 'u', '0', '1', 'e', 'E', '.', '-', '+', '\x01', '\u2028', '\ud800', ',', ']', '}', ':');
    const piece = fc.array(chars, { maxLength: 8 }).map((a) => a.join(''));
    let declined = 0;
    fc.assert(
      fc.property(piece, piece, (s, n) => {
        const text = parts[0] + s + parts[1] + n + parts[2];
        let got: unknown;
        try {
          got = build.checked([s, n]);
        } catch {
          declined++;
          return;
        }
        expect(same(got, JSON.parse(text))).toBe(true);
      }),
      { numRuns: 5000 },
    );
    expect(declined).toBeGreaterThan(0);
  });

  it('makes no builder for skeletons it does not fully understand', () => {
    expect(templateBuilder('PONG', 0)).toBeNull();
    expect(templateBuilder('{"__proto__":"\x00"}', 1)).toBeNull();
    expect(templateBuilder('{"\x00":1}', 1)).toBeNull();
    expect(templateBuilder('{"a":"b\x00"}', 1)).toBeNull();
    expect(templateBuilder('{"a":\x00}', 2)).toBeNull();
    expect(templateBuilder('{"a":\x00,}', 1)).toBeNull();
    expect(templateBuilder('{"a":\x00} x', 1)).toBeNull();
    expect(templateBuilder('{"a":"\\q","b":\x00}', 1)).toBeNull();
  });

  it('reads a recording the same with and without built values', async () => {
    const recs: RecordingRecord[] = syntheticRecording({ events: 2000, ratePerSec: 1000 });
    const odd = ['{"a":"x\\u0041","b":1e2}', '[{"event_type":"book","n":-0}]', 'PONG', '{"a":"\\""}', '{"s":"é\ud800"}'];
    odd.forEach((data, i) => recs.push({ kind: 'raw', source: 'market', conn: 0, recvTs: 1_767_225_700_000 + i, data }));
    const dir = join(tmp.dir, 'rec');
    await writeRecording(dir, recs);
    const reader = await RecordingReader.open(dir);
    const plain = [...reader.records()];
    const parsed = [...reader.records({ parsed: true })];
    expect(parsed.length).toBe(plain.length);
    let withValue = 0;
    for (let i = 0; i < plain.length; i++) {
      const a = plain[i]!;
      const b = parsed[i]!;
      expect(b.kind).toBe(a.kind);
      expect(b.recvTs).toBe(a.recvTs);
      if (a.kind !== 'raw' || b.kind !== 'raw') continue;
      if (b.parsed !== undefined) {
        withValue++;
        expect(same(b.parsed, JSON.parse(a.data))).toBe(true);
      }
      // The text is still there for whoever reads it (made on demand).
      expect(b.data).toBe(a.data);
    }
    expect(withValue).toBeGreaterThan(plain.filter((r) => r.kind === 'raw').length / 2);
  });
});
