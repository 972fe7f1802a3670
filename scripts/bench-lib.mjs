// Helpers shared by the benchmarks that run services as child processes.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** CPU seconds (user + system) used so far by process `pid`, from /proc (Linux); undefined elsewhere. */
export function cpuSecondsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

/**
 * `node <file>` with `env`, keeping the last 20 output lines for error messages. `stop()` sends
 * SIGTERM and SIGKILLs after 5 s; Ctrl-C or SIGTERM of the bench kills the child too, so none is
 * ever left behind.
 */
export function startChild(file, env, nodeArgs = []) {
  const tail = [];
  const child = spawn(process.execPath, [...nodeArgs, file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d) => {
    for (const line of d.toString().split('\n')) if (line.trim()) tail.push(line);
    if (tail.length > 20) tail.splice(0, tail.length - 20);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const alive = () => child.exitCode === null && child.signalCode === null;
  const onSignal = () => {
    if (alive()) process.kill(child.pid, 'SIGKILL');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    child,
    tail,
    async stop() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (!alive()) return;
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => {
        if (alive()) process.kill(child.pid, 'SIGKILL');
      }, 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
