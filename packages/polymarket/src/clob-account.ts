/**
 * The account side of the CLOB REST API that reconciliation needs (PROTOCOL.md §3): open orders,
 * one order by id, trades, the four cancel routes, balances and `/version`.
 *
 * Contract with the executor's retry layer:
 *  - Every read is safe to repeat: it changes nothing at the venue.
 *  - Every cancel is idempotent at the venue: cancelling an order that is already gone answers it
 *    under `not_canceled` (e.g. "already canceled or matched") and changes nothing, so a cancel whose
 *    answer was lost may simply be sent again.
 *  - Failures throw one error class, `ClobAccountError`, whose `retryable` says whether the same call
 *    could succeed later (network, timeout, 425, 429, 5xx) and `retryAfterMs` when the venue said how long.
 *
 * Money and sizes stay the venue's exact decimal strings; nothing here turns them into floats.
 * Credentials live only inside the `authHeaders` callback: they are never stored, logged or put into
 * an error message (the venue's own error text is scrubbed of every header value sent).
 */
import Type, { type Static } from 'typebox';
import Compile from 'typebox/compile';
import { describeError, errorCodes, retryAfterMs, type ErrLike } from './http-errors.js';
import { CancelResponse, MakerOrderFill, OpenOrder, Paged, WsUserTrade } from './schemas.js';

// ---------------------------------------------------------------- shapes not (yet) in schemas.ts

/**
 * One element of `GET /data/trades`: the user-channel trade without `event_type`/`type`, plus
 * `match_time_nano` and `err_msg`. `status` is any non-empty string because REST listings also use
 * `TRADE_STATUS_CONFIRMED` and `MATCHED_NOT_BROADCASTED` (PROTOCOL.md §2); `timestamp` and
 * `bucket_index` are absent from clob-client-v2's `Trade`, so they are optional here.
 */
export const ClobTrade = Type.Intersect([
  Type.Omit(WsUserTrade, ['event_type', 'type', 'status', 'timestamp', 'maker_orders']),
  Type.Object({
    status: Type.String({ minLength: 1, maxLength: 200 }),
    timestamp: Type.Optional(Type.String()),
    maker_orders: Type.Array(MakerOrderFill),
    match_time_nano: Type.Optional(Type.String()),
    err_msg: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  }),
]);
export type ClobTrade = Static<typeof ClobTrade>;

/** `GET /balance-allowance`: `balance` in 6-decimal base units (an integer string), allowances per spender. */
export const BalanceAllowance = Type.Object({
  balance: Type.String({ pattern: '^[0-9]+$', maxLength: 80 }),
  allowances: Type.Optional(Type.Record(Type.String(), Type.String())),
});
export type BalanceAllowance = Static<typeof BalanceAllowance>;

const VersionBody = Type.Object({ version: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) });

const checkPage = Compile(Paged(Type.Unknown()));
const checkOpenOrder = Compile(OpenOrder);
const checkTrade = Compile(ClobTrade);
const checkCancel = Compile(CancelResponse);
const checkBalance = Compile(BalanceAllowance);
const checkVersion = Compile(VersionBody);

/** Cursors as the venue spells them: base64 "0" starts a listing, base64 "-1" ends it. */
const START_CURSOR = 'MA==';
const END_CURSOR = 'LTE=';

// ---------------------------------------------------------------- errors

export type ClobAccountErrorCode =
  /** No answer within the deadline; the venue may or may not have acted (harmless for reads and cancels). */
  | 'timeout'
  /** The connection failed or broke. */
  | 'network'
  /** The caller's AbortSignal fired. */
  | 'aborted'
  /** 429: throttled; honour `retryAfterMs`. */
  | 'rate_limited'
  /** 425: the matching engine is restarting. */
  | 'too_early'
  /** 5xx (including 503 cancel-only / trading disabled: read `venueMessage`). */
  | 'server_error'
  /** 401/403: the API key or the HMAC was refused; repeating cannot help. */
  | 'unauthorized'
  /** Any other 4xx: the request itself is wrong. */
  | 'rejected'
  /** A 2xx whose body is not the documented shape. */
  | 'bad_body'
  /** A listing that does not end (cursor repeats or exceeds `maxPages`). */
  | 'paging';

/** One error for every failed account call. Its message names the method and path, never a credential. */
export class ClobAccountError extends Error {
  override readonly name = 'ClobAccountError';
  readonly method: string;
  readonly path: string;
  readonly code: ClobAccountErrorCode;
  readonly status: number | undefined;
  /** Whether the same call may succeed later: network, timeout, 408, 425, 429 and 5xx. */
  readonly retryable: boolean;
  /** From `Retry-After` (seconds or an HTTP date), when the venue sent one. */
  readonly retryAfterMs: number | undefined;
  /** The venue's error text (`error` / `errorMsg` / `error_msg`), scrubbed and cut to 300 characters. */
  readonly venueMessage: string | undefined;

  constructor(
    init: {
      method: string;
      path: string;
      code: ClobAccountErrorCode;
      detail: string;
      status?: number;
      retryable?: boolean;
      retryAfterMs?: number;
      venueMessage?: string;
    },
    options?: { cause?: unknown },
  ) {
    super(`${init.method} ${init.path}: ${init.detail}`, options);
    this.method = init.method;
    this.path = init.path;
    this.code = init.code;
    this.status = init.status;
    this.retryable = init.retryable ?? false;
    this.retryAfterMs = init.retryAfterMs;
    this.venueMessage = init.venueMessage;
  }
}

// ---------------------------------------------------------------- the HTTP exchange (shared with heartbeat.ts)

/** Produces the L2 headers of one request (e.g. `buildL2Headers`); called with the exact body text. */
export type AuthHeadersFn = (method: string, path: string, body: string) => Record<string, string>;

export interface ClobRequest {
  baseUrl: string;
  method: 'GET' | 'POST' | 'DELETE';
  /** Path only; this is what the HMAC covers. */
  path: string;
  query?: Record<string, string | undefined>;
  /** JSON-serialised once; the same text is signed and sent. */
  body?: unknown;
  authHeaders?: AuthHeadersFn;
  fetch: typeof fetch;
  /** Aborts the request; a reason named `TimeoutError` is reported as `timeout`, any other as `aborted`. */
  signal: AbortSignal;
}

export interface ClobAnswer {
  status: number;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  json: unknown;
  text: string;
  headers: Headers;
  /**
   * Removes every header value sent from a text before it is quoted in an error or a log. A
   * function rather than the values themselves, so an answer that gets logged leaks nothing.
   */
  redact: (text: string) => string;
}

/** Replaces every sent header value (long enough to be a secret) found in `text`. */
function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 6) out = out.split(s).join('[redacted]');
  return out;
}

/** The venue's error text from a JSON body, else the raw text. */
function venueText(a: ClobAnswer): string {
  if (a.json && typeof a.json === 'object') {
    const o = a.json as Record<string, unknown>;
    for (const k of ['error', 'errorMsg', 'error_msg', 'message']) {
      if (typeof o[k] === 'string' && o[k] !== '') return a.redact(o[k] as string).slice(0, 300);
    }
  }
  return a.redact(a.text.trim()).slice(0, 300);
}

/** Sends one request. Throws `ClobAccountError` (timeout / aborted / network) when there is no answer. */
export async function sendClobRequest(req: ClobRequest): Promise<ClobAnswer> {
  const text = req.body === undefined ? '' : JSON.stringify(req.body);
  const auth = req.authHeaders?.(req.method, req.path, text) ?? {};
  const secrets = Object.values(auth);
  const headers: Record<string, string> = { accept: 'application/json', ...auth };
  if (text !== '') headers['content-type'] = 'application/json';
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) qs.set(k, v);
  const url = `${req.baseUrl.replace(/\/+$/, '')}${req.path}${qs.toString() ? `?${qs.toString()}` : ''}`;
  const fail = (err: unknown, what: 'request' | 'body'): ClobAccountError => {
    const reason: unknown = req.signal.aborted ? req.signal.reason : undefined;
    const isTimeout = (reason as ErrLike | undefined)?.name === 'TimeoutError' || (err as ErrLike).name === 'TimeoutError';
    const base = { method: req.method, path: req.path };
    if (isTimeout) return new ClobAccountError({ ...base, code: 'timeout', detail: `no ${what === 'body' ? 'complete answer' : 'answer'} in time`, retryable: true });
    if (req.signal.aborted) return new ClobAccountError({ ...base, code: 'aborted', detail: 'aborted by the caller' });
    const codes = errorCodes(err);
    // Only the error's own text is quoted: undici errors never carry request headers, but scrub anyway.
    const detail = scrub(`${what === 'body' ? 'answer cut off' : 'network error'}${codes[0] ? ` (${codes[0]})` : ''}: ${describeError(err, 300)}`, secrets);
    return new ClobAccountError({ ...base, code: 'network', detail, retryable: true }, { cause: err });
  };
  let res: Response;
  try {
    res = await req.fetch(url, { method: req.method, headers, ...(text === '' ? {} : { body: text }), signal: req.signal });
  } catch (err) {
    throw fail(err, 'request');
  }
  let resText: string;
  try {
    resText = await res.text();
  } catch (err) {
    throw fail(err, 'body');
  }
  let json: unknown;
  try {
    json = resText === '' ? undefined : JSON.parse(resText);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text: resText, headers: res.headers, redact: (t) => scrub(t, secrets) };
}

/** The error for a non-2xx answer, classified as the executor's retry layer needs it. */
export function answerError(method: string, path: string, a: ClobAnswer, nowMs: number): ClobAccountError {
  const s = a.status;
  const msg = venueText(a);
  const ra = retryAfterMs(a.headers.get('retry-after'), nowMs);
  let code: ClobAccountErrorCode;
  if (s === 429) code = 'rate_limited';
  else if (s === 425) code = 'too_early';
  else if (s >= 500) code = 'server_error';
  else if (s === 401 || s === 403) code = 'unauthorized';
  else code = 'rejected';
  const retryable = s === 408 || s === 425 || s === 429 || s >= 500;
  return new ClobAccountError({
    method,
    path,
    code,
    status: s,
    retryable,
    detail: `HTTP ${s}${msg ? ` ${msg}` : ''}`,
    ...(ra === undefined ? {} : { retryAfterMs: ra }),
    ...(msg ? { venueMessage: msg } : {}),
  });
}

// ---------------------------------------------------------------- the client

export interface ClobAccountOptions {
  baseUrl: string;
  /** L2 headers per request, e.g. `(m, p, b) => ({ ...buildL2Headers(creds, address, { method: m, requestPath: p, body: b }) })`. */
  authHeaders: AuthHeadersFn;
  /** Deadline of each HTTP request (one page of a listing). Default 10 s. */
  timeoutMs?: number;
  /**
   * Sent as `limit` on listings. The simulator honours it; the venue does not document it, so
   * leave it unset against Polymarket.
   */
  pageSize?: number;
  /** A listing longer than this many pages throws `paging` rather than loop forever. Default 1000. */
  maxPages?: number;
  fetch?: typeof fetch;
  /** Epoch ms; used for HTTP-date `Retry-After`. */
  now?: () => number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * A complete listing. Items that fail their schema are left out and counted: a listing with
 * `invalid > 0` is incomplete, so reconciliation must not read a missing order as gone.
 */
export interface Listing<T> {
  items: T[];
  invalid: number;
  /** The first few schema complaints, e.g. `/data/3/price: must match pattern`. Never item contents. */
  invalidReasons: string[];
  pages: number;
}

export interface OpenOrdersFilter {
  /** Order id (hash). */
  id?: string;
  /** Condition id. */
  market?: string;
  /** Token id. */
  assetId?: string;
}

export interface TradesFilter {
  /**
   * Epoch **milliseconds**. Sent as whole unix seconds rounded down, so the venue's window
   * (inclusive at second granularity) never starts later than asked; expect trades from up to a
   * second before and dedupe by trade id.
   */
  after?: number;
  /** Epoch ms; sent as unix seconds rounded up (the venue's `before` is exclusive). */
  before?: number;
  /** Condition id. */
  market?: string;
  /** Token id. */
  assetId?: string;
  /** One trade id. */
  id?: string;
}

export interface BalanceQuery {
  assetType: 'COLLATERAL' | 'CONDITIONAL';
  /** Required for CONDITIONAL. */
  tokenId?: string;
  /** 0 EOA, 1 POLY_PROXY, 2 POLY_GNOSIS_SAFE, 3 POLY_1271; sent only when given (clob-client-v2 always sends its own). */
  signatureType?: number;
}

export interface AccountStats {
  requests: number;
  invalidItems: number;
}

const MAX_REASONS = 5;

/** Milliseconds in the range where a number is surely epoch ms (1973 … 5138), not seconds. */
function epochMsToSeconds(name: string, ms: number, round: 'down' | 'up'): string {
  if (!Number.isFinite(ms) || ms < 1e11 || ms > 1e14) throw new RangeError(`${name} must be epoch milliseconds, got ${ms}`);
  return String(round === 'down' ? Math.floor(ms / 1000) : Math.ceil(ms / 1000));
}

/** L2-authenticated account calls on the CLOB (see the module comment for the retry contract). */
export class ClobAccountClient {
  private readonly baseUrl: string;
  private readonly authHeaders: AuthHeadersFn;
  private readonly timeoutMs: number;
  private readonly pageSize: number | undefined;
  private readonly maxPages: number;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly counters: AccountStats = { requests: 0, invalidItems: 0 };

  constructor(opts: ClobAccountOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.authHeaders = opts.authHeaders;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    if (opts.pageSize !== undefined && (!Number.isSafeInteger(opts.pageSize) || opts.pageSize < 1)) throw new RangeError('pageSize must be a positive integer');
    this.pageSize = opts.pageSize;
    this.maxPages = opts.maxPages ?? 1000;
    this.fetchImpl = opts.fetch ?? fetch;
    this.now = opts.now ?? Date.now;
  }

  /** Requests sent and list items dropped as invalid since construction. */
  get stats(): Readonly<AccountStats> {
    return { ...this.counters };
  }

  /** `GET /data/orders`, every page: the account's LIVE orders. Safe to repeat. */
  async getOpenOrders(filter: OpenOrdersFilter = {}, opts: CallOptions = {}): Promise<Listing<OpenOrder>> {
    return this.list('/data/orders', { id: filter.id, market: filter.market, asset_id: filter.assetId }, checkOpenOrder, opts);
  }

  /**
   * `GET /data/order/{id}`: one order in any state, or null when the venue does not know it (404 or
   * an empty answer). This settles an ambiguous post: the order id is its EIP-712 hash, computable
   * before sending (`orderHash`). Safe to repeat. A venue may need a moment before a new order shows.
   */
  async getOrder(id: string, opts: CallOptions = {}): Promise<OpenOrder | null> {
    if (id === '') throw new RangeError('order id must not be empty');
    const path = `/data/order/${encodeURIComponent(id)}`;
    const a = await this.send('GET', path, {}, undefined, opts);
    if (a.status === 404) return null;
    if (a.status < 200 || a.status >= 300) throw answerError('GET', path, a, this.now());
    // What the venue answers for an unknown id is not documented: read an empty body, `null` and
    // `{}` as "unknown" too, so a lookup never mistakes them for a malformed order.
    const empty = a.json === undefined ? a.text.trim() === '' : a.json === null || (typeof a.json === 'object' && !Array.isArray(a.json) && Object.keys(a.json).length === 0);
    if (empty) return null;
    if (!checkOpenOrder.Check(a.json)) throw this.badBody('GET', path, a, checkOpenOrder.Errors(a.json)[0]);
    return a.json;
  }

  /**
   * `GET /data/trades`, every page, oldest first as the venue lists them; for catching up after a
   * reconnect or at start. Trades repeat across status changes and overlapping windows: dedupe by
   * `id` (+ `status`). Safe to repeat.
   */
  async getTrades(filter: TradesFilter = {}, opts: CallOptions = {}): Promise<Listing<ClobTrade>> {
    const query = {
      id: filter.id,
      market: filter.market,
      asset_id: filter.assetId,
      after: filter.after === undefined ? undefined : epochMsToSeconds('after', filter.after, 'down'),
      before: filter.before === undefined ? undefined : epochMsToSeconds('before', filter.before, 'up'),
    };
    return this.list('/data/trades', query, checkTrade, opts);
  }

  /** `DELETE /order`. Idempotent at the venue: an order already gone comes back in `not_canceled`. */
  async cancelOrder(id: string, opts: CallOptions = {}): Promise<CancelResponse> {
    if (id === '') throw new RangeError('order id must not be empty');
    return this.cancel('/order', { orderID: id }, opts);
  }

  /** `DELETE /orders`. Idempotent at the venue, per id. An empty list sends nothing. */
  async cancelOrders(ids: readonly string[], opts: CallOptions = {}): Promise<CancelResponse> {
    if (ids.length === 0) return { canceled: [], not_canceled: {} };
    return this.cancel('/orders', [...ids], opts);
  }

  /** `DELETE /cancel-all`: every open order of the account. Idempotent at the venue. */
  async cancelAll(opts: CallOptions = {}): Promise<CancelResponse> {
    return this.cancel('/cancel-all', undefined, opts);
  }

  /**
   * `DELETE /cancel-market-orders` for a condition id and/or a token id. Idempotent at the venue.
   * At least one is required: with neither the venue would cancel everything, which must be asked
   * for explicitly with `cancelAll`.
   */
  async cancelMarket(filter: { market?: string; assetId?: string }, opts: CallOptions = {}): Promise<CancelResponse> {
    if (!filter.market && !filter.assetId) throw new RangeError('cancelMarket needs a market or an assetId; use cancelAll to cancel everything');
    return this.cancel('/cancel-market-orders', { ...(filter.market ? { market: filter.market } : {}), ...(filter.assetId ? { asset_id: filter.assetId } : {}) }, opts);
  }

  /** `GET /balance-allowance`: available balance in base units (exact integer string). Safe to repeat. */
  async getBalanceAllowance(q: BalanceQuery, opts: CallOptions = {}): Promise<Required<BalanceAllowance>> {
    return this.balance('/balance-allowance', q, opts);
  }

  /**
   * `GET /balance-allowance/update`: asks the venue to refresh its cached balance (a stale cache
   * rejects sells with "not enough balance / allowance"). Safe to repeat. Returns the balance when
   * the answer carries one, else null.
   */
  async updateBalanceAllowance(q: BalanceQuery, opts: CallOptions = {}): Promise<Required<BalanceAllowance> | null> {
    const path = '/balance-allowance/update';
    const a = await this.send('GET', path, this.balanceQuery(q), undefined, opts);
    if (a.status < 200 || a.status >= 300) throw answerError('GET', path, a, this.now());
    return checkBalance.Check(a.json) ? { balance: a.json.balance, allowances: a.json.allowances ?? {} } : null;
  }

  /** `GET /version` (public, sent without credentials): the order version to sign; 2 when the answer has none, as clob-client-v2 does. */
  async getVersion(opts: CallOptions = {}): Promise<number> {
    const path = '/version';
    const a = await this.send('GET', path, {}, undefined, opts, false);
    if (a.status < 200 || a.status >= 300) throw answerError('GET', path, a, this.now());
    if (!checkVersion.Check(a.json)) throw this.badBody('GET', path, a, checkVersion.Errors(a.json)[0]);
    return a.json.version ?? 2;
  }

  // ---------------------------------------------------------------- internals

  private async balance(path: string, q: BalanceQuery, opts: CallOptions): Promise<Required<BalanceAllowance>> {
    const a = await this.send('GET', path, this.balanceQuery(q), undefined, opts);
    if (a.status < 200 || a.status >= 300) throw answerError('GET', path, a, this.now());
    if (!checkBalance.Check(a.json)) throw this.badBody('GET', path, a, checkBalance.Errors(a.json)[0]);
    return { balance: a.json.balance, allowances: a.json.allowances ?? {} };
  }

  private balanceQuery(q: BalanceQuery): Record<string, string | undefined> {
    if (q.assetType !== 'COLLATERAL' && q.assetType !== 'CONDITIONAL') throw new RangeError('assetType must be COLLATERAL or CONDITIONAL');
    if (q.assetType === 'CONDITIONAL' && !q.tokenId) throw new RangeError('a CONDITIONAL balance needs a tokenId');
    return {
      asset_type: q.assetType,
      token_id: q.assetType === 'CONDITIONAL' ? q.tokenId : undefined,
      signature_type: q.signatureType === undefined ? undefined : String(q.signatureType),
    };
  }

  private async cancel(path: string, body: unknown, opts: CallOptions): Promise<CancelResponse> {
    const a = await this.send('DELETE', path, {}, body, opts);
    if (a.status < 200 || a.status >= 300) throw answerError('DELETE', path, a, this.now());
    if (!checkCancel.Check(a.json)) throw this.badBody('DELETE', path, a, checkCancel.Errors(a.json)[0]);
    return a.json;
  }

  /** Follows `next_cursor` from "MA==" to "LTE=", validating each item on its own. */
  private async list<T>(
    path: string,
    filter: Record<string, string | undefined>,
    check: { Check(v: unknown): v is T; Errors(v: unknown): Array<{ instancePath: string; message: string }> },
    opts: CallOptions,
  ): Promise<Listing<T>> {
    const items: T[] = [];
    const invalidReasons: string[] = [];
    let invalid = 0;
    let cursor = START_CURSOR;
    const seen = new Set<string>();
    for (let pages = 1; ; pages++) {
      if (pages > this.maxPages) throw new ClobAccountError({ method: 'GET', path, code: 'paging', detail: `more than ${this.maxPages} pages` });
      seen.add(cursor);
      const query = { ...filter, next_cursor: cursor, ...(this.pageSize === undefined ? {} : { limit: String(this.pageSize) }) };
      const a = await this.send('GET', path, query, undefined, opts);
      if (a.status < 200 || a.status >= 300) throw answerError('GET', path, a, this.now());
      if (!checkPage.Check(a.json)) throw this.badBody('GET', path, a, checkPage.Errors(a.json)[0]);
      const page = a.json;
      page.data.forEach((item, i) => {
        if (check.Check(item)) items.push(item);
        else {
          invalid++;
          this.counters.invalidItems++;
          if (invalidReasons.length < MAX_REASONS) {
            const e = check.Errors(item)[0];
            invalidReasons.push(`page ${pages} /data/${i}${e ? `${e.instancePath}: ${e.message}` : ''}`);
          }
        }
      });
      const next = page.next_cursor;
      if (next === END_CURSOR || next === '') return { items, invalid, invalidReasons, pages };
      if (seen.has(next)) throw new ClobAccountError({ method: 'GET', path, code: 'paging', detail: `cursor ${next.slice(0, 40)} repeats` });
      cursor = next;
    }
  }

  private badBody(method: string, path: string, a: ClobAnswer, e: { instancePath: string; message: string } | undefined): ClobAccountError {
    const where = a.json === undefined ? (a.text.trim() === '' ? 'empty body' : 'not JSON') : e ? `${e.instancePath || '/'} ${e.message}` : 'unexpected shape';
    return new ClobAccountError({ method, path, code: 'bad_body', status: a.status, detail: `HTTP ${a.status} with an unexpected body (${where})` });
  }

  private async send(
    method: 'GET' | 'DELETE',
    path: string,
    query: Record<string, string | undefined>,
    body: unknown,
    opts: CallOptions,
    auth = true,
  ): Promise<ClobAnswer> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    this.counters.requests++;
    return sendClobRequest({
      baseUrl: this.baseUrl,
      method,
      path,
      query,
      body,
      ...(auth ? { authHeaders: this.authHeaders } : {}),
      fetch: this.fetchImpl,
      signal,
    });
  }
}
