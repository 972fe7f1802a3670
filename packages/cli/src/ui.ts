/** An error meant for the user: printed without a stack trace, exit code 1. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * A progress line: rewritten in place on a terminal; in logs and CI only printed when its text
 * changes or every 10 s, so a long wait does not flood the output.
 */
export function progress() {
  const tty = process.stdout.isTTY === true;
  let lastText = '';
  let lastAt = 0;
  return {
    update(text: string) {
      if (tty) {
        process.stdout.write(`\r\x1b[2K${text}`);
      } else {
        const stem = text.replace(/ · \d+ s$/, '');
        if (stem !== lastText || Date.now() - lastAt > 10_000) process.stdout.write(`${text}\n`);
        lastText = stem;
        lastAt = Date.now();
      }
    },
    done(text: string) {
      process.stdout.write(tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
    },
  };
}

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} kB`;
  return `${n} B`;
}

export function formatDuration(ms: number): string {
  if (ms <= 0) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor(s / 3600) % 24}h`;
}

/** Plain text table with left-aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
