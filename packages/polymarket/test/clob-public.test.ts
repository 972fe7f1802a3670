import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBook, PublicApiError } from '../src/index.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const recorded = readFileSync(resolve(repoRoot, '../shared/polymarket/samples/rest/clob_book_recorded_2024.json'), 'utf8');
let server: Server;
let base: string;
const asked: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const token = url.searchParams.get('token_id') ?? '';
    asked.push(token);
    if (url.pathname !== '/book') {
      res.statusCode = 404;
      return res.end('{"error":"not found"}');
    }
    if (token === 'missing') {
      res.statusCode = 404;
      return res.end('{"error":"No orderbook exists for the requested token id"}');
    }
    if (token === 'bad') return res.end('{"market":"m","bids":"nope"}');
    return res.end(recorded);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('getBook', () => {
  it('returns the validated recorded book', async () => {
    const b = await getBook(`${base}/`, '23360939988679364027624185518382759743328544433592111535569478055890815567848');
    expect(b.asset_id).toBe('23360939988679364027624185518382759743328544433592111535569478055890815567848');
    expect(b.bids.length).toBeGreaterThan(0);
    expect(asked.at(-1)).toBe('23360939988679364027624185518382759743328544433592111535569478055890815567848');
  });

  it('reports venue errors and bad shapes clearly', async () => {
    const e404 = (await getBook(base, 'missing').catch((e: unknown) => e)) as PublicApiError;
    expect(e404).toBeInstanceOf(PublicApiError);
    expect(e404.status).toBe(404);
    expect(e404.retryable).toBe(false);
    expect(e404.message).toMatch(/No orderbook exists/);
    const eBad = (await getBook(base, 'bad').catch((e: unknown) => e)) as PublicApiError;
    expect(eBad.code).toBe('bad_body');
    expect(eBad.message).toMatch(/BookSummary/);
  });
});
