/**
 * API keys and request authentication (L1 wallet signatures, L2 HMAC), as the venue does it.
 * Placeholder: every request is accepted; the auth work fills this in.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

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
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `requireL2` on private routes: who is calling. */
    auth?: { apiKey: string; address: string };
  }
}

export function createApiKeyStore(): ApiKeyStore {
  const keys = new Map<string, ApiKeyRecord>();
  return {
    get: (k) => keys.get(k),
    put: (r) => void keys.set(r.apiKey, r),
    byAddress: (a) => [...keys.values()].filter((r) => r.address === a.toLowerCase()),
  };
}

/** preHandler for private routes. */
export function requireL2(_store: ApiKeyStore) {
  return async (_req: FastifyRequest, _reply: FastifyReply): Promise<void> => {};
}
