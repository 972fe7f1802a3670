import { PostOrderBody, type OrderResponse } from '@polybot/polymarket';
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import Type from 'typebox';
import Compile from 'typebox/compile';
import { authSettings, requireL2 } from '../auth.js';
import { EXCHANGE_ADDRESS, MAX_ALLOWANCE } from '../exchange.js';
import type { ServerDeps } from '../server.js';
import { verifyOrder } from '../verify-order.js';
import { BadRequest, one, type Query } from './util.js';

const checkOrder = Compile(PostOrderBody);
const checkCancelOne = Compile(Type.Object({ orderID: Type.String({ minLength: 1, maxLength: 200 }) }));
const checkCancelMany = Compile(Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 3000 }));
const checkCancelMarket = Compile(
  Type.Object({ market: Type.Optional(Type.String({ maxLength: 200 })), asset_id: Type.Optional(Type.String({ maxLength: 200 })) }),
);

/** Orders one `POST /orders` may carry (the venue's limit is unconfirmed; beyond it → 400). */
export const MAX_BATCH = 15;

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
/** Offset cursors as the venue spells them: base64 of the decimal offset; "LTE=" (= "-1") ends a listing. */
const START_CURSOR = 'MA==';
const END_CURSOR = 'LTE=';
const DEFAULT_PAGE = 100;
const MAX_PAGE = 500;

const UNAUTHORIZED = { error: 'Unauthorized/Invalid api key' };

/** The authenticated account, else the `POLY_ADDRESS` header (auth off); lower case. */
function callerOf(req: FastifyRequest): string | undefined {
  if (req.auth?.address) return req.auth.address.toLowerCase();
  const h = req.headers['poly_address'];
  const v = Array.isArray(h) ? h[0] : h;
  return v && ADDRESS_RE.test(v) ? v.toLowerCase() : undefined;
}

/** Page `items` from an offset cursor. */
function page<T>(items: T[], q: Query): { limit: number; count: number; next_cursor: string; data: T[] } {
  const cursor = one(q, 'next_cursor') || START_CURSOR;
  if (cursor === END_CURSOR) return { limit: 0, count: 0, next_cursor: END_CURSOR, data: [] };
  const text = Buffer.from(cursor, 'base64').toString('utf8');
  if (!/^\d{1,9}$/.test(text)) throw new BadRequest('invalid next_cursor');
  const offset = Number(text);
  const lim = one(q, 'limit');
  if (lim !== undefined && !/^[1-9]\d{0,3}$/.test(lim)) throw new BadRequest('limit must be a positive integer');
  const limit = Math.min(lim === undefined ? DEFAULT_PAGE : Number(lim), MAX_PAGE);
  const data = items.slice(offset, offset + limit);
  const end = offset + limit >= items.length;
  return { limit, count: data.length, next_cursor: end ? END_CURSOR : Buffer.from(String(offset + limit)).toString('base64'), data };
}

function seconds(q: Query, key: string): number | undefined {
  const v = one(q, key);
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,12}$/.test(v)) throw new BadRequest(`${key} must be unix seconds`);
  return Number(v);
}

const schemaError = (reply: FastifyReply, what: string, e: { instancePath?: string; message?: string } | undefined) =>
  reply.code(400).send({ error: `Invalid ${what}${e ? `: ${e.instancePath || '/'} ${e.message}` : ''}` });

/** Private CLOB REST: orders, cancels, order and trade queries, balances. */
export function registerTradingRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { exchange } = deps;
  const settings = authSettings(deps.config);
  const l2 = requireL2(deps.auth, settings);
  // With auth off a bare POLY_ADDRESS header names the caller; full L2 headers are still checked.
  const preHandler: preHandlerAsyncHookHandler = async function (this: FastifyInstance, req, reply) {
    if (!settings.required && req.headers['poly_api_key'] === undefined) return;
    return l2.call(this, req, reply);
  };
  /** The caller, or a 401 already sent. */
  const caller = (req: FastifyRequest, reply: FastifyReply): string | undefined => {
    const c = callerOf(req);
    if (!c) void reply.code(401).send(UNAUTHORIZED);
    return c;
  };

  /**
   * Verifies and places one schema-valid order: with auth on, the venue's checks (EIP-712 signature,
   * signer = API key, expiration) and the EIP-712 hash as order id. A failed check is
   * `{ httpStatus, error }`, else the engine's OrderResponse.
   */
  const placeOne = (body: PostOrderBody, address: string | undefined): OrderResponse | { httpStatus: number; error: string } => {
    if (settings.required) {
      const negRisk = exchange.marketOfToken(body.order.tokenId)?.negRisk ?? false;
      const v = verifyOrder(body, { negRisk, now: Date.now(), ...(address ? { callerAddress: address } : {}) });
      if (!v.ok) {
        deps.onInvalidOrder?.();
        return { httpStatus: v.httpStatus, error: v.errorMsg };
      }
      return exchange.postOrder(body, { orderId: v.orderId, ...(address ? { address } : {}) });
    }
    return exchange.postOrder(body, address ? { address } : {});
  };

  app.post('/order', { preHandler }, async (req, reply) => {
    const body: unknown = req.body;
    if (!checkOrder.Check(body)) {
      deps.onInvalidOrder?.();
      return schemaError(reply, 'order payload', checkOrder.Errors(body)[0]);
    }
    const res = placeOne(body, callerOf(req));
    if ('httpStatus' in res) return reply.code(res.httpStatus).send({ error: res.error });
    return res;
  });

  // Batch: up to MAX_BATCH orders, each verified and placed on its own, in order; the answer has
  // one OrderResponse per element. An element that fails the schema or the signature checks is
  // answered `success:false` with the message `POST /order` would give, and the others go on.
  app.post('/orders', { preHandler }, async (req, reply) => {
    const body: unknown = req.body;
    if (!Array.isArray(body)) {
      deps.onInvalidOrder?.();
      return reply.code(400).send({ error: 'Invalid order payload: expected a JSON array of orders' });
    }
    if (body.length === 0) return reply.code(400).send({ error: 'Invalid order payload: no orders' });
    if (body.length > MAX_BATCH) {
      return reply.code(400).send({ error: `Invalid order payload: too many orders in one request (${body.length}), at most ${MAX_BATCH}` });
    }
    const address = callerOf(req);
    return body.map((el: unknown): OrderResponse => {
      if (!checkOrder.Check(el)) {
        deps.onInvalidOrder?.();
        const e = checkOrder.Errors(el)[0];
        return { success: false, errorMsg: `Invalid order payload${e ? `: ${e.instancePath || '/'} ${e.message}` : ''}`, orderID: null };
      }
      const res = placeOne(el, address);
      return 'httpStatus' in res ? { success: false, errorMsg: res.error, orderID: null } : res;
    });
  });

  app.delete('/order', { preHandler }, async (req, reply) => {
    const who = caller(req, reply);
    if (!who) return reply;
    const body: unknown = req.body;
    if (!checkCancelOne.Check(body)) return schemaError(reply, 'payload', checkCancelOne.Errors(body)[0]);
    return exchange.cancelOrder(who, body.orderID);
  });

  app.delete('/orders', { preHandler }, async (req, reply) => {
    const who = caller(req, reply);
    if (!who) return reply;
    const body: unknown = req.body;
    if (!checkCancelMany.Check(body)) return schemaError(reply, 'payload', checkCancelMany.Errors(body)[0]);
    return exchange.cancelOrders(who, body);
  });

  app.delete('/cancel-all', { preHandler }, async (req, reply) => {
    const who = caller(req, reply);
    if (!who) return reply;
    return exchange.cancelAll(who);
  });

  app.delete('/cancel-market-orders', { preHandler }, async (req, reply) => {
    const who = caller(req, reply);
    if (!who) return reply;
    const body: unknown = req.body ?? {};
    if (!checkCancelMarket.Check(body)) return schemaError(reply, 'payload', checkCancelMarket.Errors(body)[0]);
    return exchange.cancelMarketOrders(who, {
      ...(body.market ? { market: body.market } : {}),
      ...(body.asset_id ? { assetId: body.asset_id } : {}),
    });
  });

  app.get('/data/order/:id', { preHandler }, async (req, reply) => {
    const who = caller(req, reply);
    if (!who) return reply;
    const o = exchange.getOrder(who, (req.params as { id: string }).id);
    if (!o) return reply.code(404).send({ error: 'order not found' });
    return o;
  });

  app.get('/data/orders', { preHandler }, async (req, reply) => {
    const who = caller(req, reply);
    if (!who) return reply;
    const q = req.query as Query;
    const id = one(q, 'id');
    const market = one(q, 'market');
    const assetId = one(q, 'asset_id');
    const orders = exchange.openOrders(who, { ...(id ? { id } : {}), ...(market ? { market } : {}), ...(assetId ? { assetId } : {}) });
    return page(orders, q);
  });

  app.get('/data/trades', { preHandler }, async (req, reply) => {
    const who = caller(req, reply);
    if (!who) return reply;
    const q = req.query as Query;
    const id = one(q, 'id');
    const market = one(q, 'market');
    const assetId = one(q, 'asset_id');
    const before = seconds(q, 'before');
    const after = seconds(q, 'after');
    const makerAddress = one(q, 'maker_address');
    if (makerAddress && makerAddress.toLowerCase() !== who) return page([], q);
    const trades = exchange.tradesOf(who, {
      ...(id ? { id } : {}),
      ...(market ? { market } : {}),
      ...(assetId ? { assetId } : {}),
      ...(before !== undefined ? { before } : {}),
      ...(after !== undefined ? { after } : {}),
    });
    return page(trades, q);
  });

  const balanceAllowance = async (req: FastifyRequest, reply: FastifyReply) => {
    const who = caller(req, reply);
    if (!who) return reply;
    const q = req.query as Query;
    const type = one(q, 'asset_type') ?? 'COLLATERAL';
    let balance: bigint;
    if (type === 'COLLATERAL') {
      exchange.ensureAccount(who);
      balance = exchange.availableBalance(who);
    } else if (type === 'CONDITIONAL') {
      const tokenId = one(q, 'token_id');
      if (!tokenId) return reply.code(400).send({ error: 'Invalid payload: token_id is required for CONDITIONAL' });
      exchange.ensureAccount(who);
      balance = exchange.availableBalance(who, tokenId);
    } else {
      return reply.code(400).send({ error: 'Invalid payload: asset_type must be COLLATERAL or CONDITIONAL' });
    }
    return { balance: (balance < 0n ? 0n : balance).toString(), allowances: { [EXCHANGE_ADDRESS]: MAX_ALLOWANCE } };
  };
  app.get('/balance-allowance', { preHandler }, balanceAllowance);
  app.get('/balance-allowance/update', { preHandler }, balanceAllowance);
}
