import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import Type from 'typebox';
import { BusSubscriber, Forwarder, resolveEndpoints } from '@polybot/bus';
import type { StatusMessage } from '@polybot/protocol';
import { tempDataDir, waitFor } from '@polybot/testkit';
import {
  BaseConfig,
  ConfigError,
  createLogger,
  loadConfig,
  migrate,
  openDatabase,
  serviceConfig,
  ServiceRunner,
  venueUrls,
} from '../src/index.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('config', () => {
  it('applies defaults, converts types and freezes', () => {
    const cfg = loadConfig(BaseConfig, { env: { POLYBOT_API_PORT: '9001' }, envFile: false });
    expect(cfg.POLYBOT_API_PORT).toBe(9001);
    expect(cfg.POLYBOT_DATA_DIR).toBe('./data');
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(venueUrls(cfg).gamma).toBe('http://127.0.0.1:8100');
    expect(venueUrls({ ...cfg, POLYBOT_VENUE: 'polymarket' }).clob).toBe('https://clob.polymarket.com');
  });

  it('names every bad variable and hides secret values', () => {
    const schema = serviceConfig({ POLYBOT_PRIVATE_KEY: Type.String({ pattern: '^0x[0-9a-f]{64}$' }) });
    let err: unknown;
    try {
      loadConfig(schema, { env: { POLYBOT_API_PORT: 'eighty', POLYBOT_VENUE: 'kraken', POLYBOT_PRIVATE_KEY: 'hunter2' }, envFile: false });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/POLYBOT_API_PORT/);
    expect(msg).toMatch(/POLYBOT_VENUE/);
    expect(msg).toMatch(/POLYBOT_PRIVATE_KEY/);
    expect(msg).not.toMatch(/hunter2/);
  });

  it('reads .env under the process environment', () => {
    const tmp = tempDataDir();
    cleanups.push(tmp.cleanup);
    const file = join(tmp.dir, '.env');
    writeFileSync(file, 'POLYBOT_API_PORT=7000\nPOLYBOT_SIM_PORT=7100\n');
    const cfg = loadConfig(BaseConfig, { env: { POLYBOT_SIM_PORT: '7200' }, envFile: file });
    expect(cfg.POLYBOT_API_PORT).toBe(7000);
    expect(cfg.POLYBOT_SIM_PORT).toBe(7200);
  });
});

describe('sqlite', () => {
  it('migrates once per owner and version', () => {
    const tmp = tempDataDir();
    cleanups.push(tmp.cleanup);
    const db = openDatabase(join(tmp.dir, 'x.db'));
    cleanups.push(() => db.close());
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const m = [{ version: 1, name: 'init', sql: 'CREATE TABLE a (x INTEGER)' }, { version: 2, name: 'b', sql: 'CREATE TABLE b (y INTEGER)' }];
    expect(migrate(db, 'one', m)).toBe(2);
    expect(migrate(db, 'one', m)).toBe(0);
    expect(migrate(db, 'two', [{ version: 1, name: 'init', sql: 'CREATE TABLE c (z INTEGER)' }])).toBe(1);
    expect(() => migrate(db, 'three', [{ version: 1, name: 'bad', sql: 'CREATE TABLE a (x INTEGER)' }])).toThrow();
    const rows = db.prepare('SELECT owner, version FROM schema_migrations ORDER BY owner, version').all();
    expect(rows).toEqual([{ owner: 'one', version: 1 }, { owner: 'one', version: 2 }, { owner: 'two', version: 1 }]);
  });
});

describe('logger', () => {
  it('redacts secrets', async () => {
    const lines: string[] = [];
    const dest = new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } });
    const log = createLogger('t', { destination: dest });
    log.info({ privateKey: '0xdeadbeef', creds: { secret: 's3cr3t', passphrase: 'pp' }, headers: { authorization: 'Bearer x' } }, 'hello');
    await new Promise((r) => setImmediate(r));
    const out = lines.join('');
    expect(out).toContain('hello');
    expect(out).not.toMatch(/deadbeef|s3cr3t|"pp"|Bearer/);
  });
});

describe('service lifecycle', () => {
  it('publishes starting → running → stopping → stopped with metrics', async () => {
    const tmp = tempDataDir();
    cleanups.push(tmp.cleanup);
    const ep = resolveEndpoints(tmp.dir);
    const fwd = new Forwarder({ frontend: ep['events.in'], backend: ep['events.pub'] });
    await fwd.start();
    cleanups.push(() => fwd.stop());
    const seen: StatusMessage[] = [];
    const sub = new BusSubscriber({ endpoints: [ep['events.pub']], topics: ['status.demo'], onMessage: (m) => void seen.push(m as StatusMessage) });
    sub.start();
    cleanups.push(() => sub.close());
    const config = loadConfig(BaseConfig, { env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_STATUS_INTERVAL_MS: '100', POLYBOT_LOG_LEVEL: 'silent' }, envFile: false });
    let started = false;
    const runner = new ServiceRunner({
      name: 'demo', config,
      create: () => ({
        start: async () => { started = true; },
        stop: async () => {},
        metrics: () => ({ widgets: 7 }),
      }),
    });
    await runner.start();
    expect(started).toBe(true);
    await waitFor(() => seen.some((s) => s.state === 'running' && s.metrics.widgets === 7), { what: 'running status' });
    await runner.stop();
    expect(runner.currentState).toBe('stopped');
  });

  it('reports faulted when start fails', async () => {
    const tmp = tempDataDir();
    cleanups.push(tmp.cleanup);
    const config = loadConfig(BaseConfig, { env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_LOG_LEVEL: 'silent' }, envFile: false });
    const runner = new ServiceRunner({ name: 'bad', config, create: () => ({ start: async () => { throw new Error('no venue'); }, stop: async () => {} }) });
    await expect(runner.start()).rejects.toThrow('no venue');
    expect(runner.currentState).toBe('faulted');
    await runner.stop();
  });
});
