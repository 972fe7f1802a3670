import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GammaClient, PublicApiError, toMarketInfo, type GammaMarket } from '../src/index.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const template = JSON.parse(
  readFileSync(resolve(repoRoot, '../shared/polymarket/samples/gamma/market_btc_updown_5m_2026.json'), 'utf8'),
) as GammaMarket & Record<string, unknown>;

function market(i: number): Record<string, unknown> {
  return {
    ...template,
    id: String(1000 + i),
    conditionId: `0x${i.toString(16).padStart(64, '0')}`,
    slug: `m-${i}`,
    clobTokenIds: JSON.stringify([`${i}01`, `${i}02`]),
  };
}

// 7 markets; the fourth is broken (no conditionId) and must be skipped and counted.
const all = Array.from({ length: 7 }, (_, i) => (i === 3 ? { ...market(i), conditionId: undefined } : market(i)));
const queries: URLSearchParams[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/markets') {
      queries.push(url.searchParams);
      const offset = Number(url.searchParams.get('offset') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 100);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(all.slice(offset, offset + limit)));
      return;
    }
    if (url.pathname.startsWith('/slow')) return; // never answers
    res.statusCode = 503;
    res.end(JSON.stringify({ error: 'trading disabled' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('GammaClient', () => {
  it('pages over /markets, validating each object', async () => {
    const g = new GammaClient(`${base}/`);
    queries.length = 0;
    const res = await g.listMarkets({ active: true, closed: false, limit: 100, pageSize: 3 });
    expect(res.markets).toHaveLength(6);
    expect(res.invalid).toBe(1);
    expect(res.pages).toBe(3);
    expect(queries.map((q) => q.get('offset'))).toEqual(['0', '3', '6']);
    expect(queries[0]!.get('active')).toBe('true');
    expect(queries[0]!.get('closed')).toBe('false');
    expect(g.invalid).toBe(1);
  });

  it('stops at the limit and honours an offset', async () => {
    const g = new GammaClient(base);
    queries.length = 0;
    const res = await g.listMarkets({ limit: 4, offset: 1, pageSize: 3 });
    expect(res.markets.map((m) => m.id)).toEqual(['1001', '1002', '1004']);
    expect(queries.map((q) => [q.get('offset'), q.get('limit')])).toEqual([
      ['1', '3'],
      ['4', '1'],
    ]);
  });

  it('turns HTTP failures and timeouts into PublicApiError with status and code', async () => {
    const bad = new GammaClient(`${base}/nope`);
    const err = await bad.listMarkets().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublicApiError);
    expect((err as PublicApiError).status).toBe(503);
    expect((err as PublicApiError).retryable).toBe(true);
    expect((err as PublicApiError).message).toMatch(/HTTP 503: trading disabled/);

    const slow = new GammaClient(`${base}/slow`, { timeoutMs: 200 });
    const terr = (await slow.listMarkets().catch((e: unknown) => e)) as PublicApiError;
    expect(terr.code).toBe('timeout');
    expect(terr.status).toBe(0);
  });
});

describe('toMarketInfo', () => {
  it('maps the recorded BTC 5m market', () => {
    const m = toMarketInfo(template);
    expect(m).toEqual({
      conditionId: '0x78443f961b9a65869dcb39359de9960165c7e5cbad0904eac7f29cd77872a63b',
      gammaId: '1557558',
      question: 'Bitcoin Up or Down - March 12, 5:20AM-5:25AM ET',
      slug: 'btc-updown-5m-1773307200',
      active: true,
      closed: false,
      negRisk: false,
      tickSize: '0.01',
      minOrderSize: '5',
      endDate: '2026-03-12T09:25:00Z',
      tokens: [
        { tokenId: '104239898038807136052399800151408521467737075933964991162589336683346093173875', outcome: 'Up', outcomeIndex: 0 },
        { tokenId: '71183960810705820955071415844881728181970340514894896943812046065452395013351', outcome: 'Down', outcomeIndex: 1 },
      ],
    });
  });

  it('formats small tick sizes without exponents and tolerates broken arrays', () => {
    const m = toMarketInfo({ ...template, orderPriceMinTickSize: 0.0000001, clobTokenIds: 'not json', negRisk: true });
    expect(m.tickSize).toBe('0.0000001');
    expect(m.tokens).toEqual([]);
    expect(m.negRisk).toBe(true);
  });
});
