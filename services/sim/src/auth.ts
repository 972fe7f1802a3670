/**
 * API keys and request authentication (L1 wallet signatures, L2 HMAC), as the venue does it
 * (shared PROTOCOL.md §4). Keys are derived deterministically from (address, nonce) with a random
 * per-data-dir server secret, and persisted in `<dataDir>/sim/api-keys.json` (dir 0700, file 0600).
 * Nothing here logs credentials or header values.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clobAuthTypedData, hmacSignature, POLYGON_CHAIN_ID } from '@polybot/polymarket';
import { getAddress, verifyTypedData } from 'ethers';
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';

export interface ApiKeyRecord {
  apiKey: string;
  secret: string;
  passphrase: string;
  /** Signer address, lower case. */
  address: string;
  nonce: number;
  createdAt: number;
}

export interface ApiKeyStore {
  get(apiKey: string): ApiKeyRecord | undefined;
  put(record: ApiKeyRecord): void;
  byAddress(address: string): ApiKeyRecord[];
  /** Removes a key; true when it existed. */
  delete?(apiKey: string): boolean;
  /** The deterministic credentials of (address, nonce) in this data dir (not stored by this call). */
  derive?(address: string, nonce: number): Pick<ApiKeyRecord, 'apiKey' | 'secret' | 'passphrase'>;
  /** Binds the store to a data dir (loads its keys, persists from then on); no-op when already bound. */
  attach?(dataDir: string): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `requireL2` on private routes: who is calling. */
    auth?: { apiKey: string; address: string };
  }
}

/** The venue's answer to every authentication failure. */
export const UNAUTHORIZED = { error: 'Unauthorized/Invalid api key' } as const;
export const DEFAULT_AUTH_SKEW_S = 300;
export const API_KEYS_FILE = 'api-keys.json';

interface KeyFile {
  version: 1;
  serverSecret: string;
  keys: ApiKeyRecord[];
}

function isRecord(v: unknown): v is ApiKeyRecord {
  if (!v || typeof v !== 'object') return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.apiKey === 'string' &&
    typeof r.secret === 'string' &&
    typeof r.passphrase === 'string' &&
    typeof r.address === 'string' &&
    Number.isSafeInteger(r.nonce) &&
    typeof r.createdAt === 'number'
  );
}

/** apiKey (uuid), secret (32 bytes, base64url with padding) and passphrase (64 hex) for (address, nonce). */
export function deriveCreds(serverSecret: Buffer, address: string, nonce: number): Pick<ApiKeyRecord, 'apiKey' | 'secret' | 'passphrase'> {
  const mac = (what: string) => createHmac('sha256', serverSecret).update(`polybot-sim/${what}/${address.toLowerCase()}/${nonce}`).digest();
  const id = mac('api-key').subarray(0, 16);
  id[6] = ((id[6] as number) & 0x0f) | 0x40; // uuid v4 layout
  id[8] = ((id[8] as number) & 0x3f) | 0x80;
  const hex = id.toString('hex');
  return {
    apiKey: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    secret: mac('secret').toString('base64').replace(/\+/g, '-').replace(/\//g, '_'),
    passphrase: mac('passphrase').toString('hex'),
  };
}

/**
 * The key store. With `dataDir` it loads `<dataDir>/sim/api-keys.json` now and rewrites it (atomically,
 * 0600) on every change; without, it lives in memory until `attach(dataDir)`.
 */
export function createApiKeyStore(opts: { dataDir?: string } = {}): ApiKeyStore {
  const keys = new Map<string, ApiKeyRecord>();
  let serverSecret = randomBytes(32);
  let file: string | undefined;

  const save = () => {
    if (!file) return;
    const dir = join(file, '..');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const data: KeyFile = { version: 1, serverSecret: serverSecret.toString('hex'), keys: [...keys.values()] };
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  };

  const attach = (dataDir: string) => {
    if (file) return;
    const path = join(dataDir, 'sim', API_KEYS_FILE);
    if (existsSync(path)) {
      let data: Partial<KeyFile>;
      try {
        data = JSON.parse(readFileSync(path, 'utf8')) as Partial<KeyFile>;
      } catch {
        throw new Error(`${path} is not valid JSON; move it away to start without API keys`);
      }
      if (typeof data.serverSecret !== 'string' || !/^[0-9a-f]{64}$/.test(data.serverSecret) || !Array.isArray(data.keys)) {
        throw new Error(`${path} is not an API key file; move it away to start without API keys`);
      }
      serverSecret = Buffer.from(data.serverSecret, 'hex');
      for (const r of data.keys) if (isRecord(r)) keys.set(r.apiKey, { ...r, address: r.address.toLowerCase() });
    }
    file = path;
    save();
  };

  if (opts.dataDir) attach(opts.dataDir);

  return {
    get: (k) => keys.get(k),
    put: (r) => {
      keys.set(r.apiKey, { ...r, address: r.address.toLowerCase() });
      save();
    },
    byAddress: (a) => [...keys.values()].filter((r) => r.address === a.toLowerCase()),
    delete: (k) => {
      const had = keys.delete(k);
      if (had) save();
      return had;
    },
    derive: (address, nonce) => deriveCreds(serverSecret, address, nonce),
    attach,
  };
}

// ---------------------------------------------------------------- settings

export interface AuthSettings {
  /** Private routes refuse requests without L2 headers. Bad headers are refused either way. */
  required: boolean;
  skewS: number;
}

/** Reads POLYBOT_SIM_REQUIRE_AUTH / POLYBOT_SIM_AUTH_SKEW_S from the sim config, with safe fallbacks. */
export function authSettings(config?: unknown): AuthSettings {
  const c = (config && typeof config === 'object' ? config : {}) as Record<string, unknown>;
  const required = typeof c.POLYBOT_SIM_REQUIRE_AUTH === 'boolean' ? c.POLYBOT_SIM_REQUIRE_AUTH : true;
  const skew = c.POLYBOT_SIM_AUTH_SKEW_S;
  return { required, skewS: typeof skew === 'number' && Number.isFinite(skew) && skew > 0 ? skew : DEFAULT_AUTH_SKEW_S };
}

// ---------------------------------------------------------------- header helpers

type Headers = FastifyRequest['headers'];

function header(h: Headers, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s : undefined;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function freshTimestamp(ts: string | undefined, skewS: number, nowS: number): boolean {
  if (ts === undefined || !/^[0-9]{1,12}$/.test(ts)) return false;
  return Math.abs(Number(ts) - nowS) <= skewS;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export interface L1Identity {
  /** Lower case. */
  address: string;
  nonce: number;
}

/**
 * Checks L1 headers: POLY_SIGNATURE must be the `ClobAuth` signature of POLY_ADDRESS over POLY_TIMESTAMP /
 * POLY_NONCE (default 0) on `chainId`, and the timestamp within `skewS` of now. Undefined when not.
 */
export function verifyL1(headers: Headers, chainId: number = POLYGON_CHAIN_ID, opts: { skewS?: number; nowS?: number } = {}): L1Identity | undefined {
  const address = header(headers, 'POLY_ADDRESS');
  const signature = header(headers, 'POLY_SIGNATURE');
  const ts = header(headers, 'POLY_TIMESTAMP');
  const nonceText = header(headers, 'POLY_NONCE') ?? '0';
  if (!address || !signature || !/^0x[0-9a-fA-F]{130}$/.test(signature)) return undefined;
  if (!freshTimestamp(ts, opts.skewS ?? DEFAULT_AUTH_SKEW_S, opts.nowS ?? nowSeconds())) return undefined;
  if (!/^[0-9]{1,15}$/.test(nonceText)) return undefined;
  const nonce = Number(nonceText);
  let checksummed: string;
  try {
    checksummed = getAddress(address.toLowerCase());
  } catch {
    return undefined;
  }
  try {
    const td = clobAuthTypedData(checksummed, ts as string, nonce, chainId);
    const signer = verifyTypedData(td.domain, td.types, td.message, signature);
    if (signer !== checksummed) return undefined;
  } catch {
    return undefined;
  }
  return { address: checksummed.toLowerCase(), nonce };
}

// ---------------------------------------------------------------- L2

const L2_HEADERS = ['poly_address', 'poly_signature', 'poly_timestamp', 'poly_api_key', 'poly_passphrase'];

/** Raw JSON request bodies, kept by the JSON parser `captureRawBodies` installs. */
const rawBodies = new WeakMap<FastifyRequest, string>();
const capturing = new WeakSet<FastifyInstance>();

/**
 * Replaces the JSON body parser of `app` (and its children) with Fastify's default one that also
 * keeps the exact body text, so `requireL2` checks the HMAC over the bytes that were sent (whitespace
 * and key order matter), and accepts an empty body: the official clients send
 * `Content-Type: application/json` on every request, bodiless POST/DELETE included, and the venue
 * takes them. Body limit and prototype-poisoning checks stay Fastify's. Idempotent per instance.
 */
export function captureRawBodies(app: FastifyInstance): void {
  if (capturing.has(app)) return;
  capturing.add(app);
  const parse = app.getDefaultJsonParser('error', 'ignore');
  if (app.hasContentTypeParser('application/json')) app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    rawBodies.set(req, text);
    if (text === '') return done(null, undefined);
    parse(req, text, done);
  });
}

/** The body text the client signed: the captured bytes, else the parsed body re-serialized compactly. */
function bodyText(req: FastifyRequest): string {
  const raw = rawBodies.get(req);
  if (raw !== undefined) return raw;
  const b: unknown = req.body;
  if (b === undefined || b === null) return '';
  return typeof b === 'string' ? b : JSON.stringify(b);
}

/** Verifies L2 headers of a request; the caller on success, undefined on any failure. */
export function verifyL2(store: ApiKeyStore, req: FastifyRequest, opts: { skewS?: number; nowS?: number } = {}): { apiKey: string; address: string } | undefined {
  const h = req.headers;
  const apiKey = header(h, 'POLY_API_KEY');
  const passphrase = header(h, 'POLY_PASSPHRASE');
  const address = header(h, 'POLY_ADDRESS');
  const signature = header(h, 'POLY_SIGNATURE');
  const ts = header(h, 'POLY_TIMESTAMP');
  if (!apiKey || !passphrase || !address || !signature || !ts) return undefined;
  const rec = store.get(apiKey);
  if (!rec) return undefined;
  if (!safeEqual(passphrase, rec.passphrase)) return undefined;
  if (address.toLowerCase() !== rec.address) return undefined;
  if (!freshTimestamp(ts, opts.skewS ?? DEFAULT_AUTH_SKEW_S, opts.nowS ?? nowSeconds())) return undefined;
  const path = req.url.split('?')[0] as string;
  const expected = hmacSignature(rec.secret, ts, req.method.toUpperCase(), path, bodyText(req));
  if (!safeEqual(signature, expected)) return undefined;
  return { apiKey: rec.apiKey, address: rec.address };
}

/**
 * preHandler for private routes: valid L2 headers set `req.auth`; invalid ones get 401
 * `{"error":"Unauthorized/Invalid api key"}` and the handler never runs. Without any L2 header the
 * request passes (no `req.auth`) only when `required` is false. Register `captureRawBodies(app)`
 * (done by `registerAuthRoutes`) so bodies are checked byte for byte.
 */
export function requireL2(store: ApiKeyStore, opts: Partial<AuthSettings> = {}): preHandlerAsyncHookHandler {
  const required = opts.required ?? true;
  const skewS = opts.skewS ?? DEFAULT_AUTH_SKEW_S;
  return async function requireL2Handler(req: FastifyRequest, reply: FastifyReply) {
    const any = L2_HEADERS.some((n) => req.headers[n] !== undefined);
    if (!any && !required) return;
    const who = any ? verifyL2(store, req, { skewS }) : undefined;
    if (!who) return reply.code(401).send(UNAUTHORIZED);
    req.auth = who;
  };
}

/** `requireL2` with the settings of the server's config (POLYBOT_SIM_REQUIRE_AUTH, POLYBOT_SIM_AUTH_SKEW_S). */
export function requireL2For(deps: { auth: ApiKeyStore; config?: unknown }): preHandlerAsyncHookHandler {
  return requireL2(deps.auth, authSettings(deps.config));
}
