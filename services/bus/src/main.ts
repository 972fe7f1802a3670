import { loadConfigOrExit, runService } from '@polybot/core';
import { BusConfig, createBusService } from './index.js';

const config = loadConfigOrExit(BusConfig);
await runService({ name: 'bus', config, create: createBusService });
