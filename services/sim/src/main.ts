import { loadConfigOrExit, runService } from '@polybot/core';
import { SimConfig, createSimService } from './index.js';

const config = loadConfigOrExit(SimConfig);
await runService({ name: 'sim', config, create: createSimService });
