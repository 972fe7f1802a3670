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

function printVenue(v: RpcResult<'venue.status'>): void {
  const take = v.taking_signals ? 'taking signals' : 'NOT taking signals';
  out(`venue (${v.mode}) ${v.state}${v.reason ? ` — ${v.reason}` : ''}; ${take}${v.can_trade ? '' : `; new orders paused: ${v.can_trade_reason ?? ''}`}`);
  if (v.address) out(`  wallet ${v.address}${v.collateral !== undefined ? `, collateral ${v.collateral} pUSD` : ''}`);
  for (const m of v.balance_mismatches.slice(0, 10)) out(`  balance differs: ${m}`);
}

/** `polybot orders [--all] [--strategy s] [--limit n]`: the executor's orders, newest first (open ones by default). */
export async function ordersCommand(opts: { all?: boolean; strategy?: string; limit?: string; json?: boolean }): Promise<void> {
  const limit = opts.limit === undefined ? 50 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError(`--limit ${opts.limit} is not a whole number from 1 to 1000`);
  const stack = resolveStack();
  const r = await ask(stack, 'executor', 'orders.list', { ...(opts.all ? { all: true } : {}), ...(opts.strategy ? { strategy: opts.strategy } : {}), limit });
  if (opts.json) return out(JSON.stringify(r.orders));
  if (r.orders.length === 0) return out(opts.all ? 'no orders' : 'no open orders (--all lists every order)');
  for (const o of r.orders) {
    const when = new Date(o.created_at).toISOString().replace('T', ' ').slice(0, 19);
    out(`${when}  ${o.strategy}  ${o.side} ${o.size} @ ${o.price} ${o.order_type}  filled ${o.filled}  ${o.status}${o.reason ? ` — ${o.reason}` : ''}  ${o.order_id.slice(0, 12)}…`);
  }
}

const INT_LIMITS = new Set(['max_open_orders']);
const LIMIT_NAMES = new Set(['max_open_orders', 'max_market_exposure', 'max_total_exposure', 'max_daily_loss', 'price_band']);

/** `polybot trading status|halt|reduce|resume` and `polybot limits [name=value …]` over executor.rep. */
export async function tradingCommand(action: string, opts: { reason?: string; cancel?: boolean; json?: boolean }): Promise<void> {
  const stack = resolveStack();
  let s: RpcResult<'risk.status'>;
  switch (action) {
    case 'status': {
      s = await ask(stack, 'executor', 'risk.status', {});
      const v = await ask(stack, 'executor', 'venue.status', {});
      if (opts.json) return out(JSON.stringify({ ...s, venue: v }));
      print(s);
      printVenue(v);
      return;
    }
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
