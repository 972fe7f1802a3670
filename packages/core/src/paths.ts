import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface DataPaths {
  root: string;
  ipc: string;
  polybotDb: string;
  analyticsDb: string;
  strategyLogsDb: string;
  recordings: string;
  backtests: string;
  keys: string;
  pm2Home: string;
  logs: string;
}

export function dataPaths(dataDir: string): DataPaths {
  const root = resolve(dataDir);
  return {
    root,
    ipc: join(root, 'ipc'),
    polybotDb: join(root, 'polybot.db'),
    analyticsDb: join(root, 'analytics.duckdb'),
    strategyLogsDb: join(root, 'strategy_logs.duckdb'),
    recordings: join(root, 'recordings'),
    backtests: join(root, 'backtests'),
    keys: join(root, 'keys'),
    pm2Home: join(root, 'pm2'),
    logs: join(root, 'logs'),
  };
}

export function ensureDir(path: string, mode = 0o755): string {
  mkdirSync(path, { recursive: true, mode });
  return path;
}
