import { daemonRunning } from './pm2.js';
import { listProcesses } from './start.js';
import { fetchHealth, resolveStack } from './stack.js';
import { formatBytes, formatDuration, out, table } from './ui.js';

export async function statusCommand(opts: { json?: boolean } = {}): Promise<void> {
  const stack = resolveStack();
  const running = daemonRunning(stack.paths.pm2Home);
  const procs = running ? await listProcesses(stack) : [];
  const health = await fetchHealth(stack.apiUrl);
  if (opts.json) {
    out(JSON.stringify({ data_dir: stack.paths.root, daemon: running, processes: procs, health: health ?? null }));
    return;
  }
  out(`data dir ${stack.paths.root}`);
  if (!running) {
    out('not running (no pm2 daemon for this data dir); start with `pnpm start`');
  } else if (procs.length === 0) {
    out('pm2 daemon running, no processes');
  } else {
    out(
      table(
        ['name', 'status', 'pid', 'restarts', 'uptime', 'memory', 'cpu'],
        procs.map((p) => [
          p.name,
          p.status,
          p.pid ? String(p.pid) : '-',
          String(p.restarts),
          formatDuration(p.uptimeMs),
          p.memory ? formatBytes(p.memory) : '-',
          `${p.cpu}%`,
        ]),
      ),
    );
  }
  if (health) {
    out(`\n${stack.apiUrl}/api/health: ${health.status}`);
    const rows = Object.entries(health.services).map(([name, s]) => [
      name,
      s.state,
      s.since ? formatDuration(Date.now() - s.since) : '-',
      s.message ?? '',
    ]);
    if (rows.length > 0) out(table(['service', 'state', 'for', 'message'], rows));
  } else if (running) {
    out(`\n${stack.apiUrl}/api/health: no answer`);
  }
}
