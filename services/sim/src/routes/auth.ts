import { POLYGON_CHAIN_ID } from '@polybot/polymarket';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { authSettings, captureRawBodies, deriveCreds, requireL2, UNAUTHORIZED, verifyL1, type ApiKeyRecord, type ApiKeyStore } from '../auth.js';
import type { ServerDeps } from '../server.js';
import { randomBytes } from 'node:crypto';

/** The chain the simulator's ClobAuth signatures are checked against (the venue's: Polygon). */
export const SIM_AUTH_CHAIN_ID = POLYGON_CHAIN_ID;

type Creds = Pick<ApiKeyRecord, 'apiKey' | 'secret' | 'passphrase'>;

/** A store from `createApiKeyStore` derives and deletes itself; any other one gets an in-memory stand-in. */
function capabilities(store: ApiKeyStore, dataDir: string) {
  store.attach?.(dataDir);
  const fallbackSecret = randomBytes(32);
  return {
    derive: (address: string, nonce: number): Creds => store.derive?.(address, nonce) ?? deriveCreds(fallbackSecret, address, nonce),
    remove: (apiKey: string): boolean => store.delete?.(apiKey) ?? false,
  };
}

const credsOf = (r: Creds) => ({ apiKey: r.apiKey, secret: r.secret, passphrase: r.passphrase });

/**
 * API key routes. L1 (wallet signature): `POST /auth/api-key` creates the key of POLY_NONCE (400 when it
 * exists, so clients fall back to derive), `GET /auth/derive-api-key` returns it (400 when none).
 * L2 (HMAC, always required): `GET /auth/api-keys`, `DELETE /auth/api-key` (the calling key).
 * Also installs the raw-body capture `requireL2` checks request bodies with.
 */
export function registerAuthRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const store = deps.auth;
  const { skewS } = authSettings(deps.config);
  const caps = capabilities(store, deps.dataDir);
  captureRawBodies(app);
  const l2 = requireL2(store, { required: true, skewS });
  const find = (address: string, nonce: number) => store.byAddress(address).find((r) => r.nonce === nonce);
  const unauthorized = (reply: FastifyReply) => reply.code(401).send(UNAUTHORIZED);

  app.post('/auth/api-key', async (req, reply) => {
    const who = verifyL1(req.headers, SIM_AUTH_CHAIN_ID, { skewS });
    if (!who) return unauthorized(reply);
    if (find(who.address, who.nonce)) return reply.code(400).send({ error: 'Could not create api key' });
    const first = store.byAddress(who.address).length === 0;
    const creds = caps.derive(who.address, who.nonce);
    store.put({ ...creds, address: who.address, nonce: who.nonce, createdAt: Date.now() });
    deps.log.info({ address: who.address, nonce: who.nonce }, 'api key created');
    if (first) deps.onAccountCreated?.(who.address);
    return credsOf(creds);
  });

  app.get('/auth/derive-api-key', async (req, reply) => {
    const who = verifyL1(req.headers, SIM_AUTH_CHAIN_ID, { skewS });
    if (!who) return unauthorized(reply);
    const rec = find(who.address, who.nonce);
    if (!rec) return reply.code(400).send({ error: 'Could not derive api key!' });
    return credsOf(rec);
  });

  app.get('/auth/api-keys', { preHandler: l2 }, async (req) => {
    const address = req.auth?.address ?? '';
    return { apiKeys: store.byAddress(address).map((r) => r.apiKey) };
  });

  app.delete('/auth/api-key', { preHandler: l2 }, async (req) => {
    const apiKey = req.auth?.apiKey ?? '';
    caps.remove(apiKey);
    deps.log.info({ address: req.auth?.address }, 'api key deleted');
    return 'OK';
  });
}
