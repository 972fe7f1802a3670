import { loadConfigOrExit, runService } from '@polybot/core';
import { AnalyticsConfig, createAnalyticsService } from './index.js';

const config = loadConfigOrExit(AnalyticsConfig);
await runService({ name: 'analytics', config, create: createAnalyticsService });
