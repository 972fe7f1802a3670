/**
 * Polymarket CLOB authentication, client side (PROTOCOL.md §4):
 * L1 = EIP-712 `ClobAuth` signature by the wallet (creates / derives API keys),
 * L2 = HMAC-SHA256 over `timestamp + METHOD + path + body` with the API secret (every private request).
 * Nothing here logs; callers must never log credentials or header values either.
 */
import { createHmac } from 'node:crypto';
import type { TypedDataDomain, TypedDataField } from 'ethers';
import { POLYGON_CHAIN_ID } from './order.js';
import type { ApiCreds } from './schemas.js';

export const CLOB_AUTH_MESSAGE = 'This message attests that I control the given wallet';

export const CLOB_AUTH_TYPES: Record<string, TypedDataField[]> = {
  ClobAuth: [
    { name: 'address', type: 'address' },
    { name: 'timestamp', type: 'string' },
    { name: 'nonce', type: 'uint256' },
    { name: 'message', type: 'string' },
  ],
};

export interface L1Headers {
  POLY_ADDRESS: string;
  POLY_SIGNATURE: string;
  POLY_TIMESTAMP: string;
  POLY_NONCE: string;
}

export interface L2Headers {
  POLY_ADDRESS: string;
  POLY_SIGNATURE: string;
  POLY_TIMESTAMP: string;
  POLY_API_KEY: string;
  POLY_PASSPHRASE: string;
}

/** What L1 signing needs from a wallet (an ethers `Wallet` fits). */
export interface TypedDataSigner {
  readonly address: string;
  signTypedData(domain: TypedDataDomain, types: Record<string, TypedDataField[]>, value: Record<string, unknown>): Promise<string>;
}

/** The EIP-712 domain, types and message of an L1 `ClobAuth` signature (domain has no verifyingContract). */
export function clobAuthTypedData(address: string, timestamp: number | string, nonce: number | bigint = 0, chainId: number = POLYGON_CHAIN_ID) {
  return {
    domain: { name: 'ClobAuthDomain', version: '1', chainId } satisfies TypedDataDomain,
    types: CLOB_AUTH_TYPES,
    primaryType: 'ClobAuth' as const,
    message: { address, timestamp: String(timestamp), nonce, message: CLOB_AUTH_MESSAGE },
  };
}

export interface L1Options {
  /** Unix seconds; defaults to now (or pass the venue's `GET /time` to avoid clock skew). */
  timestampS?: number;
  nonce?: number;
  chainId?: number;
}

/** L1 headers for `/auth/api-key` and `/auth/derive-api-key`. */
export async function buildL1Headers(wallet: TypedDataSigner, opts: L1Options = {}): Promise<L1Headers> {
  const ts = opts.timestampS ?? Math.floor(Date.now() / 1000);
  const nonce = opts.nonce ?? 0;
  if (!Number.isSafeInteger(nonce) || nonce < 0) throw new RangeError('nonce must be a non-negative integer');
  const td = clobAuthTypedData(wallet.address, ts, nonce, opts.chainId ?? POLYGON_CHAIN_ID);
  const signature = await wallet.signTypedData(td.domain, td.types, td.message);
  return { POLY_ADDRESS: wallet.address, POLY_SIGNATURE: signature, POLY_TIMESTAMP: String(ts), POLY_NONCE: String(nonce) };
}

/** Decodes an API secret given in standard or URL-safe base64 (Node semantics: other characters are skipped). */
export function decodeSecret(secret: string): Buffer {
  return Buffer.from(secret.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/**
 * L2 `POLY_SIGNATURE`: base64url(HMAC-SHA256(base64decode(secret), timestamp + method + requestPath + body)),
 * `=` padding kept. `requestPath` is the path only (no host, no query); `body` the exact text sent, omitted when empty.
 */
export function hmacSignature(secret: string, timestampS: number | string, method: string, requestPath: string, body?: string | null): string {
  const msg = `${timestampS}${method}${requestPath}${body ?? ''}`;
  return createHmac('sha256', decodeSecret(secret)).update(msg, 'utf8').digest('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

export interface L2Request {
  method: string;
  /** Path only; a query string, if given, is dropped before signing. */
  requestPath: string;
  body?: string | null;
  timestampS?: number;
}

/** L2 headers for a private request. `address` is the signer EOA (sent as given). */
export function buildL2Headers(creds: ApiCreds, address: string, req: L2Request): L2Headers {
  const ts = req.timestampS ?? Math.floor(Date.now() / 1000);
  const path = req.requestPath.split('?')[0] as string;
  return {
    POLY_ADDRESS: address,
    POLY_SIGNATURE: hmacSignature(creds.secret, ts, req.method, path, req.body),
    POLY_TIMESTAMP: String(ts),
    POLY_API_KEY: creds.apiKey,
    POLY_PASSPHRASE: creds.passphrase,
  };
}

/** A venue answer to an auth request that carried no credentials. The message never contains secrets. */
export class ApiKeyError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ApiKeyError';
  }
}

export interface CreateOrDeriveOptions {
  /** Selects a different deterministic key set; default 0. */
  nonce?: number;
  chainId?: number;
  /** Ask the venue's `GET /time` for the timestamp instead of the local clock. */
  useServerTime?: boolean;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

function readCreds(json: unknown): ApiCreds | undefined {
  if (!json || typeof json !== 'object') return undefined;
  const o = json as Record<string, unknown>;
  const apiKey = o.apiKey ?? o.key;
  if (typeof apiKey !== 'string' || apiKey === '' || typeof o.secret !== 'string' || typeof o.passphrase !== 'string') return undefined;
  return { apiKey, secret: o.secret, passphrase: o.passphrase };
}

function errorOf(json: unknown, status: number): string {
  if (json && typeof json === 'object') {
    const e = (json as Record<string, unknown>).error;
    if (typeof e === 'string' && e !== '') return e.slice(0, 200);
  }
  return `HTTP ${status}`;
}

/**
 * `createOrDeriveApiKey` as the official clients do it: `POST /auth/api-key`, and when that answer
 * has no key (it already exists), `GET /auth/derive-api-key`. Throws `ApiKeyError` when neither
 * gives credentials; network errors propagate.
 */
export async function createOrDeriveApiKey(clobUrl: string, wallet: TypedDataSigner, opts: CreateOrDeriveOptions = {}): Promise<ApiCreds> {
  const base = clobUrl.replace(/\/+$/, '');
  const f = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const call = async (method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}) => {
    const res = await f(`${base}${path}`, { method, headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json };
  };
  const l1 = async (): Promise<Record<string, string>> => {
    let timestampS: number | undefined;
    if (opts.useServerTime) {
      const t = await call('GET', '/time');
      const n = Number(t.json);
      if (t.status === 200 && Number.isSafeInteger(n) && n > 0) timestampS = n;
    }
    const h = await buildL1Headers(wallet, {
      nonce: opts.nonce ?? 0,
      ...(opts.chainId === undefined ? {} : { chainId: opts.chainId }),
      ...(timestampS === undefined ? {} : { timestampS }),
    });
    return { ...h };
  };
  const created = await call('POST', '/auth/api-key', await l1());
  const fromCreate = created.status >= 200 && created.status < 300 ? readCreds(created.json) : undefined;
  if (fromCreate) return fromCreate;
  const derived = await call('GET', '/auth/derive-api-key', await l1());
  const fromDerive = derived.status >= 200 && derived.status < 300 ? readCreds(derived.json) : undefined;
  if (fromDerive) return fromDerive;
  throw new ApiKeyError(
    `could not create (${errorOf(created.json, created.status)}) or derive (${errorOf(derived.json, derived.status)}) an API key`,
    derived.status,
  );
}
