import { toMicros } from '@polybot/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DataApi, type DataApiOptions, type TraderDirectory } from '../data-api.js';
import type { Exchange } from '../exchange.js';
import { BadRequest, bool, int, list, one, type Query } from './util.js';

export interface DataApiDeps {
  exchange: Exchange;
  /** The simulated traders (names in `/trades`, the `/traders` list); absent = none. */
  traders?: TraderDirectory | undefined;
  /** See DataApiOptions.includeUnmined. */
  dataIncludeUnmined?: boolean;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const CONDITION = /^0x[0-9a-fA-F]{64}$/;
const DECIMAL = /^\d{1,12}(\.\d{1,6})?$/;

function user(q: Query): string {
  const u = one(q, 'user');
  if (u === undefined || u === '') throw new BadRequest('user is required');
  if (!ADDRESS.test(u)) throw new BadRequest('user must be an address (0x followed by 40 hex digits)');
  return u.toLowerCase();
}

function markets(q: Query): string[] | undefined {
  const ms = list(q, 'market');
  if (ms === undefined) return undefined;
  for (const m of ms) if (!CONDITION.test(m)) throw new BadRequest('market must be condition ids (0x followed by 64 hex digits), comma separated');
  return ms.map((m) => m.toLowerCase());
}

/**
 * The Data API (POLYMARKET_DATA_URL) on the simulator's port: `GET /trades`, `GET /positions`
 * (public Data API shapes, any wallet) and `GET /traders` (a simulator extension). Unknown wallets
 * get `[]`; malformed parameters 400 `{"error"}`.
 */
/** Runs a handler; a BadRequest becomes 400 `{"error"}` whatever error handler the app has. */
function handle<T>(fn: (q: Query) => T) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      return fn(req.query as Query);
    } catch (err) {
      if (err instanceof BadRequest) return reply.code(400).send({ error: err.message });
      throw err;
    }
  };
}

export function registerDataApi(app: FastifyInstance, deps: DataApiDeps): void {
  const opts: DataApiOptions = {};
  if (deps.traders) opts.traders = deps.traders;
  if (deps.dataIncludeUnmined !== undefined) opts.includeUnmined = deps.dataIncludeUnmined;
  const api = new DataApi(deps.exchange, opts);

  app.get(
    '/trades',
    handle((q) => {
    const side = one(q, 'side')?.toUpperCase();
    if (side !== undefined && side !== '' && side !== 'BUY' && side !== 'SELL') throw new BadRequest('side must be BUY or SELL');
    const m = markets(q);
    return api.trades({
      user: user(q),
      ...(m ? { market: m } : {}),
      ...(side === 'BUY' || side === 'SELL' ? { side } : {}),
      takerOnly: bool(q, 'takerOnly') ?? true,
      limit: int(q, 'limit', 100, 10_000),
      offset: int(q, 'offset', 0, 10_000),
    });
    }),
  );

  app.get(
    '/positions',
    handle((q) => {
    const t = one(q, 'sizeThreshold');
    if (t !== undefined && t !== '' && !DECIMAL.test(t)) throw new BadRequest('sizeThreshold must be a non-negative number');
    const m = markets(q);
    const redeemable = bool(q, 'redeemable');
    const mergeable = bool(q, 'mergeable');
    return api.positions({
      user: user(q),
      ...(m ? { market: m } : {}),
      sizeThreshold: t === undefined || t === '' ? 1_000_000n : toMicros(t),
      ...(redeemable !== undefined ? { redeemable } : {}),
      ...(mergeable !== undefined ? { mergeable } : {}),
      limit: int(q, 'limit', 100, 500),
      offset: int(q, 'offset', 0, 10_000),
    });
    }),
  );

  // Simulator extension (no such route on the real Data API): the simulated wallets, to pick whom to follow.
  app.get('/traders', async () => api.traders());
}
