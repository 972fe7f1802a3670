/** Query-string helpers shared by the route modules. */
export type Query = Record<string, string | string[] | undefined>;

/** All values of a query key, accepting both repeated keys and comma-separated lists. */
export function list(q: Query, key: string): string[] | undefined {
  const v = q[key];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

export function one(q: Query, key: string): string | undefined {
  const v = q[key];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

export class BadRequest extends Error {
  readonly statusCode = 400;
}

export function bool(q: Query, key: string): boolean | undefined {
  const v = one(q, key);
  if (v === undefined || v === '') return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new BadRequest(`${key} must be true or false`);
}

export function int(q: Query, key: string, def: number, max: number): number {
  const v = one(q, key);
  if (v === undefined || v === '') return def;
  if (!/^\d+$/.test(v)) throw new BadRequest(`${key} must be a non-negative integer`);
  return Math.min(Number(v), max);
}

