import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ProcessDescription, StartOptions } from 'pm2';

type Pm2 = typeof import('pm2');

/** Is a process with this pid alive (and ours to signal)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function daemonPid(pm2Home: string): number | undefined {
  const file = join(pm2Home, 'pm2.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** True when the pm2 daemon of this home is running (never starts one). */
export function daemonRunning(pm2Home: string): boolean {
  const pid = daemonPid(pm2Home);
  return pid !== undefined && pidAlive(pid);
}

/** Removes the sockets and pid file a killed daemon left behind, so the next connect starts clean. */
export function clearStaleDaemonFiles(pm2Home: string): void {
  for (const f of ['pm2.pid', 'rpc.sock', 'pub.sock']) rmSync(join(pm2Home, f), { force: true });
}

/**
 * Promise wrapper around pm2's programmatic API. pm2 reads PM2_HOME when it is first loaded,
 * so the module is imported only after the caller has set process.env.PM2_HOME.
 */
export class Pm2Client {
  private constructor(private readonly pm2: Pm2) {}

  static async connect(pm2Home: string): Promise<Pm2Client> {
    if (process.env.PM2_HOME !== pm2Home) throw new Error(`PM2_HOME must be ${pm2Home} before pm2 is loaded`);
    const mod = (await import('pm2')) as unknown as { default: Pm2 };
    const pm2 = mod.default;
    await new Promise<void>((resolve, reject) => pm2.connect((err) => (err ? reject(err) : resolve())));
    return new Pm2Client(pm2);
  }

  private call<T>(fn: (cb: (err: Error | null | undefined, res: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
  }

  start(app: StartOptions): Promise<unknown> {
    return this.call((cb) => this.pm2.start(app, cb as never));
  }

  list(): Promise<ProcessDescription[]> {
    return this.call((cb) => this.pm2.list(cb as never));
  }

  stop(name: string | number): Promise<unknown> {
    return this.call((cb) => this.pm2.stop(name, cb as never));
  }

  delete(name: string | number): Promise<unknown> {
    return this.call((cb) => this.pm2.delete(name, cb as never));
  }

  killDaemon(): Promise<unknown> {
    return this.call((cb) => this.pm2.killDaemon(cb as never));
  }

  disconnect(): void {
    this.pm2.disconnect();
  }
}

/** pm2 rejects with an Error, a string or an array of them depending on the call. */
export function pm2Message(err: unknown): string {
  if (Array.isArray(err)) return err.map(pm2Message).join('; ');
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err && 'message' in err) return String((err as { message: unknown }).message);
  return String(err);
}
