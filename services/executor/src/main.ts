import { loadConfigOrExit, runService } from '@polybot/core';
import { createExecutorService, ExecutorConfig } from './index.js';

const config = loadConfigOrExit(ExecutorConfig);
await runService({ name: 'executor', config, create: createExecutorService });
