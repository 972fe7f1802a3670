import type { RpcResult } from '@polybot/protocol';
import { ask } from './record.js';
import { resolveStack } from './stack.js';
import { CliError, out } from './ui.js';

function print(s: RpcResult<'risk.status'>): void {
  const eff = s.effective !== s.state ? ` (effective: ${s.effective})` : '';
  out(`trading ${s.state}${eff}${s.reason ? ` — ${s.reason}` : ''}`);
  out(`  open orders ${s.open_orders}, total exposure ${s.total_exposure} pUSD, realized today ${s.realized_today} pUSD`);
  const l = s.limits;
  out(
    `  limits: max_open_orders=${l.max_open_orders} max_market_exposure=${l.max_market_exposure} max_total_exposure=${l.max_total_exposure} max_daily_loss=${l.max_daily_loss} price_band=${l.price_band}`,
  );
}

const INT_LIMITS = new Set(['max_open_orders']);
const LIMIT_NAMES = new Set(['max_open_orders', 'max_market_exposure', 'max_total_exposure', 'max_daily_loss', 'price_band']);

/** `polybot trading status|halt|reduce|resume` and `polybot limits [name=value …]` over executor.rep. */
export async function tradingCommand(action: string, opts: { reason?: string; cancel?: boolean; json?: boolean }): Promise<void> {
  const stack = resolveStack();
  let s: RpcResult<'risk.status'>;
  switch (action) {
    case 'status':
      s = await ask(stack, 'executor', 'risk.status', {});
      break;
    case 'halt':
      s = await ask(stack, 'executor', 'trading.halt', { ...(opts.reason ? { reason: opts.reason } : {}), ...(opts.cancel ? { cancel_open: true } : {}) }, 15_000);
      break;
    case 'reduce':
      s = await ask(stack, 'executor', 'trading.reduce', opts.reason ? { reason: opts.reason } : {});
      break;
    case 'resume':
      s = await ask(stack, 'executor', 'trading.resume', {});
      break;
    default:
      throw new CliError(`unknown trading action "${action}": use status, halt, reduce or resume`);
  }
  if (opts.json) return out(JSON.stringify(s));
  print(s);
}

export async function limitsCommand(assignments: string[], opts: { json?: boolean }): Promise<void> {
  const stack = resolveStack();
  const patch: Record<string, string | number> = {};
  for (const a of assignments) {
    const m = /^([a-z_]+)=(.+)$/.exec(a);
    if (!m || !LIMIT_NAMES.has(m[1]!)) throw new CliError(`"${a}" is not name=value with a name among ${[...LIMIT_NAMES].join(', ')}`);
    patch[m[1]!] = INT_LIMITS.has(m[1]!) ? Number(m[2]) : m[2]!;
  }
  const s = Object.keys(patch).length === 0 ? await ask(stack, 'executor', 'risk.status', {}) : await ask(stack, 'executor', 'risk.set_limits', patch);
  if (opts.json) return out(JSON.stringify(s));
  print(s);
}
