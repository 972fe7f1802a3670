import type { AddressInfo } from 'node:net';
import { createLogger } from '@polybot/core';
import { waitFor } from '@polybot/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { createApiKeyStore } from '../src/auth.js';
import { Exchange, type UserEvent } from '../src/exchange.js';
import { UserHub, type UserHubOptions } from '../src/user-ws.js';

// The hub on a bare `ws` server, for limits that need small settings: slow consumers, auth timeout.
const KEY = { apiKey: 'k-1', secret: 'c2VjcmV0', passphrase: 'pass', address: '0x' + 'c3'.repeat(20), nonce: 0, createdAt: 0 };
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0)) await f();
});

async function setup(opts: UserHubOptions) {
  const exchange = new Exchange({ seed: 3, markets: 1, startBalance: 0n });
  const store = createApiKeyStore();
  store.put(KEY);
  const hub = new UserHub(exchange, store, createLogger('sim-test', { level: 'silent' }), opts);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (s) => hub.accept(s));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  await new Promise((r, j) => client.once('open', r).once('error', j));
  const closed = new Promise<{ code: number; reason: string }>((r) => client.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  cleanups.push(async () => {
    client.terminate();
    hub.closeAll();
    await new Promise((r) => wss.close(r));
  });
  const emit = (ev: UserEvent) => (exchange as unknown as { emitUser(ev: UserEvent): void }).emitUser(ev);
  return { exchange, hub, client, closed, emit, market: exchange.markets[0]!.conditionId };
}

describe('UserHub limits', () => {
  it('drops a client that stops reading once its send buffer passes the limit', async () => {
    const { hub, client, closed, emit, market } = await setup({ maxBufferedBytes: 64 * 1024 });
    client.send(JSON.stringify({ auth: { apiKey: KEY.apiKey, secret: KEY.secret, passphrase: KEY.passphrase }, type: 'user' }));
    await waitFor(() => hub.metrics.clients === 1, { what: 'authenticated' });
    client.pause();
    const event = {
      event_type: 'order', id: '0x01', owner: KEY.apiKey, market, asset_id: '1', side: 'BUY', price: '0.5', original_size: '1',
      size_matched: '0', type: 'PLACEMENT', status: 'LIVE', associate_trades: null, timestamp: '1', outcome: 'x'.repeat(2000),
    } as const;
    // One burst per tick, so that each becomes its own frame and the buffer check runs between them.
    for (let i = 0; i < 5000 && hub.metrics.slowDropped === 0; i++) {
      for (let j = 0; j < 20; j++) emit({ address: KEY.address, event });
      await new Promise((r) => setImmediate(r));
    }
    expect(hub.metrics.slowDropped).toBe(1);
    expect(hub.metrics.clients).toBe(0);
    client.resume();
    expect(await closed).toEqual({ code: 1013, reason: 'slow consumer' });
  });

  it('closes a socket that never authenticates', async () => {
    const { hub, closed } = await setup({ authTimeoutMs: 50 });
    expect(await closed).toEqual({ code: 1008, reason: 'auth timeout' });
    expect(hub.metrics.authFailures).toBe(1);
    expect(hub.metrics.pending).toBe(0);
  });
});
