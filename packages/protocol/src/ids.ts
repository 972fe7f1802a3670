import { randomBytes } from 'node:crypto';

/**
 * Time-ordered unique ids (48-bit ms timestamp + 80 random bits, hex): sortable in SQLite and
 * unique across restarts without coordination.
 */
export function newId(prefix = ''): string {
  const ts = Date.now().toString(16).padStart(12, '0');
  return `${prefix}${ts}${randomBytes(10).toString('hex')}`;
}
