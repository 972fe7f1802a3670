#!/usr/bin/env node
// Builds what is out of date before start/test/bench: the TypeScript project references (tsc -b is
// incremental, so this is quick when nothing changed) and the dashboard bundle (only when a source
// file is newer than frontend/dist/index.html, because vite always rebuilds from scratch).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

function run(what, cmd, args, cwd) {
  const t0 = Date.now();
  console.log(`[build] ${what} ...`);
  const res = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (res.error) {
    console.error(`[build] ${what} could not run: ${res.error.message}`);
    process.exit(1);
  }
  if (res.status !== 0) {
    console.error(`[build] ${what} failed (exit ${res.status ?? res.signal}); fix the errors above and retry.`);
    process.exit(res.status || 1);
  }
  console.log(`[build] ${what} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** Newest modification time under `path` (a file or a directory tree). */
function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const e of readdirSync(path)) max = Math.max(max, newest(join(path, e)));
  return max;
}

// 1. TypeScript: every package and service, in reference order.
run('tsc -b (TypeScript packages and services)', process.execPath, [require.resolve('typescript/bin/tsc'), '-b'], root);

// 2. Dashboard.
const fe = join(root, 'frontend');
if (!existsSync(join(fe, 'package.json'))) {
  console.log('[build] no frontend/ package; skipping the dashboard build');
} else {
  const out = join(fe, 'dist', 'index.html');
  const built = existsSync(out) ? statSync(out).mtimeMs : 0;
  const inputs = ['src', 'index.html', 'vite.config.ts', 'public'].map((p) => join(fe, p));
  const changed = inputs.filter((p) => newest(p) > built);
  if (built && changed.length === 0) {
    console.log('[build] dashboard is up to date (frontend/dist)');
  } else {
    const why = built ? `changed: ${changed.map((p) => p.slice(fe.length + 1)).join(', ')}` : 'frontend/dist/index.html missing';
    const vite = join(fe, 'node_modules', 'vite', 'bin', 'vite.js');
    if (!existsSync(vite)) {
      console.error('[build] frontend/node_modules/vite is missing; run `pnpm install` first.');
      process.exit(1);
    }
    run(`vite build of the dashboard (${why})`, process.execPath, [vite, 'build'], fe);
  }
}
