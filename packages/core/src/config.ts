import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import Type, { type Static, type TObject, type TProperties } from 'typebox';
import Value from 'typebox/value';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const SECRET_NAME = /KEY|SECRET|PASSWORD|PASSPHRASE|TOKEN/i;

const Port = (def: number) => Type.Integer({ minimum: 0, maximum: 65535, default: def });
const Url = (desc: string) => Type.Optional(Type.String({ pattern: '^(https?|wss?)://', description: desc }));

/** Variables every service reads. Schema keys are the env var names themselves. */
export const BaseConfig = Type.Object({
  POLYBOT_DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  POLYBOT_LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  POLYBOT_HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  POLYBOT_API_PORT: Port(8000),
  POLYBOT_SIM_PORT: Port(8100),
  POLYBOT_VENUE: Type.Union([Type.Literal('sim'), Type.Literal('polymarket')], { default: 'sim' }),
  POLYBOT_STATUS_INTERVAL_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 2000 }),
  POLYMARKET_GAMMA_URL: Url('Gamma API base'),
  POLYMARKET_CLOB_URL: Url('CLOB REST base'),
  POLYMARKET_WS_URL: Url('base that /ws/market and /ws/user hang off'),
  POLYMARKET_RTDS_URL: Url('real-time data socket'),
  POLYMARKET_DATA_URL: Url('Data API base'),
});
export type BaseConfig = Static<typeof BaseConfig>;

/** Adds a service's own variables to the base schema. */
export function serviceConfig<P extends TProperties>(props: P) {
  return Type.Object({ ...BaseConfig.properties, ...props });
}

export interface LoadOptions {
  env?: Record<string, string | undefined>;
  /** Path of a dotenv file; defaults to POLYBOT_ENV_FILE or ./.env. `false` skips it. */
  envFile?: string | false;
}

function readEnvFile(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  try {
    return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
  } catch (err) {
    throw new ConfigError([`${path}: cannot parse (${(err as Error).message})`]);
  }
}

/**
 * Reads the schema's variables from the environment (over `.env`), converts and validates them
 * once, and returns a frozen object. A bad value throws a ConfigError naming the variable.
 */
export function loadConfig<T extends TObject>(schema: T, opts: LoadOptions = {}): Readonly<Static<T>> {
  const env = opts.env ?? process.env;
  const envFile = opts.envFile === undefined ? (env.POLYBOT_ENV_FILE ?? resolve('.env')) : opts.envFile;
  const fileVars = envFile ? readEnvFile(envFile) : {};
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) {
    const v = env[key] ?? fileVars[key];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  const withDefaults = Value.Default(schema, Value.Convert(schema, raw));
  if (!Value.Check(schema, withDefaults)) {
    const problems = Value.Errors(schema, withDefaults).map((e) => {
      const name = e.instancePath.replace(/^\//, '') || (e.params as { requiredProperties?: string[] }).requiredProperties?.join(', ') || '(config)';
      const given = raw[name];
      const shown = given === undefined ? 'not set' : SECRET_NAME.test(name) ? 'given value hidden' : `got ${JSON.stringify(given)}`;
      return `${name}: ${e.message} (${shown})`;
    });
    throw new ConfigError([...new Set(problems)]);
  }
  return Object.freeze(withDefaults as Static<T>);
}

export interface VenueUrls {
  gamma: string;
  clob: string;
  ws: string;
  rtds: string;
  data: string;
}

/** Effective venue endpoints: explicit variables win; otherwise the simulator's or Polymarket's. */
export function venueUrls(cfg: BaseConfig): VenueUrls {
  const sim = `http://127.0.0.1:${cfg.POLYBOT_SIM_PORT}`;
  const simWs = `ws://127.0.0.1:${cfg.POLYBOT_SIM_PORT}`;
  const real = cfg.POLYBOT_VENUE === 'polymarket';
  const strip = (u: string) => u.replace(/\/+$/, '');
  return {
    gamma: strip(cfg.POLYMARKET_GAMMA_URL ?? (real ? 'https://gamma-api.polymarket.com' : sim)),
    clob: strip(cfg.POLYMARKET_CLOB_URL ?? (real ? 'https://clob.polymarket.com' : sim)),
    ws: strip(cfg.POLYMARKET_WS_URL ?? (real ? 'wss://ws-subscriptions-clob.polymarket.com' : simWs)),
    rtds: strip(cfg.POLYMARKET_RTDS_URL ?? (real ? 'wss://ws-live-data.polymarket.com' : `${simWs}/ws/rtds`)),
    data: strip(cfg.POLYMARKET_DATA_URL ?? (real ? 'https://data-api.polymarket.com' : sim)),
  };
}
