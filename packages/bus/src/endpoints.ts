import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Every socket of the system; see the brief's process table. */
export const ENDPOINT_NAMES = [
  'prices.pub',
  'events.in',
  'events.pub',
  'signals.push',
  'logs.push',
  'scanner.rep',
  'executor.rep',
  'analytics.rep',
] as const;
export type EndpointName = (typeof ENDPOINT_NAMES)[number];
export type Endpoints = Record<EndpointName, string>;

/** Env var that overrides one endpoint, e.g. `POLYBOT_ENDPOINT_PRICES_PUB=tcp://10.0.0.2:5555`. */
export function endpointEnvVar(name: EndpointName): string {
  return `POLYBOT_ENDPOINT_${name.replace(/\./g, '_').toUpperCase()}`;
}

export function ipcDir(dataDir: string): string {
  return join(resolve(dataDir), 'ipc');
}

/** Defaults to `ipc://<data dir>/ipc/<name>`; any endpoint may be overridden from the environment. */
export function resolveEndpoints(dataDir: string, env: Record<string, string | undefined> = {}): Endpoints {
  const dir = ipcDir(dataDir);
  const out = {} as Endpoints;
  for (const name of ENDPOINT_NAMES) {
    const override = env[endpointEnvVar(name)];
    out[name] = override && override.length > 0 ? override : `ipc://${join(dir, name)}`;
  }
  return out;
}

// Unix socket paths are limited to 107 bytes on Linux.
const MAX_IPC_PATH = 107;

/** Creates the directory of an ipc endpoint with mode 0700 so other users cannot reach our sockets. */
export function prepareEndpoint(endpoint: string): void {
  if (!endpoint.startsWith('ipc://')) return;
  const path = endpoint.slice('ipc://'.length);
  if (Buffer.byteLength(path) > MAX_IPC_PATH) {
    throw new Error(`ipc path ${path} is longer than ${MAX_IPC_PATH} bytes; use a shorter POLYBOT_DATA_DIR or tcp:// endpoints`);
  }
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}
