import Compile from 'typebox/compile';
import { describeError as describe, errorCodes, retryAfterMs as retryAfter, venueErrorText as errorText, type ErrLike } from './http-errors.js';
import { OrderResponse, type PostOrderBody } from './schemas.js';

const checkResponse = Compile(OrderResponse);

/**
 * The one outcome of an order submission (brief §6.6). Only `accepted` and `rejected` say what the
 * venue did; `not_sent` is certain the venue never saw the order; `ambiguous` means it may exist
 * and must be settled by a query, the user stream or reconciliation — never by re-signing.
 */
export type PostOrderOutcome =
  | { kind: 'accepted'; response: OrderResponse; status: number }
  | {
      kind: 'rejected';
      errorMsg: string;
      status: number;
      /** 425/429 and friends: the same order may be posted again later. */
      retryable: boolean;
      retryAfterMs?: number;
      response?: OrderResponse;
    }
  | { kind: 'not_sent'; error: string; code?: string }
  | { kind: 'ambiguous'; error: string; status?: number; code?: string };

export interface ClobTradingOptions {
  baseUrl: string;
  /** Deadline for the whole exchange (connect, send, answer). */
  timeoutMs?: number;
  /**
   * Authentication headers for a request (L2 HMAC over the exact body text comes later). Their
   * values are never logged or put into outcomes.
   */
  authHeaders?: (method: string, path: string, body: string) => Record<string, string>;
  fetch?: typeof fetch;
}

// Failures that happen before a single request byte can have reached the venue.
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_INVALID_URL',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Authenticated CLOB trading endpoints; for now `POST /order`. */
export class ClobTradingClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: ClobTradingOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  /** Posts one signed order and classifies what happened. Never throws for venue or network trouble. */
  async postOrder(body: PostOrderBody): Promise<PostOrderOutcome> {
    const path = '/order';
    const text = JSON.stringify(body);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      ...(this.opts.authHeaders?.('POST', path, text) ?? {}),
    };
    let res: Response;
    let resText: string;
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, { method: 'POST', headers, body: text, signal });
    } catch (err) {
      const codes = errorCodes(err);
      const name = (err as ErrLike).name;
      if (name === 'TimeoutError' || name === 'AbortError') {
        return { kind: 'ambiguous', error: `no answer within ${this.timeoutMs} ms`, code: 'timeout' };
      }
      // Every underlying failure must be a pre-send one; anything else (reset, closed) may follow the send.
      if (codes.length > 0 && codes.every((c) => NOT_SENT_CODES.has(c))) {
        return { kind: 'not_sent', error: describe(err), code: codes[0] };
      }
      return { kind: 'ambiguous', error: describe(err), code: codes[0] ?? 'network' };
    }
    try {
      resText = await res.text();
    } catch (err) {
      // The venue answered a status but the body was cut: what it said is unknown.
      return { kind: 'ambiguous', error: `response body lost: ${describe(err)}`, status: res.status, code: 'body' };
    }
    let json: unknown;
    try {
      json = resText === '' ? undefined : JSON.parse(resText);
    } catch {
      json = undefined;
    }
    const status = res.status;
    if (status >= 500) {
      return { kind: 'ambiguous', error: `HTTP ${status}: ${errorText(json, resText, status)}`, status, code: `http_${status}` };
    }
    if (status >= 400) {
      const response = checkResponse.Check(json) ? json : undefined;
      const ra = retryAfter(res.headers.get('retry-after'));
      return {
        kind: 'rejected',
        errorMsg: errorText(json, resText, status),
        status,
        retryable: status === 408 || status === 425 || status === 429,
        ...(ra === undefined ? {} : { retryAfterMs: ra }),
        ...(response ? { response } : {}),
      };
    }
    if (status < 200 || status >= 300) {
      return { kind: 'ambiguous', error: `unexpected HTTP ${status}`, status, code: `http_${status}` };
    }
    if (!checkResponse.Check(json)) {
      const first = checkResponse.Errors(json)[0];
      const where = first ? `${first.instancePath || '/'} ${first.message}` : 'not JSON';
      return { kind: 'ambiguous', error: `HTTP ${status} with a body that is not an OrderResponse (${where})`, status, code: 'bad_body' };
    }
    if (json.success) return { kind: 'accepted', response: json, status };
    return { kind: 'rejected', errorMsg: json.errorMsg || 'order rejected', status, retryable: false, response: json };
  }
}
