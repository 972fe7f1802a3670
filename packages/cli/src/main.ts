#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '@polybot/core';
import { doctorCommand } from './doctor.js';
import { logsCommand } from './logs.js';
import { recordCommand } from './record.js';
import { replayCommand } from './replay.js';
import { limitsCommand, ordersCommand, tradingCommand } from './trading.js';
import { startCommand } from './start.js';
import { statusCommand } from './status.js';
import { stopCommand } from './stop.js';
import { CliError, err } from './ui.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

const names = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

const program = new Command('polybot')
  .description('Run and inspect a PolyBot stack (data dir from POLYBOT_DATA_DIR, default ./data)')
  .showHelpAfterError();

program
  .command('start')
  .description('start every service under pm2, wait until /api/health is ok and print the dashboard URL')
  .option('--only <names>', 'start only these processes (comma separated, e.g. sim,bus)', names)
  .option('--timeout <seconds>', 'how long to wait for the stack to become healthy', positiveInt, 90)
  .action((o: { only?: string[]; timeout: number }) => startCommand({ ...(o.only ? { only: o.only } : {}), timeoutS: o.timeout }));

program.command('stop').description('stop every service of this data dir and end its pm2 daemon').action(() => stopCommand());

program
  .command('status')
  .description('processes of this data dir (pm2) and the API health answer')
  .option('--json', 'print one JSON object')
  .action((o: { json?: boolean }) => statusCommand(o));

program
  .command('logs')
  .description('print the last lines of the log files (one process or all)')
  .argument('[name]', 'process name, e.g. api or strategy:threshold')
  .option('-n, --lines <n>', 'lines per file', positiveInt, 50)
  .option('-f, --follow', 'keep printing new lines')
  .action((name: string | undefined, o: { lines: number; follow?: boolean }) => logsCommand(name, o));

program
  .command('record')
  .description("control the scanner's recorder: raw venue frames and published events into data/recordings/<name>")
  .argument('<action>', 'start, stop, status or list')
  .option('--name <name>', 'recording name for start (default rec-<date>-<time>)')
  .option('--json', 'print JSON')
  .action((action: string, o: { name?: string; json?: boolean }) => recordCommand(action, o));

program
  .command('replay')
  .description('feed a recording through the scanner instead of the live feed (the rest of the system cannot tell)')
  .argument('[recording]', 'name under data/recordings, or a path')
  .option('--speed <x|max>', 'multiple of recorded time, or max for as fast as possible', '1')
  .option('--standalone', 'run a replay-only scanner in this process (when the stack is not running)')
  .option('--stop', 'stop the running replay')
  .action((recording: string | undefined, o: { speed: string; standalone?: boolean; stop?: boolean }) => replayCommand(recording, o));

program
  .command('trading')
  .description("the executor's trading state: status, halt (kill switch; --cancel also cancels open orders), reduce (reduce-only), resume")
  .argument('<action>', 'status, halt, reduce or resume')
  .option('--reason <text>', 'why (kept with the state)')
  .option('--cancel', 'with halt: cancel every open order too')
  .option('--json', 'print JSON')
  .action((action: string, o: { reason?: string; cancel?: boolean; json?: boolean }) => tradingCommand(action, o));

program
  .command('orders')
  .description("the executor's orders, newest first: open ones, or every one with --all")
  .option('--all', 'every order, not only open ones')
  .option('--strategy <name>', 'one strategy only')
  .option('--limit <n>', 'at most this many (default 50)')
  .option('--json', 'print JSON')
  .action((o: { all?: boolean; strategy?: string; limit?: string; json?: boolean }) => ordersCommand(o));

program
  .command('limits')
  .description('show or change the executor\'s risk limits at run time, e.g. polybot limits max_daily_loss=100 price_band=0.05')
  .argument('[assignments...]', 'name=value pairs')
  .option('--json', 'print JSON')
  .action((assignments: string[], o: { json?: boolean }) => limitsCommand(assignments, o));

program
  .command('doctor')
  .description('check Node, builds, data dir, socket paths, ports and Chromium')
  .action(async () => {
    if (!(await doctorCommand())) process.exitCode = 1;
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof ConfigError) {
    err(`polybot: ${e.message}\n(set the variables in the environment or in .env)`);
    process.exitCode = 2;
  } else if (e instanceof CliError) {
    err(`polybot: ${e.message}`);
    process.exitCode = e.exitCode;
  } else {
    err(`polybot: ${(e as Error)?.stack ?? String(e)}`);
    process.exitCode = 1;
  }
}
// pm2's client keeps reconnect timers alive after disconnect/killDaemon; every command is done here.
process.exit(process.exitCode ?? 0);
