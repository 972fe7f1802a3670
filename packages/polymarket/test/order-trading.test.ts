import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Wallet } from 'ethers';
import { freePort } from '@polybot/testkit';
import { buildSignedOrder, ClobTradingClient, type PostOrderBody } from '../src/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server;
let baseUrl: string;
let handler: Handler = (_req, res) => res.end();
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(body);
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const wallet = Wallet.createRandom();
const body: PostOrderBody = {
  order: buildSignedOrder({ wallet, tokenId: '123', side: 'BUY', price: '0.5', size: '10', orderType: 'GTC', tickSize: '0.01', negRisk: false }),
  owner: wallet.address.toLowerCase(),
  orderType: 'GTC',
  deferExec: false,
  postOnly: false,
};
const json = (res: ServerResponse, status: number, value: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
};

describe('ClobTradingClient.postOrder', () => {
  it('sends the exact body and reports an accepted order', async () => {
    handler = (_req, res) => json(res, 200, { success: true, errorMsg: '', orderID: '0xabc', status: 'live', makingAmount: '', takingAmount: '', tradeIDs: [] });
    const out = await new ClobTradingClient({ baseUrl, timeoutMs: 2000 }).postOrder(body);
    expect(out).toMatchObject({ kind: 'accepted', response: { success: true, orderID: '0xabc', status: 'live' } });
    expect(JSON.parse(seen.at(-1) ?? '')).toEqual(body);
  });

  it('reports success:false as rejected with the venue message', async () => {
    handler = (_req, res) => json(res, 200, { success: false, errorMsg: 'not enough balance / allowance', orderID: null });
    const out = await new ClobTradingClient({ baseUrl }).postOrder(body);
    expect(out).toMatchObject({ kind: 'rejected', errorMsg: 'not enough balance / allowance', status: 200, retryable: false });
  });

  it('reports a 4xx {error} as rejected, 429 as retryable with retry-after', async () => {
    handler = (_req, res) => json(res, 400, { error: 'invalid order: Price (0.555) breaks minimum tick size rule' });
    expect(await new ClobTradingClient({ baseUrl }).postOrder(body)).toMatchObject({ kind: 'rejected', status: 400, errorMsg: expect.stringMatching(/tick size/) });
    handler = (_req, res) => {
      res.setHeader('retry-after', '3');
      json(res, 429, { error: 'Too Many Requests' });
    };
    expect(await new ClobTradingClient({ baseUrl }).postOrder(body)).toMatchObject({ kind: 'rejected', status: 429, retryable: true, retryAfterMs: 3000 });
  });

  it('reports 5xx, a malformed 200 and a timeout as ambiguous', async () => {
    handler = (_req, res) => json(res, 500, { error: 'Internal server error' });
    expect(await new ClobTradingClient({ baseUrl }).postOrder(body)).toMatchObject({ kind: 'ambiguous', status: 500 });
    handler = (_req, res) => json(res, 200, { ok: 1 });
    expect(await new ClobTradingClient({ baseUrl }).postOrder(body)).toMatchObject({ kind: 'ambiguous', code: 'bad_body' });
    handler = () => undefined; // never answers
    expect(await new ClobTradingClient({ baseUrl, timeoutMs: 300 }).postOrder(body)).toMatchObject({ kind: 'ambiguous', code: 'timeout' });
  });

  it('reports a connection reset after sending as ambiguous', async () => {
    handler = (req) => req.socket.destroy();
    expect(await new ClobTradingClient({ baseUrl }).postOrder(body)).toMatchObject({ kind: 'ambiguous' });
  });

  it('reports a refused connection as not sent', async () => {
    const port = await freePort(); // nothing listens there
    const out = await new ClobTradingClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 2000 }).postOrder(body);
    expect(out).toMatchObject({ kind: 'not_sent', code: 'ECONNREFUSED' });
  });
});
