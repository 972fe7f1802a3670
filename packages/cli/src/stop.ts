import { clearStaleDaemonFiles, daemonPid, daemonRunning, pidAlive, Pm2Client, pm2Message } from './pm2.js';
import { resolveStack } from './stack.js';
import { CliError, out } from './ui.js';

/**
 * Stop order: intake first (strategies, api), then the feed, then what holds in-flight work
 * (executor, analytics), then the forwarder and the venue they were talking to.
 */
function tier(name: string): number {
  if (name.startsWith('strategy:') || name === 'api') return 0;
  if (name === 'scanner') return 1;
  if (name === 'executor' || name === 'analytics') return 2;
  if (name === 'bus') return 3;
  if (name === 'sim') return 4;
  return 0;
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const alive = pids.filter(pidAlive);
    if (alive.length === 0 || Date.now() > deadline) return alive;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops and deletes every app of this data dir's pm2 home, then ends its daemon. */
export async function stopCommand(): Promise<void> {
  const stack = resolveStack();
  const home = stack.paths.pm2Home;
  if (!daemonRunning(home)) {
    clearStaleDaemonFiles(home);
    out(`not running (no pm2 daemon for ${stack.paths.root})`);
    return;
  }
  const pm2 = await Pm2Client.connect(home);
  const daemon = daemonPid(home);
  const procs = await pm2.list();
  const pids = procs.map((p) => p.pid ?? 0).filter((pid) => pid > 0);
  const tiers = new Map<number, string[]>();
  for (const p of procs) {
    const name = p.name ?? '';
    tiers.set(tier(name), [...(tiers.get(tier(name)) ?? []), name]);
  }
  for (const t of [...tiers.keys()].sort((a, b) => a - b)) {
    const names = [...new Set(tiers.get(t))];
    out(`stopping ${names.join(', ')}`);
    await Promise.all(
      names.map((n) => pm2.stop(n).catch((e: unknown) => out(`  ${n}: ${pm2Message(e)}`))),
    );
  }
  if (procs.length > 0) await pm2.delete('all').catch(() => undefined);
  // killDaemon ends the client connection itself; disconnect afterwards only to be sure.
  await pm2.killDaemon().catch(() => undefined);
  try {
    pm2.disconnect();
  } catch {
    // already closed by killDaemon
  }
  const leftover = await waitGone([...(daemon ? [daemon] : []), ...pids], 20_000);
  for (const pid of leftover) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  clearStaleDaemonFiles(home);
  if (leftover.length > 0) {
    throw new CliError(`stopped, but had to SIGKILL pids ${leftover.join(', ')} that did not exit in time`);
  }
  out(`stopped ${procs.length} process${procs.length === 1 ? '' : 'es'} and the pm2 daemon of ${stack.paths.root}`);
}
