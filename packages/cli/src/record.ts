import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BusError, BusRequester, resolveEndpoints } from '@polybot/bus';
import type { RpcMethod, RpcParams, RpcResult } from '@polybot/protocol';
import { RecordingReader } from '@polybot/scanner';
import { resolveStack, type Stack } from './stack.js';
import { CliError, out } from './ui.js';

/** One request to the running scanner, with an error that says what to do when it is not there. */
export function askScanner<M extends RpcMethod>(stack: Stack, method: M, params: RpcParams<M>, timeoutMs = 5000): Promise<RpcResult<M>> {
  return ask(stack, 'scanner', method, params, timeoutMs);
}

/** One request to a service's REP socket (`scanner.rep`, `executor.rep`). */
export async function ask<M extends RpcMethod>(
  stack: Stack,
  service: 'scanner' | 'executor',
  method: M,
  params: RpcParams<M>,
  timeoutMs = 5000,
): Promise<RpcResult<M>> {
  const endpoint = resolveEndpoints(stack.paths.root, process.env)[`${service}.rep`];
  const req = new BusRequester({ endpoint, src: 'cli', timeoutMs });
  try {
    return await req.call(method, params);
  } catch (e) {
    if (e instanceof BusError && e.code === 'remote') throw new CliError(e.message);
    if (e instanceof BusError && (e.code === 'timeout' || e.code === 'closed')) {
      throw new CliError(`the ${service} does not answer on ${endpoint} (is the stack running? pnpm start, or pnpm polybot status)`);
    }
    throw e;
  } finally {
    await req.close();
  }
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 2 : 1)} MB`;
const when = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace('.000Z', 'Z') : '—');

function printStatus(s: RpcResult<'record.status'>): void {
  if (!s.recording) {
    out(s.name ? `stopped recording ${s.name}: ${s.records} records (${s.raw_frames} venue frames, ${s.events} events), ${mb(s.bytes)}` : 'not recording');
    return;
  }
  out(`recording ${s.name} since ${when(s.started_at)} into ${s.dir}`);
  out(`  ${s.records} records (${s.raw_frames} venue frames, ${s.events} events), ${mb(s.bytes)} in ${s.segments} segment(s)`);
}

export async function recordCommand(action: string, opts: { name?: string; json?: boolean }): Promise<void> {
  const stack = resolveStack();
  switch (action) {
    case 'start': {
      const s = await askScanner(stack, 'record.start', opts.name ? { name: opts.name } : {});
      if (opts.json) return out(JSON.stringify(s));
      printStatus(s);
      out('stop it with: pnpm polybot record stop');
      return;
    }
    case 'stop': {
      const s = await askScanner(stack, 'record.stop', {});
      return opts.json ? out(JSON.stringify(s)) : printStatus({ ...s, recording: false });
    }
    case 'status': {
      const s = await askScanner(stack, 'record.status', {});
      return opts.json ? out(JSON.stringify(s)) : printStatus(s);
    }
    case 'list':
      return listRecordings(stack, opts.json === true);
    default:
      throw new CliError(`unknown record action "${action}": use start, stop, status or list`);
  }
}

async function listRecordings(stack: Stack, json: boolean): Promise<void> {
  const root = stack.paths.recordings;
  const names = existsSync(root) ? readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];
  const rows = [];
  for (const name of names) {
    try {
      const info = (await RecordingReader.open(join(root, name))).info();
      rows.push({ name, records: info.records, raw_frames: info.rawFrames, events: info.events, bytes: info.bytes, first_ts: info.firstTs, last_ts: info.lastTs });
    } catch {
      // Not a recording (or unreadable): not listed.
    }
  }
  if (json) return out(JSON.stringify(rows));
  if (rows.length === 0) return out(`no recordings in ${root} (start one with: pnpm polybot record start)`);
  for (const r of rows) {
    const secs = r.first_ts && r.last_ts ? Math.round((r.last_ts - r.first_ts) / 1000) : 0;
    out(`${r.name}  ${r.records} records  ${mb(r.bytes)}  ${when(r.first_ts)} +${secs} s`);
  }
}
