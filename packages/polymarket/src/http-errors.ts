/** Shared readings of failed venue calls: socket error codes, messages, `Retry-After`, error bodies. */

export interface ErrLike {
  name?: string;
  code?: string;
  message?: string;
  cause?: unknown;
  errors?: unknown[];
}

/** The error codes along an error's cause chain (fetch wraps socket errors in `cause`, happy eyeballs in `errors`). */
export function errorCodes(err: unknown, depth = 0): string[] {
  if (!err || typeof err !== 'object' || depth > 5) return [];
  const e = err as ErrLike;
  const own = typeof e.code === 'string' ? [e.code] : [];
  const nested = Array.isArray(e.errors) ? e.errors.flatMap((x) => errorCodes(x, depth + 1)) : [];
  return [...own, ...nested, ...errorCodes(e.cause, depth + 1)];
}

/** An error's message and its cause's, for a log line or an outcome. */
export function describeError(err: unknown, maxLength = 500): string {
  const e = (err ?? {}) as ErrLike;
  const cause = e.cause as ErrLike | undefined;
  return [e.message, cause?.message].filter(Boolean).join(': ').slice(0, maxLength) || String(err);
}

/** `Retry-After` as ms: delay-seconds or an HTTP date relative to `nowMs`; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.ceil(Number(v) * 1000);
  if (v === '' || /^[-+]?[\d.eE+-]+$/.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - nowMs);
}

/** The venue's error text from a JSON body (`error`, `errorMsg`, …), else the raw text. */
export function venueErrorText(json: unknown, text: string, status: number, maxLength = 500): string {
  if (json && typeof json === 'object') {
    const o = json as Record<string, unknown>;
    for (const k of ['error', 'errorMsg', 'error_msg', 'message']) {
      if (typeof o[k] === 'string' && o[k] !== '') return (o[k] as string).slice(0, maxLength);
    }
  }
  return text.trim().slice(0, maxLength) || `HTTP ${status}`;
}
