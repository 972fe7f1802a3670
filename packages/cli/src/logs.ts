import { closeSync, existsSync, openSync, readSync, statSync, watchFile, unwatchFile } from 'node:fs';
import { resolveStack, logFile } from './stack.js';
import { CliError, out } from './ui.js';

/** The last `n` lines of a file, read backwards in blocks so large logs stay cheap. */
export function lastLines(path: string, n: number): string[] {
  const size = statSync(path).size;
  if (size === 0 || n <= 0) return [];
  const fd = openSync(path, 'r');
  try {
    const block = 64 * 1024;
    let pos = size;
    let text = '';
    while (pos > 0 && text.split('\n').length <= n + 1) {
      const len = Math.min(block, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, pos);
      text = buf.toString('utf8') + text;
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-n);
  } finally {
    closeSync(fd);
  }
}

/** Complete lines appended since `from`; a half-written last line waits for the next poll. */
function readFrom(path: string, from: number): { text: string; end: number } {
  const size = statSync(path).size;
  if (size < from) return readFrom(path, 0); // truncated or rotated
  if (size === from) return { text: '', end: from };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(size - from);
    readSync(fd, buf, 0, buf.length, from);
    const cut = buf.lastIndexOf(0x0a) + 1;
    return { text: buf.subarray(0, cut).toString('utf8'), end: from + cut };
  } finally {
    closeSync(fd);
  }
}

export async function logsCommand(name: string | undefined, opts: { lines?: number; follow?: boolean }): Promise<void> {
  const stack = resolveStack();
  const lines = opts.lines ?? 50;
  const names = stack.apps.map((a) => a.name);
  if (name && !names.includes(name) && !existsSync(logFile(stack, name))) {
    throw new CliError(`no process called ${name}; known: ${names.join(', ')}`);
  }
  const files = (name ? [name] : names).map((n) => ({ name: n, path: logFile(stack, n) })).filter((f) => existsSync(f.path));
  if (files.length === 0) {
    out(`no log files yet in ${stack.paths.logs}`);
    return;
  }
  for (const f of files) {
    if (files.length > 1 || !opts.follow) out(`==> ${f.path} <==`);
    for (const l of lastLines(f.path, lines)) out(l);
    if (files.length > 1) out('');
  }
  if (!opts.follow) return;
  // Follow: poll sizes (works across pm2's reopen of the file and on every filesystem).
  const offsets = new Map(files.map((f) => [f.path, statSync(f.path).size]));
  const prefix = files.length > 1;
  for (const f of files) {
    watchFile(f.path, { interval: 500 }, () => {
      if (!existsSync(f.path)) return;
      const { text, end } = readFrom(f.path, offsets.get(f.path) ?? 0);
      offsets.set(f.path, end);
      for (const l of text.split('\n')) if (l) out(prefix ? `${f.name} | ${l}` : l);
    });
  }
  await new Promise<void>((resolve) => {
    const stop = () => {
      for (const f of files) unwatchFile(f.path);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
