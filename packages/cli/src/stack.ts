import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BaseConfig, dataPaths, loadConfig, type DataPaths } from '@polybot/core';

/** Repository root: packages/cli/{src,dist}/ → ../../.. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** One pm2 app as ecosystem.config.js describes it. */
export interface AppSpec {
  name: string;
  script: string;
  cwd: string;
  env: Record<string, string>;
  out_file: string;
  [key: string]: unknown;
}

interface Ecosystem {
  apps: AppSpec[];
  buildApps(env: NodeJS.ProcessEnv): AppSpec[];
  SECRET_NAME: RegExp;
}

export interface Stack {
  root: string;
  config: Readonly<BaseConfig>;
  paths: DataPaths;
  apps: AppSpec[];
  apiUrl: string;
  /** Names of secret-looking variables of the caller's shell that are kept away from pm2. */
  withheld: string[];
}

export function envFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.POLYBOT_ENV_FILE ?? join(REPO_ROOT, '.env');
}

function loadEcosystem(): Ecosystem {
  const file = join(REPO_ROOT, 'ecosystem.config.js');
  if (!existsSync(file)) throw new Error(`${file} is missing`);
  // The process file is CommonJS so that the pm2 CLI can read it too.
  return createRequire(import.meta.url)(file) as Ecosystem;
}

/**
 * Resolves the stack of this data dir: validated base config (env over `.env`; a bad value throws a
 * ConfigError naming the variable), the data paths and the pm2 apps. Sets PM2_HOME and removes
 * secret-looking variables from process.env, so a pm2 daemon spawned from here inherits neither
 * ~/.pm2 nor a secret: services read their secrets from `.env` themselves.
 */
export function resolveStack(env: NodeJS.ProcessEnv = process.env): Stack {
  const config = loadConfig(BaseConfig, { env, envFile: envFilePath(env) });
  const dataDir = isAbsolute(config.POLYBOT_DATA_DIR) ? config.POLYBOT_DATA_DIR : resolve(REPO_ROOT, config.POLYBOT_DATA_DIR);
  const paths = dataPaths(dataDir);
  const eco = loadEcosystem();
  const withheld = Object.keys(env).filter((k) => eco.SECRET_NAME.test(k));
  const apps = eco.buildApps({ ...env, POLYBOT_DATA_DIR: paths.root });
  if (env === process.env) {
    for (const k of withheld) delete process.env[k];
    process.env.PM2_HOME = paths.pm2Home;
  }
  return {
    root: REPO_ROOT,
    config: Object.freeze({ ...config, POLYBOT_DATA_DIR: paths.root }),
    paths,
    apps,
    apiUrl: `http://127.0.0.1:${config.POLYBOT_API_PORT}`,
    withheld,
  };
}

export function logFile(stack: Stack, name: string): string {
  return stack.apps.find((a) => a.name === name)?.out_file ?? join(stack.paths.logs, `${name}.log`);
}

export interface HealthAnswer {
  status: 'ok' | 'degraded' | 'down';
  services: Record<string, { state: string; since?: number; last_seen?: number; pid?: number; message?: string }>;
}

/** One GET of /api/health; undefined when the API does not answer (yet). */
export async function fetchHealth(apiUrl: string, timeoutMs = 2000): Promise<HealthAnswer | undefined> {
  try {
    const res = await fetch(`${apiUrl}/api/health`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as Partial<HealthAnswer>;
    if (typeof body?.status !== 'string') return undefined;
    return { status: body.status, services: body.services ?? {} } as HealthAnswer;
  } catch {
    return undefined;
  }
}
