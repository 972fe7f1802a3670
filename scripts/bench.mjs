#!/usr/bin/env node
// `pnpm bench` runs every benchmark found in packages/*/bench and services/*/bench;
// `pnpm bench:<name>` (node scripts/bench.mjs <name>) runs the one called <name>.
// A benchmark is a plain ESM/JS file (<name>.mjs or <name>.js) that prints its results in words and,
// as its last line, one JSON object; this runner collects those lines into a summary.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const EXTS = new Set(['.mjs', '.js']);

function findBenchmarks() {
  const found = [];
  for (const group of ['packages', 'services']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const pkg of readdirSync(base).sort()) {
      const dir = join(base, pkg, 'bench');
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).sort()) {
        if (EXTS.has(extname(f)) && !f.startsWith('_')) found.push({ name: basename(f, extname(f)), file: join(dir, f), pkg: join(base, pkg) });
      }
    }
  }
  return found;
}

const all = findBenchmarks();
const wanted = process.argv.slice(2);
const chosen = wanted.length === 0 ? all : all.filter((b) => wanted.includes(b.name));
const unknown = wanted.filter((w) => !all.some((b) => b.name === w));
if (unknown.length > 0) {
  console.error(`no benchmark called ${unknown.join(', ')}; found: ${all.map((b) => b.name).join(', ') || 'none'}`);
  process.exit(1);
}
if (chosen.length === 0) {
  console.log('no benchmarks found (packages/*/bench, services/*/bench)');
  process.exit(0);
}

const summary = [];
let failed = 0;
for (const b of chosen) {
  console.log(`\n=== bench ${b.name} (${relative(root, b.file)}) ===`);
  const t0 = Date.now();
  // cwd = the package, so the benchmark resolves its own workspace dependencies.
  const res = spawnSync(process.execPath, [b.file], { cwd: b.pkg, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(res.stdout ?? '');
  const last = (res.stdout ?? '').trim().split('\n').pop() ?? '';
  let json;
  try {
    json = JSON.parse(last);
  } catch {
    json = undefined;
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (res.status !== 0 || !json) {
    failed++;
    console.error(`bench ${b.name} failed after ${secs} s (exit ${res.status ?? res.signal}${json ? '' : ', no JSON result line'})`);
  } else {
    // stderr: stdout's last line stays the benchmark's JSON result.
    console.error(`(bench ${b.name} took ${secs} s)`);
    summary.push(json);
  }
}
if (chosen.length > 1) {
  console.log('\n=== summary ===');
  for (const s of summary) console.log(JSON.stringify(s));
}
process.exit(failed > 0 ? 1 : 0);
