import { loadConfig, ServiceRunner } from '@polybot/core';
import type { RpcResult } from '@polybot/protocol';
import { createScannerService, ScannerConfig } from '@polybot/scanner';
import { askScanner } from './record.js';
import { resolveStack, type Stack } from './stack.js';
import { CliError, out, progress } from './ui.js';

export interface ReplayOptions {
  speed: string;
  /** Run a replay-only scanner in this process instead of asking the stack's scanner. */
  standalone?: boolean;
  stop?: boolean;
}

/** `max` (or 0) = as fast as possible; otherwise a positive multiple of recorded time. */
export function parseSpeed(s: string): number {
  if (s === 'max') return 0;
  const n = Number(s.replace(/x$/i, ''));
  if (!Number.isFinite(n) || n <= 0 || n > 1e6) throw new CliError(`--speed must be "max" or a positive number like 1, 10 or 0.5 (got "${s}")`);
  return n;
}

function line(s: RpcResult<'replay.status'>): string {
  const pct = s.records_total > 0 ? Math.floor((s.records_done * 100) / s.records_total) : 0;
  const at = s.position_ts ? ` · at ${new Date(s.position_ts).toISOString().replace('.000Z', 'Z')}` : '';
  return `replaying ${s.recording ?? ''}: ${s.records_done}/${s.records_total} records (${pct}%) · ${s.events_per_s} rec/s${at}`;
}

async function follow(stack: Stack): Promise<RpcResult<'replay.status'>> {
  const bar = progress();
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    bar.done('stopping the replay (Ctrl-C again to leave it running)');
    void askScanner(stack, 'replay.stop', {}).catch(() => undefined);
  };
  process.on('SIGINT', onSigint);
  try {
    for (;;) {
      const s = await askScanner(stack, 'replay.status', {});
      if (s.state !== 'running') {
        bar.done(line(s));
        return s;
      }
      bar.update(line(s));
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export async function replayCommand(recording: string | undefined, opts: ReplayOptions): Promise<void> {
  const stack = resolveStack();
  if (opts.stop) {
    const s = await askScanner(stack, 'replay.stop', {});
    out(`replay ${s.state}: ${s.records_done}/${s.records_total} records`);
    return;
  }
  if (!recording) throw new CliError('name a recording (pnpm polybot record list shows them), or pass --stop');
  const speed = parseSpeed(opts.speed);
  let runner: ServiceRunner<ScannerConfig> | undefined;
  if (opts.standalone) {
    // Its own scanner binds prices.pub: the stack's scanner must not be running on this data dir.
    const config = loadConfig(ScannerConfig, { env: { ...process.env, POLYBOT_DATA_DIR: stack.paths.root, POLYBOT_SCANNER_SOURCE: 'replay' } });
    runner = new ServiceRunner({ name: 'scanner', config, create: createScannerService });
    try {
      await runner.start();
    } catch (e) {
      throw new CliError(`could not start a replay scanner (${(e as Error).message}); if the stack is running, replay without --standalone`);
    }
  }
  try {
    const started = await askScanner(stack, 'replay.start', { recording, speed });
    out(`replaying ${started.recording} (${started.records_total} records) at ${speed === 0 ? 'full speed' : `${speed}× recorded time`}; the live feed pauses meanwhile`);
    const end = await follow(stack);
    if (end.state === 'failed') throw new CliError(`replay failed: ${end.error ?? 'unknown error'}`);
  } finally {
    await runner?.stop();
  }
}
