import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { ensureDir } from '@polybot/core';
import type { StartOptions } from 'pm2';
import { portFree } from './doctor.js';
import { clearStaleDaemonFiles, daemonRunning, Pm2Client, pm2Message } from './pm2.js';
import { envFilePath, fetchHealth, logFile, resolveStack, type AppSpec, type HealthAnswer, type Stack } from './stack.js';
import { CliError, out, progress } from './ui.js';

/** Started before everything else: the venue and the events forwarder the others connect to. */
const FIRST = new Set(['sim', 'bus']);

export interface StartCommandOptions {
  /** Start only these apps (e.g. `sim,bus`); the default is the whole stack. */
  only?: string[];
  timeoutS?: number;
}

export function selectApps(stack: Stack, only?: string[]): AppSpec[] {
  if (!only || only.length === 0) return stack.apps;
  const unknown = only.filter((n) => !stack.apps.some((a) => a.name === n));
  if (unknown.length > 0) {
    throw new CliError(`unknown process ${unknown.join(', ')}; known: ${stack.apps.map((a) => a.name).join(', ')}`);
  }
  return stack.apps.filter((a) => only.includes(a.name));
}

export function prepareDataDir(stack: Stack): void {
  const p = stack.paths;
  ensureDir(p.root);
  ensureDir(p.ipc, 0o700);
  ensureDir(p.keys, 0o700);
  ensureDir(p.pm2Home, 0o700);
  for (const d of [p.logs, p.recordings, p.backtests]) ensureDir(d);
}

export async function startCommand(opts: StartCommandOptions = {}): Promise<void> {
  const stack = resolveStack();
  const apps = selectApps(stack, opts.only);
  if (stack.withheld.length > 0) {
    out(`note: not handing ${stack.withheld.join(', ')} from your shell to pm2; services read secrets from ${envFilePath()}`);
  }
  const missing = apps.filter((a) => !existsSync(a.script));
  if (missing.length > 0) {
    throw new CliError(
      `not built: ${missing.map((a) => relative(stack.root, a.script)).join(', ')}\n` +
        '  run `pnpm build` (or `pnpm start`, which builds what is missing) and try again',
    );
  }
  prepareDataDir(stack);
  out(`data dir ${stack.paths.root}`);

  if (!daemonRunning(stack.paths.pm2Home)) {
    clearStaleDaemonFiles(stack.paths.pm2Home);
    // Nothing of ours runs, so a taken port belongs to someone else: say so now instead of after
    // a 90 s wait on a service that keeps failing to bind.
    const ports: Array<[string, string, number]> = [
      ['api', 'POLYBOT_API_PORT', stack.config.POLYBOT_API_PORT],
      ['sim', 'POLYBOT_SIM_PORT', stack.config.POLYBOT_SIM_PORT],
    ];
    for (const [name, varName, port] of ports) {
      if (apps.some((a) => a.name === name) && !(await portFree(port))) {
        throw new CliError(`port ${port} (${varName}) is used by another program; stop it or set ${varName} to a free port`);
      }
    }
  }
  const pm2 = await Pm2Client.connect(stack.paths.pm2Home);
  const failed: string[] = [];
  try {
    const existing = new Map((await pm2.list()).map((p) => [p.name ?? '', p]));
    const toStart: AppSpec[] = [];
    for (const app of apps) {
      const cur = existing.get(app.name);
      if (cur?.pm2_env?.status === 'online') {
        out(`  ${app.name.padEnd(20)} already running (pid ${cur.pid})`);
        continue;
      }
      // A stopped or errored entry keeps its old options; start it afresh from the process file.
      if (cur) await pm2.delete(app.name).catch(() => undefined);
      toStart.push(app);
    }
    const launch = async (app: AppSpec) => {
      const t0 = Date.now();
      try {
        await pm2.start(app as unknown as StartOptions);
        out(`  ${app.name.padEnd(20)} started (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (err) {
        failed.push(app.name);
        out(`  ${app.name.padEnd(20)} FAILED to start: ${pm2Message(err)}`);
      }
    };
    if (toStart.length > 0) out(`starting ${toStart.map((a) => a.name).join(', ')} under pm2 (PM2_HOME=${stack.paths.pm2Home})`);
    await Promise.all(toStart.filter((a) => FIRST.has(a.name)).map(launch));
    await Promise.all(toStart.filter((a) => !FIRST.has(a.name)).map(launch));
  } finally {
    pm2.disconnect();
  }

  const timeoutMs = (opts.timeoutS ?? 90) * 1000;
  const withApi = apps.some((a) => a.name === 'api');
  const ready = withApi ? await waitHealthy(stack, timeoutMs) : await waitOnline(stack, apps, timeoutMs);
  if (!ready.ok) {
    await reportNotRunning(stack, apps, ready.health);
    throw new CliError(
      `${withApi ? `the stack did not report healthy within ${opts.timeoutS ?? 90} s` : 'some processes are not running'}; ` +
        'it is left running for inspection: `pnpm polybot status`, `pnpm logs <name>`, `pnpm stop`',
    );
  }
  if (failed.length > 0) throw new CliError(`failed to start: ${failed.join(', ')}`);
  if (withApi) {
    out(`\nPolyBot is running. Dashboard: http://localhost:${stack.config.POLYBOT_API_PORT}/ui`);
    out(`API: ${stack.apiUrl}/api/health · logs: pnpm logs · stop: pnpm stop`);
  } else {
    out(`\nstarted ${apps.map((a) => a.name).join(', ')} (no api in this selection, so no dashboard)`);
  }
}

async function waitHealthy(stack: Stack, timeoutMs: number): Promise<{ ok: boolean; health?: HealthAnswer }> {
  const t0 = Date.now();
  const bar = progress();
  let last: HealthAnswer | undefined;
  for (;;) {
    last = await fetchHealth(stack.apiUrl);
    const secs = Math.round((Date.now() - t0) / 1000);
    if (last?.status === 'ok') {
      bar.done(`health ok after ${secs} s`);
      return { ok: true, health: last };
    }
    const waitingOn = last
      ? Object.entries(last.services)
          .filter(([, s]) => s.state !== 'running')
          .map(([n, s]) => `${n} ${s.state}`)
      : [];
    bar.update(
      `waiting for ${stack.apiUrl}/api/health: ${last ? `${last.status}${waitingOn.length ? ` (${waitingOn.join(', ')})` : ''}` : 'no answer yet'} · ${secs} s`,
    );
    if (Date.now() - t0 > timeoutMs) {
      bar.done(`gave up after ${secs} s`);
      return { ok: false, ...(last ? { health: last } : {}) };
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function waitOnline(stack: Stack, apps: AppSpec[], timeoutMs: number): Promise<{ ok: boolean; health?: HealthAnswer }> {
  const deadline = Date.now() + Math.min(timeoutMs, 15_000);
  for (;;) {
    const procs = await listProcesses(stack);
    if (apps.every((a) => procs.find((p) => p.name === a.name)?.status === 'online')) return { ok: true };
    if (Date.now() > deadline) return { ok: false };
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface ProcRow {
  name: string;
  status: string;
  pid: number;
  restarts: number;
  uptimeMs: number;
  memory: number;
  cpu: number;
}

/** pm2's list for this data dir's daemon; [] when no daemon runs (and none is started). */
export async function listProcesses(stack: Stack): Promise<ProcRow[]> {
  if (!daemonRunning(stack.paths.pm2Home)) return [];
  const pm2 = await Pm2Client.connect(stack.paths.pm2Home);
  try {
    return (await pm2.list()).map((p) => {
      const env = p.pm2_env as (typeof p.pm2_env & { restart_time?: number; pm_uptime?: number }) | undefined;
      return {
        name: p.name ?? '?',
        status: env?.status ?? 'unknown',
        pid: p.pid ?? 0,
        restarts: env?.restart_time ?? 0,
        uptimeMs: env?.status === 'online' && env.pm_uptime ? Date.now() - env.pm_uptime : 0,
        memory: p.monit?.memory ?? 0,
        cpu: p.monit?.cpu ?? 0,
      };
    });
  } finally {
    pm2.disconnect();
  }
}

async function reportNotRunning(stack: Stack, apps: AppSpec[], health?: HealthAnswer): Promise<void> {
  const procs = await listProcesses(stack).catch(() => [] as ProcRow[]);
  out('\nnot running:');
  let any = false;
  for (const app of apps) {
    const p = procs.find((r) => r.name === app.name);
    const h = health?.services[app.name];
    const pmBad = !p || p.status !== 'online';
    const healthBad = health !== undefined && (!h || h.state !== 'running');
    if (!pmBad && !healthBad) continue;
    any = true;
    const why = pmBad ? `pm2: ${p?.status ?? 'not started'}${p?.restarts ? `, ${p.restarts} restarts` : ''}` : `reports ${h?.state ?? 'nothing'}${h?.message ? `: ${h.message}` : ''}`;
    out(`  ${app.name.padEnd(20)} ${why}\n  ${''.padEnd(20)} log: ${logFile(stack, app.name)}`);
  }
  if (!any) out(`  every process is online, but ${stack.apiUrl}/api/health did not answer "ok" (log: ${logFile(stack, 'api')})`);
}
