import { loadConfigOrExit, runService } from '@polybot/core';
import { createScannerService, ScannerConfig } from './index.js';

const config = loadConfigOrExit(ScannerConfig);
await runService({ name: 'scanner', config, create: createScannerService });
