import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Wallet, TypedDataEncoder, verifyTypedData } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiKeyError,
  buildL1Headers,
  buildL2Headers,
  clobAuthTypedData,
  createOrDeriveApiKey,
  hmacSignature,
  type ApiCreds,
} from '../src/index.js';

// Copied from shared/polymarket/vectors/l1_clob_auth.json and l2_hmac.json (official clob-client / rs-clob-client
// vectors; `sources` and notes dropped). The key is the public Hardhat account #0.
const L1: any = {
  "typedData": {
    "primaryType": "ClobAuth",
    "domain": {
      "name": "ClobAuthDomain",
      "version": "1",
      "chainId": 80002
    },
    "types": {
      "ClobAuth": [
        {
          "name": "address",
          "type": "address"
        },
        {
          "name": "timestamp",
          "type": "string"
        },
        {
          "name": "nonce",
          "type": "uint256"
        },
        {
          "name": "message",
          "type": "string"
        }
      ]
    }
  },
  "cases": [
    {
      "name": "clob auth amoy ts=10000000 nonce=23",
      "privateKey": "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
      "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
      "chainId": 80002,
      "timestamp": 10000000,
      "nonce": 23,
      "message": {
        "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "timestamp": "10000000",
        "nonce": 23,
        "message": "This message attests that I control the given wallet"
      },
      "expectedSignature": "0xf62319a987514da40e57e2f4d7529f7bac38f0355bd88bb5adbb3768d80de6c1682518e0af677d5260366425f4361e7b70c25ae232aff0ab2331e2b164a1aedc1b",
      "expectedHeaders": {
        "POLY_ADDRESS": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "POLY_SIGNATURE": "0xf62319a987514da40e57e2f4d7529f7bac38f0355bd88bb5adbb3768d80de6c1682518e0af677d5260366425f4361e7b70c25ae232aff0ab2331e2b164a1aedc1b",
        "POLY_TIMESTAMP": "10000000",
        "POLY_NONCE": "23"
      }
    }
  ],
  "derivedByResearch": {
    "eip712Digest": "0x8f442df8073c9cf2e36d7b20ca9d64d1a9352e982cc82a293b7de2df57920610"
  }
};
const L2: any = {
  "cases": [
    {
      "name": "official canonical vector (TS v1, TS v2, py v2)",
      "secret": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "timestamp": 1000000,
      "method": "test-sign",
      "requestPath": "/orders",
      "body": "{\"hash\": \"0x123\"}",
      "expectedSignature": "ZwAdJKvoYRlEKDkNMwd5BuwNNtg93kNaR_oU2HrfVvc="
    },
    {
      "name": "rust compact-JSON body",
      "secret": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "timestamp": 1000000,
      "method": "test-sign",
      "requestPath": "/orders",
      "body": "{\"hash\":\"0x123\"}",
      "expectedSignature": "4gJVbox-R6XlDK4nlaicig0_ANVL1qdcahiL8CXfXLM="
    },
    {
      "name": "rust L2 headers, GET /, no body, ts=1",
      "secret": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "timestamp": 1,
      "method": "GET",
      "requestPath": "/",
      "body": null,
      "expectedSignature": "eHaylCwqRSOa2LFD77Nt_SaTpbsxzN8eTEI3LryhEj4=",
      "apiKey": "00000000-0000-0000-0000-000000000000",
      "passphrase": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "expectedHeaders": {
        "POLY_ADDRESS": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
        "POLY_SIGNATURE": "eHaylCwqRSOa2LFD77Nt_SaTpbsxzN8eTEI3LryhEj4=",
        "POLY_TIMESTAMP": "1",
        "POLY_API_KEY": "00000000-0000-0000-0000-000000000000",
        "POLY_PASSPHRASE": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      }
    },
    {
      "name": "secret given in base64url alphabet equals standard base64",
      "secretBase64url": "--_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "secretBase64": "++/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "timestamp": 1000000,
      "method": "test-sign",
      "requestPath": "/orders",
      "body": "{\"hash\": \"0x123\"}",
      "officialAssertion": "both secrets give the same signature",
      "derivedExpectedSignature": "HNo0ctLa8EfeOxYf0wiNci4JqCwLiVWsubxySKwD1cs="
    },
    {
      "name": "invalid base64 characters ignored (Node Buffer semantics, TS v1 client only)",
      "secret": "AAAAAAAAA^^AAAAAAAA<>AAAAA||AAAAAAAAAAAAAAAAAAAAA=",
      "timestamp": 1000000,
      "method": "test-sign",
      "requestPath": "/orders",
      "body": "{\"hash\": \"0x123\"}",
      "expectedSignature": "ZwAdJKvoYRlEKDkNMwd5BuwNNtg93kNaR_oU2HrfVvc="
    }
  ]
};

describe('L1 ClobAuth (vectors/l1_clob_auth.json)', () => {
  for (const c of L1.cases) {
    it(`reproduces ${c.name}`, async () => {
      const wallet = new Wallet(c.privateKey);
      const td = clobAuthTypedData(c.address, c.timestamp, c.nonce, c.chainId);
      expect(td.domain).toEqual(L1.typedData.domain);
      expect(td.types).toEqual(L1.typedData.types);
      expect({ ...td.message, nonce: Number(td.message.nonce) }).toEqual(c.message);
      expect(TypedDataEncoder.hash(td.domain, td.types, td.message)).toBe(L1.derivedByResearch.eip712Digest);
      const h = await buildL1Headers(wallet, { timestampS: c.timestamp, nonce: c.nonce, chainId: c.chainId });
      expect(h).toEqual(c.expectedHeaders);
      expect(h.POLY_SIGNATURE).toBe(c.expectedSignature);
      expect(verifyTypedData(td.domain, td.types, td.message, h.POLY_SIGNATURE)).toBe(c.address);
    });
  }

  it('defaults to nonce 0, chain 137 and the current time', async () => {
    const wallet = Wallet.createRandom();
    const before = Math.floor(Date.now() / 1000);
    const h = await buildL1Headers(wallet);
    expect(h.POLY_NONCE).toBe('0');
    expect(Number(h.POLY_TIMESTAMP)).toBeGreaterThanOrEqual(before);
    const td = clobAuthTypedData(wallet.address, h.POLY_TIMESTAMP, 0, 137);
    expect(verifyTypedData(td.domain, td.types, td.message, h.POLY_SIGNATURE)).toBe(wallet.address);
    await expect(buildL1Headers(wallet, { nonce: -1 })).rejects.toThrow(/nonce/);
  });
});

describe('L2 HMAC (vectors/l2_hmac.json)', () => {
  for (const c of L2.cases) {
    it(`reproduces ${c.name}`, () => {
      if (c.secretBase64url) {
        const a = hmacSignature(c.secretBase64url, c.timestamp, c.method, c.requestPath, c.body);
        const b = hmacSignature(c.secretBase64, c.timestamp, c.method, c.requestPath, c.body);
        expect(a).toBe(b);
        expect(a).toBe(c.derivedExpectedSignature);
        return;
      }
      expect(hmacSignature(c.secret, c.timestamp, c.method, c.requestPath, c.body)).toBe(c.expectedSignature);
      if (c.expectedHeaders) {
        const creds: ApiCreds = { apiKey: c.apiKey, secret: c.secret, passphrase: c.passphrase };
        const h = buildL2Headers(creds, c.expectedHeaders.POLY_ADDRESS, { method: c.method, requestPath: c.requestPath, body: c.body, timestampS: c.timestamp });
        expect(h).toEqual(c.expectedHeaders);
      }
    });
  }

  it('treats a missing, null and empty body alike, and signs the path without its query', () => {
    const s = L2.cases[0].secret;
    const none = hmacSignature(s, 1, 'GET', '/');
    expect(hmacSignature(s, 1, 'GET', '/', null)).toBe(none);
    expect(hmacSignature(s, 1, 'GET', '/', '')).toBe(none);
    expect(hmacSignature(s, '1', 'GET', '/')).toBe(none);
    const creds = { apiKey: 'k', secret: s, passphrase: 'p' };
    const withQuery = buildL2Headers(creds, '0xabc', { method: 'GET', requestPath: '/data/orders?next_cursor=MA==', timestampS: 5 });
    expect(withQuery.POLY_SIGNATURE).toBe(hmacSignature(s, 5, 'GET', '/data/orders'));
  });

  it('keeps = padding and uses the URL-safe alphabet', () => {
    for (let i = 0; i < 50; i++) {
      const sig = hmacSignature(L2.cases[0].secret, i, 'POST', '/order', `{"n":${i}}`);
      expect(sig).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    }
  });
});

describe('createOrDeriveApiKey', () => {
  const wallet = new Wallet(L1.cases[0].privateKey);
  const creds: ApiCreds = { apiKey: '00000000-0000-4000-8000-000000000001', secret: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', passphrase: 'a'.repeat(64) };
  let server: Server;
  let url = '';
  let mode: 'create' | 'exists' | 'none' = 'create';
  const seen: Array<{ method: string; path: string; headers: IncomingMessage['headers'] }> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
      const send = (status: number, v: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      if (req.url === '/time') return send(200, 1_700_000_000);
      const h = req.headers;
      const td = clobAuthTypedData(String(h.poly_address), String(h.poly_timestamp), BigInt(String(h.poly_nonce)), 137);
      if (verifyTypedData(td.domain, td.types, td.message, String(h.poly_signature)) !== h.poly_address) return send(401, { error: 'Unauthorized/Invalid api key' });
      if (req.method === 'POST' && req.url === '/auth/api-key') return mode === 'create' ? send(200, creds) : send(400, { error: 'Could not create api key' });
      if (req.method === 'GET' && req.url === '/auth/derive-api-key') return mode === 'none' ? send(400, { error: 'Could not derive api key!' }) : send(200, creds);
      send(404, { error: 'no route' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('creates a key with signed L1 headers', async () => {
    mode = 'create';
    seen.length = 0;
    expect(await createOrDeriveApiKey(url, wallet, { nonce: 7 })).toEqual(creds);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(['POST /auth/api-key']);
    expect(seen[0]?.headers).toMatchObject({ poly_address: wallet.address, poly_nonce: '7' });
  });

  it('falls back to derive when the key exists, and can use the venue clock', async () => {
    mode = 'exists';
    seen.length = 0;
    expect(await createOrDeriveApiKey(url, wallet, { useServerTime: true })).toEqual(creds);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /time', 'POST /auth/api-key', 'GET /time', 'GET /auth/derive-api-key']);
    expect(seen[1]?.headers.poly_timestamp).toBe('1700000000');
  });

  it('throws an ApiKeyError when neither works, without any secret in it', async () => {
    mode = 'none';
    const err = await createOrDeriveApiKey(url, wallet).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiKeyError);
    expect((err as ApiKeyError).message).toMatch(/Could not create api key.*Could not derive/);
    expect((err as ApiKeyError).status).toBe(400);
    const wrongChain = await createOrDeriveApiKey(url, wallet, { chainId: 80002 }).catch((e: unknown) => e);
    expect((wrongChain as ApiKeyError).status).toBe(401);
  });
});
