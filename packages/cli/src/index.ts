// Library surface of the CLI for other tools and tests; `main.ts` is the command itself.
export { doctorCommand } from './doctor.js';
export { lastLines, logsCommand } from './logs.js';
export { clearStaleDaemonFiles, daemonPid, daemonRunning, pidAlive, Pm2Client } from './pm2.js';
export { listProcesses, selectApps, startCommand, type ProcRow } from './start.js';
export { fetchHealth, logFile, REPO_ROOT, resolveStack, type AppSpec, type HealthAnswer, type Stack } from './stack.js';
export { statusCommand } from './status.js';
export { stopCommand } from './stop.js';
export { ask, askScanner, recordCommand } from './record.js';
export { limitsCommand, tradingCommand } from './trading.js';
export { parseSpeed, replayCommand } from './replay.js';
