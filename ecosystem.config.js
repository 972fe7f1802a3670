'use strict';
/**
 * pm2 process file of the whole stack. `polybot start` (packages/cli) loads it and starts the apps
 * through pm2's API with PM2_HOME=<data dir>/pm2; `pm2 start ecosystem.config.js` works too.
 *
 * Only non-secret settings go into the env of an app: pm2 keeps every app's env in its daemon
 * (`pm2 env <id>` prints it, `pm2 save` writes it to disk). Secrets stay in `.env`, which each
 * service reads itself (packages/core loadConfig); secret-looking variables of the caller's
 * shell are not handed to pm2 either.
 */
const { existsSync, readFileSync } = require('node:fs');
const { isAbsolute, join, resolve } = require('node:path');
const { parseEnv } = require('node:util');

const ROOT = __dirname;
// Same rule as packages/core's config (values of these names are never printed or passed on).
const SECRET_NAME = /KEY|SECRET|PASSWORD|PASSPHRASE|TOKEN|PRIVATE|MNEMONIC/i;

function envFileVars(env) {
  const file = env.POLYBOT_ENV_FILE || join(ROOT, '.env');
  if (!existsSync(file)) return {};
  try {
    return parseEnv(readFileSync(file, 'utf8'));
  } catch {
    return {}; // the services report a broken .env themselves, naming the problem
  }
}

/** The stack's layout: process env wins over `.env`, which wins over the defaults of the brief. */
function stackSettings(env = process.env) {
  const file = envFileVars(env);
  const pick = (name, def) => {
    const v = env[name] !== undefined && env[name] !== '' ? env[name] : file[name];
    return v !== undefined && v !== '' ? String(v) : def;
  };
  const dataDir = pick('POLYBOT_DATA_DIR', './data');
  return {
    root: ROOT,
    // Relative to the repository root, which is every service's cwd.
    dataDir: isAbsolute(dataDir) ? dataDir : resolve(ROOT, dataDir),
    apiPort: pick('POLYBOT_API_PORT', '8000'),
    simPort: pick('POLYBOT_SIM_PORT', '8100'),
    venue: pick('POLYBOT_VENUE', 'sim'),
    host: pick('POLYBOT_HOST', '127.0.0.1'),
    strategies: pick('POLYBOT_STRATEGIES', 'threshold')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}

/** The caller's environment without secret-looking names (PATH, HOME, NODE_OPTIONS... stay). */
function publicEnv(env = process.env) {
  const out = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || SECRET_NAME.test(k)) continue;
    // pm2's own bookkeeping of a parent process must not leak into the apps.
    if (k === 'pm_id' || k.startsWith('PM2_') || k === 'name' || k === 'NODE_APP_INSTANCE') continue;
    out[k] = v;
  }
  return out;
}

function buildApps(env = process.env) {
  const s = stackSettings(env);
  const logs = join(s.dataDir, 'logs');
  const common = {
    ...publicEnv(env),
    POLYBOT_DATA_DIR: s.dataDir,
    POLYBOT_API_PORT: s.apiPort,
    POLYBOT_SIM_PORT: s.simPort,
    POLYBOT_VENUE: s.venue,
    POLYBOT_HOST: s.host,
    // The api drives strategies through pm2 and must reach this stack's daemon, not ~/.pm2.
    PM2_HOME: join(s.dataDir, 'pm2'),
    NODE_ENV: env.NODE_ENV || 'production',
  };
  const app = (name, service, extraEnv = {}) => ({
    name,
    script: join(ROOT, 'services', service, 'dist', 'main.js'),
    cwd: ROOT,
    exec_mode: 'fork',
    instances: 1,
    // The env below is complete; do not let pm2 merge the caller's full environment into it.
    filter_env: true,
    env: { ...common, ...extraEnv },
    // Services stop intake and persist in-flight work on SIGINT; pm2's default 1.6 s is too short.
    kill_timeout: 15000,
    // Services call process.send('ready') once their sockets are bound.
    wait_ready: true,
    listen_timeout: 30000,
    autorestart: true,
    exp_backoff_restart_delay: 200,
    max_restarts: 20,
    min_uptime: 10000,
    // stdout and stderr in one file per process, no pm2 prefixes: services log JSON lines.
    out_file: join(logs, `${name}.log`),
    error_file: join(logs, `${name}.log`),
    merge_logs: true,
    time: false,
    watch: false,
  });
  // sim and bus first: the venue and the events forwarder are what everything else connects to.
  return [
    app('sim', 'sim'),
    app('bus', 'bus'),
    app('scanner', 'scanner'),
    ...s.strategies.map((id) => app(`strategy:${id}`, 'strategy', { POLYBOT_STRATEGY: id })),
    app('executor', 'executor'),
    app('analytics', 'analytics'),
    app('api', 'api'),
  ];
}

module.exports = {
  apps: buildApps(),
};

// For packages/cli; pm2 ignores extra keys of a process file. Non-enumerable so `pm2 start` stays quiet.
Object.defineProperty(module.exports, 'buildApps', { value: buildApps, enumerable: false });
Object.defineProperty(module.exports, 'stackSettings', { value: stackSettings, enumerable: false });
Object.defineProperty(module.exports, 'SECRET_NAME', { value: SECRET_NAME, enumerable: false });
