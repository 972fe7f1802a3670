import { loadConfig, ServiceRunner } from '@polybot/core';
import { tempDataDir } from '@polybot/testkit';
import { toMicros as micros } from '@polybot/protocol';
import WebSocket from 'ws';
import { createSimService, SimConfig, type SimService } from '../src/index.js';

export interface RunningSim {
  service: SimService;
  base: string;
  wsUrl: string;
  stop(): Promise<void>;
}

/** Starts the simulator in-process on port 0 with its own temporary data dir. */
export async function startSim(env: Record<string, string> = {}): Promise<RunningSim> {
  const tmp = tempDataDir('pbsim');
  const config = loadConfig(SimConfig, {
    // Most tests drive the engine with unsigned orders named by POLY_ADDRESS and count exactly the
    // generated markets with only their own orders; auth, rounds, neg-risk and trader tests opt back in.
    env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_SIM_PORT: '0', POLYBOT_LOG_LEVEL: 'silent', POLYBOT_SIM_REQUIRE_AUTH: 'false', POLYBOT_SIM_NEG_RISK: 'false', POLYBOT_SIM_ROUND_ASSETS: 'none', POLYBOT_SIM_TRADERS: '0', ...env },
    envFile: false,
  });
  let service: SimService | undefined;
  const runner = new ServiceRunner({
    name: 'sim',
    config,
    env: { POLYBOT_DATA_DIR: tmp.dir },
    create: (ctx) => (service = createSimService(ctx)),
  });
  await runner.start();
  if (!service) throw new Error('service not created');
  const port = service.port;
  return {
    service,
    base: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws/market`,
    async stop() {
      await runner.stop();
      tmp.cleanup();
    },
  };
}

export async function getJson<T = unknown>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

export async function postRaw(url: string, body: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, body: await res.json() };
}

/** A WebSocket client that queues every parsed event (array frames are flattened). */
export class WsClient {
  readonly events: any[] = [];
  readonly texts: string[] = [];
  frames = 0;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames++;
      const text = data.toString();
      // Plain-text frames (PONG, INVALID OPERATION) are kept apart from JSON events.
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        this.texts.push(text);
        return;
      }
      if (Array.isArray(v)) this.events.push(...v);
      else this.events.push(v);
    });
  }

  static open(url: string): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new WsClient(ws)));
      ws.once('error', reject);
    });
  }

  send(v: unknown): void {
    this.ws.send(typeof v === 'string' ? v : JSON.stringify(v));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

const ZERO32 = `0x${'0'.repeat(64)}`;
let salt = 1;

/** A PostOrderBody for `shares` at `price` (decimal strings), amounts in 6-decimal base units. */
export function orderBody(opts: {
  tokenId: string;
  side: 'BUY' | 'SELL';
  price: string;
  shares: string;
  owner?: string;
  orderType?: 'GTC' | 'GTD' | 'FOK' | 'FAK';
}): Record<string, unknown> {
  const p = micros(opts.price);
  const s = micros(opts.shares);
  const usdc = (p * s) / 1_000_000n;
  const maker = opts.side === 'BUY' ? usdc : s;
  const taker = opts.side === 'BUY' ? s : usdc;
  return {
    order: {
      salt: salt++,
      maker: '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266',
      signer: '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266',
      tokenId: opts.tokenId,
      makerAmount: maker.toString(),
      takerAmount: taker.toString(),
      side: opts.side,
      signatureType: 0,
      timestamp: '1713398400000',
      expiration: '0',
      metadata: ZERO32,
      builder: ZERO32,
      signature: `0x${'ab'.repeat(65)}`,
    },
    owner: opts.owner ?? 'test-owner',
    orderType: opts.orderType ?? 'GTC',
  };
}

export { fromMicros as fmt, toMicros as micros } from '@polybot/protocol';
