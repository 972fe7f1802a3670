import type { TObject, Static } from 'typebox';
import { ConfigError, loadConfig } from './config.js';

/** Loads config for a `main.ts`; a bad value prints what to fix and exits 2 (pm2 shows it). */
export function loadConfigOrExit<T extends TObject>(schema: T): Readonly<Static<T>> {
  try {
    return loadConfig(schema);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
