// The `polybot` command against a private stack: its own data dir (so its own pm2 home) and ports,
// so it runs beside a developer's `pnpm start` and beside other tests.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, tempDataDir } from '@polybot/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const CLI = join(REPO, 'packages', 'cli', 'dist', 'main.js');
const FAKE_SECRET = 'cli-test-secret-value-0451';
const APP_NAMES = ['sim', 'bus', 'scanner', 'strategy:threshold', 'executor', 'analytics', 'api'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir = '';
let cleanup = () => {};
let env: Record<string, string> = {};
let apiPort = 0;
const seenPids = new Set<number>();

function cli(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [CLI, ...args], { cwd: REPO, env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function daemonPid(): number | undefined {
  const f = join(dir, 'pm2', 'pm2.pid');
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  return pid > 0 ? pid : undefined;
}

interface StatusJson {
  daemon: boolean;
  processes: Array<{ name: string; status: string; pid: number }>;
  health: HealthJson | null;
}

async function statusJson(): Promise<StatusJson> {
  const r = await cli(['status', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as StatusJson;
  for (const p of s.processes) if (p.pid > 0) seenPids.add(p.pid);
  const d = daemonPid();
  if (d) seenPids.add(d);
  return s;
}

interface HealthJson {
  status: string;
  services?: Record<string, { state: string; message?: string }>;
}

/**
 * `start` saw ok before printing; on a loaded machine a service can report itself degraded for a moment
 * afterwards (a quiet market channel looks stale, a strategy waits on the executor), so give it time to
 * come back before judging.
 */
async function settledHealth(read: () => Promise<HealthJson>, ms = 30_000): Promise<HealthJson> {
  const deadline = Date.now() + ms;
  for (;;) {
    const h = await read();
    if (h.status === 'ok' || Date.now() >= deadline) return h;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function notRunning(h: HealthJson): string {
  return JSON.stringify(Object.entries(h.services ?? {}).filter(([, s]) => s.state !== 'running'));
}

async function waitDead(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(alive);
}

beforeAll(async () => {
  // Short prefix: ipc and pm2 socket paths must stay under 107 bytes.
  ({ dir, cleanup } = tempDataDir('pbc'));
  apiPort = await freePort();
  const simPort = await freePort();
  env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    POLYBOT_DATA_DIR: dir,
    POLYBOT_API_PORT: String(apiPort),
    POLYBOT_SIM_PORT: String(simPort),
    POLYBOT_STATUS_INTERVAL_MS: '500',
    // Keep the developer's .env out of the test.
    POLYBOT_ENV_FILE: join(dir, 'no.env'),
    // A secret-looking variable in the caller's shell must not reach pm2 or the services.
    POLYMARKET_FAKE_SECRET: FAKE_SECRET,
  };
});

afterAll(async () => {
  if (!dir) return;
  await cli(['stop'], 90_000).catch(() => undefined);
  const d = daemonPid();
  if (d) seenPids.add(d);
  for (const pid of seenPids) {
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  cleanup();
}, 120_000);

describe('polybot cli under pm2', () => {
  it('doctor checks node, data dir and socket paths', async () => {
    const r = await cli(['doctor']);
    expect(r.stdout).toMatch(/^ok\s+node \d+\.\d+\.\d+/m);
    expect(r.stdout).toMatch(/^ok\s+data dir writable/m);
    expect(r.stdout).toMatch(/^ok\s+ipc path length \d+ bytes/m);
    expect(r.stdout).toMatch(new RegExp(`^ok\\s+port ${apiPort} \\(POLYBOT_API_PORT\\) free`, 'm'));
    expect(r.stdout).toMatch(/^(ok|FAIL)\s+chromium/m);
    // Exit code says whether everything (builds, chromium) is in place.
    expect(r.code === 0).toBe(!/^FAIL/m.test(r.stdout));
  });

  it('status and stop report a stack that is not running without starting a pm2 daemon', async () => {
    const s = await cli(['status']);
    expect(s.code).toBe(0);
    expect(s.stdout).toContain('not running');
    const t = await cli(['stop']);
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('not running');
    expect(daemonPid()).toBeUndefined();
  });

  it('rejects a bad configuration value by name', async () => {
    const saved = env;
    env = { ...env, POLYBOT_API_PORT: 'eighty' };
    try {
      const r = await cli(['status']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('POLYBOT_API_PORT');
    } finally {
      env = saved;
    }
  });

  it('start brings the whole stack up healthy and prints the dashboard URL', async () => {
    const r = await cli(['start', '--timeout', '120'], 180_000);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`http://localhost:${apiPort}/ui`);
    expect(r.stdout).toContain('POLYMARKET_FAKE_SECRET'); // named in the "not handing ... to pm2" note
    const health = await settledHealth(async () => (await (await fetch(`http://127.0.0.1:${apiPort}/api/health`)).json()) as HealthJson);
    expect(health.status, notRunning(health)).toBe('ok');
    expect(existsSync(join(dir, 'pm2', 'pm2.pid'))).toBe(true);
  }, 200_000);

  it('status lists every process online with the health answer', async () => {
    let s: StatusJson | undefined;
    const health = await settledHealth(async () => {
      s = await statusJson();
      return s.health ?? { status: 'unknown' };
    });
    expect(s?.daemon).toBe(true);
    expect(s?.processes.map((p) => p.name).sort()).toEqual([...APP_NAMES].sort());
    for (const p of s?.processes ?? []) expect(p.status, p.name).toBe('online');
    expect(health.status, notRunning(health)).toBe('ok');
    const table = await cli(['status']);
    expect(table.stdout).toMatch(/name\s+status\s+pid\s+restarts\s+uptime\s+memory/);
    for (const n of APP_NAMES) expect(table.stdout).toContain(n);
  });

  it('keeps secrets out of pm2 and the services', async () => {
    if (!existsSync('/proc/self/environ')) return;
    const pids = [...seenPids];
    expect(pids.length).toBeGreaterThan(1);
    for (const pid of pids) {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      expect(environ, `pid ${pid}`).not.toContain(FAKE_SECRET);
      expect(environ, `pid ${pid}`).toContain(`POLYBOT_DATA_DIR=${dir}`);
    }
    expect(existsSync(join(dir, 'pm2', 'dump.pm2'))).toBe(false);
  });

  it('start again is a no-op while everything runs', async () => {
    const r = await cli(['start', '--timeout', '60'], 120_000);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout.match(/already running/g)?.length).toBe(APP_NAMES.length);
  }, 150_000);

  it('logs prints the tail of a process log', async () => {
    const r = await cli(['logs', 'bus', '--lines', '3']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(join(dir, 'logs', 'bus.log'));
    const lines = r.stdout.trim().split('\n').slice(1);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(3);
    const bad = await cli(['logs', 'nosuch']);
    expect(bad.code).toBe(1);
  });

  it('records and replays market data, and controls trading, against the running stack', async () => {
    const start = await cli(['record', 'start', '--name', 'cli-rec', '--json']);
    expect(start.code, start.stderr).toBe(0);
    expect(JSON.parse(start.stdout)).toMatchObject({ recording: true, name: 'cli-rec' });
    await new Promise((r) => setTimeout(r, 1500));
    const stop = await cli(['record', 'stop', '--json']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(JSON.parse(stop.stdout).records).toBeGreaterThan(0);
    const list = await cli(['record', 'list', '--json']);
    expect((JSON.parse(list.stdout) as Array<{ name: string }>).map((r) => r.name)).toContain('cli-rec');
    const replay = await cli(['replay', 'cli-rec', '--speed', 'max'], 60_000);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/\d+\/\d+ records \(100%\)/);

    const halt = await cli(['trading', 'halt', '--reason', 'cli test', '--json']);
    expect(halt.code, halt.stderr).toBe(0);
    expect(JSON.parse(halt.stdout)).toMatchObject({ state: 'HALTED', reason: 'cli test' });
    const limits = await cli(['limits', 'max_daily_loss=150', 'price_band=0.1', '--json']);
    expect(JSON.parse(limits.stdout).limits).toMatchObject({ max_daily_loss: '150', price_band: '0.1' });
    const bad = await cli(['limits', 'price_band=7']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/price_band/);
    const resume = await cli(['trading', 'resume', '--json']);
    expect(JSON.parse(resume.stdout)).toMatchObject({ state: 'ACTIVE' });
    const status = await cli(['trading', 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/venue \(sim\) ready.*taking signals/);
    const orders = await cli(['orders', '--all', '--json']);
    expect(orders.code, orders.stderr).toBe(0);
    expect(Array.isArray(JSON.parse(orders.stdout))).toBe(true);
    expect((await cli(['orders', '--limit', 'x'])).stderr).toMatch(/--limit/);
  }, 120_000);

  it('stop ends every process and the pm2 daemon of this data dir', async () => {
    const s = await statusJson();
    const pids = [...s.processes.map((p) => p.pid).filter((p) => p > 0), daemonPid() ?? 0].filter((p) => p > 0);
    expect(pids.length).toBe(APP_NAMES.length + 1);
    const r = await cli(['stop'], 90_000);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(await waitDead(pids, 5_000)).toEqual([]);
    expect(daemonPid()).toBeUndefined();
    // Graceful: every service exited 0 on SIGINT rather than being killed after kill_timeout.
    const pm2Log = readFileSync(join(dir, 'pm2', 'pm2.log'), 'utf8');
    expect(pm2Log).not.toMatch(/SIGKILL/);
    const after = await cli(['status']);
    expect(after.stdout).toContain('not running');
  }, 120_000);
});
