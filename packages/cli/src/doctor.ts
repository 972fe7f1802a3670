import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { ConfigError, ensureDir } from '@polybot/core';
import { daemonRunning } from './pm2.js';
import { listProcesses, type ProcRow } from './start.js';
import { envFilePath, fetchHealth, REPO_ROOT, resolveStack, type Stack } from './stack.js';
import { out } from './ui.js';

type Verdict = 'ok' | 'warn' | 'fail';

// Linux limit of a unix socket path (sun_path is 108 bytes including the NUL).
const MAX_SOCKET_PATH = 107;
// Longest default endpoint name of packages/bus ENDPOINT_NAMES.
const LONGEST_ENDPOINT = 'analytics.rep';
const MIN_NODE = [20, 19] as const;

export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.POLYBOT_CHROMIUM_PATH ?? env.CHROME_PATH ?? '/usr/bin/chromium';
}

export async function doctorCommand(): Promise<boolean> {
  let failures = 0;
  const line = (v: Verdict, what: string, detail = '') => {
    if (v === 'fail') failures++;
    out(`${v === 'ok' ? 'ok  ' : v === 'warn' ? 'warn' : 'FAIL'}  ${what}${detail ? ` — ${detail}` : ''}`);
  };

  // Node
  const [maj = 0, min = 0] = process.versions.node.split('.').map(Number);
  const nodeOk = maj > MIN_NODE[0] || (maj === MIN_NODE[0] && min >= MIN_NODE[1]);
  line(nodeOk ? 'ok' : 'fail', `node ${process.versions.node}`, nodeOk ? '' : `need ${MIN_NODE.join('.')} or newer`);

  // Config
  let stack: Stack;
  try {
    stack = resolveStack();
    line('ok', 'configuration', `${existsSync(envFilePath()) ? envFilePath() : 'no .env'}; data dir ${stack.paths.root}`);
  } catch (err) {
    line('fail', 'configuration', err instanceof ConfigError ? err.problems.join('; ') : (err as Error).message);
    return false;
  }
  const envFile = envFilePath();
  if (existsSync(envFile) && (statSync(envFile).mode & 0o077) !== 0) {
    line('warn', `${envFile} is readable by other users`, 'it may hold secrets: chmod 600 .env');
  }

  // Builds
  const builds = [
    ...stack.apps.map((a) => a.script),
    join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js'),
    join(REPO_ROOT, 'frontend', 'dist', 'index.html'),
  ];
  const missing = [...new Set(builds)].filter((f) => !existsSync(f));
  line(
    missing.length === 0 ? 'ok' : 'fail',
    'builds present',
    missing.length === 0 ? '' : `missing ${missing.map((f) => relative(REPO_ROOT, f)).join(', ')}; run \`pnpm build\``,
  );

  // Data dir
  try {
    ensureDir(stack.paths.root);
    const probe = join(stack.paths.root, `.doctor-${process.pid}`);
    writeFileSync(probe, 'x');
    rmSync(probe);
    accessSync(stack.paths.root, constants.W_OK);
    line('ok', `data dir writable (${stack.paths.root})`);
  } catch (err) {
    line('fail', `data dir ${stack.paths.root} not writable`, (err as Error).message);
  }

  // Socket paths: ZeroMQ ipc endpoints and pm2's own rpc/pub sockets.
  const sockets = [join(stack.paths.ipc, LONGEST_ENDPOINT), join(stack.paths.pm2Home, 'rpc.sock')];
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('POLYBOT_ENDPOINT_') && v?.startsWith('ipc://')) sockets.push(v.slice('ipc://'.length));
  }
  const longest = sockets.reduce((a, b) => (Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a));
  const len = Buffer.byteLength(longest);
  line(
    len <= MAX_SOCKET_PATH ? 'ok' : 'fail',
    `ipc path length ${len} bytes (limit ${MAX_SOCKET_PATH})`,
    len <= MAX_SOCKET_PATH ? '' : `${longest} is too long; use a shorter POLYBOT_DATA_DIR`,
  );

  // Ports
  const running = daemonRunning(stack.paths.pm2Home);
  const procs: ProcRow[] = running ? await listProcesses(stack).catch(() => []) : [];
  const ports: Array<[string, string, number]> = [
    ['POLYBOT_API_PORT', 'api', stack.config.POLYBOT_API_PORT],
    ['POLYBOT_SIM_PORT', 'sim', stack.config.POLYBOT_SIM_PORT],
  ];
  for (const [varName, owner, port] of ports) {
    if (await portFree(port)) {
      line('ok', `port ${port} (${varName}) free`);
      continue;
    }
    const ours = procs.find((p) => p.name === owner && p.status === 'online');
    const apiAnswers = owner === 'api' ? (await fetchHealth(stack.apiUrl)) !== undefined : true;
    if (ours && apiAnswers) line('ok', `port ${port} (${varName}) used by this stack (${owner}, pid ${ours.pid})`);
    else line('fail', `port ${port} (${varName}) is used by another program`, `stop it or set ${varName}`);
  }
  line('ok', `pm2 daemon for this data dir: ${running ? `running, ${procs.length} processes` : 'not running'}`);

  // Chromium (browser tests drive the system's Chromium through playwright-core)
  const chrome = chromiumPath();
  if (!existsSync(chrome)) {
    line('fail', `chromium at ${chrome}`, 'missing; install with `apt-get install chromium` (or set POLYBOT_CHROMIUM_PATH)');
  } else {
    const v = spawnSync(chrome, ['--version'], { encoding: 'utf8', timeout: 20_000 });
    const version = v.stdout?.trim();
    line(v.status === 0 && version ? 'ok' : 'fail', `chromium at ${chrome}`, version || `does not run: ${v.error?.message ?? v.stderr?.trim() ?? 'no output'}`);
  }

  out(failures === 0 ? '\nall checks passed' : `\n${failures} check${failures === 1 ? '' : 's'} failed`);
  return failures === 0;
}
