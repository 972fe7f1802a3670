/** Display helpers. Prices arrive as numbers on a tick grid; money stays as the API's decimal strings. */

export function fmtPrice(v: number | null | undefined): string {
  return v === null || v === undefined ? '—' : v.toFixed(3);
}

export function fmtSize(v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(v % 1 === 0 ? 0 : 2);
}

/** Trims a decimal string for display without converting it to a float. */
export function fmtDecimal(s: string, maxFrac = 4): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) return s;
  const frac = (m[3] ?? '').slice(0, maxFrac).replace(/0+$/, '');
  return `${m[1]}${m[2]}${frac ? `.${frac}` : ''}`;
}

export function decimalSign(s: string): -1 | 0 | 1 {
  if (s.startsWith('-')) return /[1-9]/.test(s) ? -1 : 0;
  return /[1-9]/.test(s) ? 1 : 0;
}

export function fmtTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function fmtAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function shortId(id: string, n = 6): string {
  return id.length > n * 2 + 1 ? `${id.slice(0, n)}…${id.slice(-4)}` : id;
}
