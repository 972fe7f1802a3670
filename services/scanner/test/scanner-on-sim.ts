import { loadConfig } from '@polybot/core';
import type { RunningSim } from '../../sim/test/helpers.js';
import { ScannerConfig } from '../src/index.js';

/**
 * A scanner config pointed at an in-process simulator: quick reconnects, 4 assets per connection
 * (so a few markets span several shards), depth on every change, no RTDS or rounds.
 */
export function scannerOnSim(sim: RunningSim, dataDir: string, extra: Record<string, string> = {}): ScannerConfig {
  return loadConfig(ScannerConfig, {
    env: {
      POLYBOT_DATA_DIR: dataDir,
      POLYBOT_LOG_LEVEL: 'silent',
      POLYMARKET_GAMMA_URL: sim.base,
      POLYMARKET_CLOB_URL: sim.base,
      POLYMARKET_WS_URL: `ws://${sim.base.replace('http://', '')}`,
      POLYBOT_SCANNER_RECONNECT_MS: '20',
      POLYBOT_SCANNER_SHARD_SIZE: '4',
      POLYBOT_SCANNER_BOOK_INTERVAL_MS: '0',
      POLYBOT_SCANNER_RTDS: 'false',
      POLYBOT_SCANNER_ROUND_ASSETS: 'none',
      ...extra,
    },
    envFile: false,
  });
}
