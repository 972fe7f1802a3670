import { loadConfigOrExit, runService } from '@polybot/core';
import { ApiConfig, createApiService } from './index.js';

const config = loadConfigOrExit(ApiConfig);
await runService({ name: 'api', config, create: createApiService });
