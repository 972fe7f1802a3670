import pino, { type Logger } from 'pino';

export type { Logger };

/** Field paths that may carry secrets; pino replaces their values before anything is written. */
export const REDACT_PATHS = [
  'privateKey', '*.privateKey', 'private_key', '*.private_key',
  'secret', '*.secret', 'apiSecret', '*.apiSecret',
  'passphrase', '*.passphrase', 'password', '*.password',
  'apiKey', '*.apiKey', 'key', '*.key',
  'authorization', '*.authorization', 'headers.authorization', 'headers.cookie',
  'headers.POLY_SIGNATURE', 'headers.POLY_API_KEY', 'headers.POLY_PASSPHRASE',
  '*.headers.POLY_SIGNATURE', '*.headers.POLY_API_KEY', '*.headers.POLY_PASSPHRASE',
  'signature', '*.signature',
];

export interface LoggerOptions {
  level?: string;
  /** Where to write; defaults to stdout (pm2 collects it). */
  destination?: pino.DestinationStream;
}

/** One JSON logger per process, bound to the service name. */
export function createLogger(service: string, opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service, pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
