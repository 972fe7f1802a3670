import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep, tempDataDir, waitFor } from '@polybot/testkit';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export const SERVICES = [
  { name: 'sim', entry: 'services/sim/dist/main.js' },
  { name: 'bus', entry: 'services/bus/dist/main.js' },
  { name: 'analytics', entry: 'services/analytics/dist/main.js' },
  { name: 'executor', entry: 'services/executor/dist/main.js' },
  { name: 'scanner', entry: 'services/scanner/dist/main.js' },
  { name: 'strategy:threshold', entry: 'services/strategy/dist/main.js', env: { POLYBOT_STRATEGY: 'threshold' } },
  { name: 'api', entry: 'services/api/dist/main.js' },
] as const;

export interface Stack {
  dataDir: string;
  apiPort: number;
  simPort: number;
  api: string;
  procs: Map<string, ChildProcess>;
  exits: Map<string, number | null>;
  log(name: string): string;
  /** SIGTERM every process (reverse start order), SIGKILL what is left after 20 s. */
  stop(): Promise<void>;
  /** Removes the data dir. */
  dispose(): void;
}

/** Starts every service as its own process, the way pm2 would, on a private data dir and ports. */
export async function startStack(extraEnv: Record<string, string> = {}): Promise<Stack> {
  const tmp = tempDataDir('pbe2e');
  const apiPort = await freePort();
  const simPort = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    POLYBOT_DATA_DIR: tmp.dir,
    POLYBOT_API_PORT: String(apiPort),
    POLYBOT_SIM_PORT: String(simPort),
    POLYBOT_STATUS_INTERVAL_MS: '500',
    POLYBOT_ENV_FILE: join(tmp.dir, 'no.env'),
    ...extraEnv,
  };
  const procs = new Map<string, ChildProcess>();
  const exits = new Map<string, number | null>();
  for (const svc of SERVICES) {
    const out = createWriteStream(join(tmp.dir, `${svc.name.replace(':', '_')}.log`));
    const child = spawn(process.execPath, [join(REPO, svc.entry)], {
      cwd: REPO,
      env: { ...env, ...('env' in svc ? svc.env : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    child.on('exit', (code) => exits.set(svc.name, code));
    procs.set(svc.name, child);
  }
  const stack: Stack = {
    dataDir: tmp.dir,
    apiPort,
    simPort,
    api: `http://127.0.0.1:${apiPort}`,
    procs,
    exits,
    log: (name) => {
      try {
        return readFileSync(join(tmp.dir, `${name.replace(':', '_')}.log`), 'utf8');
      } catch {
        return '';
      }
    },
    async stop() {
      // Reverse order: intake first (api, strategies), the venue last.
      for (const svc of [...SERVICES].reverse()) {
        const p = procs.get(svc.name);
        if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      }
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && [...procs.values()].some((p) => p.exitCode === null && p.signalCode === null)) await sleep(100);
      for (const p of procs.values()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await sleep(100);
    },
    dispose: () => tmp.cleanup(),
  };
  return stack;
}

export async function getJson<T = unknown>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url} → ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export async function waitHealthy(stack: Stack, timeoutMs = 90_000): Promise<unknown> {
  return waitFor(
    async () => {
      for (const [name, code] of stack.exits) if (code !== null && code !== 0) throw new Error(`${name} exited with ${code}:\n${stack.log(name).slice(-3000)}`);
      const h = await getJson<{ status: string }>(`${stack.api}/api/health`).catch(() => null);
      return h?.status === 'ok' ? h : null;
    },
    { timeoutMs, intervalMs: 500, what: '/api/health to be ok' },
  );
}
