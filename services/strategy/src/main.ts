import { ConfigError, loadConfigOrExit, runService } from '@polybot/core';
import { createStrategyHost, resolveStrategy, StrategyHostConfig } from './index.js';

const config = loadConfigOrExit(StrategyHostConfig);
try {
  // Validate the strategy and its config before starting, so a typo exits 2 with the field named.
  resolveStrategy(config);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
await runService({ name: `strategy:${config.POLYBOT_STRATEGY}`, config, create: createStrategyHost });
