import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FRONTEND_DIR = fileURLToPath(new URL('../../frontend/', import.meta.url));
export const DIST_DIR = join(FRONTEND_DIR, 'dist');

function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const e of readdirSync(path)) max = Math.max(max, newest(join(path, e)));
  return max;
}

/** Builds the dashboard when dist is missing or older than its sources, so the test never checks a stale bundle. */
export function ensureDashboardBuilt(): void {
  const index = join(DIST_DIR, 'index.html');
  const built = existsSync(index) ? statSync(index).mtimeMs : 0;
  const inputs = ['src', 'index.html', 'vite.config.ts'].map((p) => join(FRONTEND_DIR, p));
  if (built > 0 && inputs.every((p) => newest(p) <= built)) return;
  const viteBin = join(FRONTEND_DIR, 'node_modules', 'vite', 'bin', 'vite.js');
  const res = spawnSync(process.execPath, [viteBin, 'build'], { cwd: FRONTEND_DIR, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`vite build failed (exit ${res.status}):\n${res.stdout}\n${res.stderr}`);
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** Serves `/ui/<file>` from dist the way the API does: unknown paths fall back to index.html (SPA). */
export function serveUi(urlPath: string, res: ServerResponse): void {
  const rel = decodeURIComponent(urlPath.replace(/^\/ui\/?/, ''));
  const root = resolve(DIST_DIR);
  let file = resolve(root, normalize(rel || 'index.html'));
  if (!file.startsWith(root + sep) && file !== root) {
    res.writeHead(403).end();
    return;
  }
  if (!existsSync(file) || statSync(file).isDirectory()) file = join(root, 'index.html');
  res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
  res.end(readFileSync(file));
}
