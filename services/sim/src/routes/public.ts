import type { BookSummary } from '@polybot/polymarket';
import { fromMicros, microsToNumber } from '@polybot/protocol';
import type { FastifyInstance, FastifyReply } from 'fastify';
import Type from 'typebox';
import Compile from 'typebox/compile';
import { ClobCatalog, page } from '../clob-markets.js';
import { PriceRecorder } from '../history.js';
import { askOrOne, bidOrZero, midMicros, topOfBook, type TopOfBook } from '../quotes.js';
import type { ServerDeps } from '../server.js';
import { BadRequest, int, list, one, type Query } from './util.js';

export const NO_BOOK = 'No orderbook exists for the requested token id';
/** Most items a batch body (`/books`, `/prices`, …) may carry, as on the venue. */
const MAX_BATCH = 500;

const BatchBody = Type.Array(
  Type.Object({
    token_id: Type.String({ minLength: 1, maxLength: 100 }),
    side: Type.Optional(Type.Union([Type.Literal('BUY'), Type.Literal('SELL')])),
  }),
  { minItems: 1, maxItems: MAX_BATCH },
);
type BatchItem = { token_id: string; side?: 'BUY' | 'SELL' | undefined };
const checkBatch = Compile(BatchBody);

const INTERVAL_S: Record<string, number | undefined> = { '1h': 3600, '6h': 6 * 3600, '1d': 86_400, '1w': 7 * 86_400 };
const INTERVALS = ['1h', '6h', '1d', '1w', 'max'];
/** Default fidelity keeps an answer near this many points. */
const DEFAULT_POINTS = 720;

/** A token the exchange does not know: the venue's 404. */
class NoBook extends Error {
  readonly statusCode = 404;
  constructor() {
    super(NO_BOOK);
  }
}

function side(v: string | undefined): 'BUY' | 'SELL' {
  const s = v?.toUpperCase();
  if (s !== 'BUY' && s !== 'SELL') throw new BadRequest('Invalid side: must be BUY or SELL');
  return s;
}

function unixSeconds(q: Query, key: string): number | undefined {
  const v = one(q, key);
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,12}$/.test(v)) throw new BadRequest(`${key} must be unix seconds`);
  return Number(v);
}

/** Public CLOB REST: no auth. */
export function registerPublicRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { exchange } = deps;
  const catalog = new ClobCatalog(exchange);
  const recorder = new PriceRecorder(exchange);
  app.addHook('onClose', async () => recorder.close());

  const book = (tokenId: string): BookSummary => {
    const b = exchange.bookSummary(tokenId);
    if (!b) throw new NoBook();
    return b;
  };
  const top = (tokenId: string): TopOfBook => topOfBook(book(tokenId));
  const tokenParam = (q: Query): string => {
    const t = one(q, 'token_id');
    if (!t) throw new BadRequest('Invalid payload: token_id is required');
    return t;
  };
  /** Batch input: a JSON body on POST, `token_ids` (and `sides`) on GET; unknown tokens → 404. */
  const batch = (req: { method: string; body: unknown; query: unknown }): BatchItem[] => {
    let items: BatchItem[];
    if (req.method === 'POST') {
      if (!checkBatch.Check(req.body)) {
        const e = checkBatch.Errors(req.body)[0];
        throw new BadRequest(`Invalid payload${e ? `: ${e.instancePath || '/'} ${e.message}` : ''}`);
      }
      items = req.body;
    } else {
      const q = req.query as Query;
      const ids = list(q, 'token_ids') ?? [];
      const sides = list(q, 'sides') ?? [];
      if (ids.length === 0) throw new BadRequest('Invalid payload: token_ids is required');
      if (ids.length > MAX_BATCH) throw new BadRequest(`Invalid payload: at most ${MAX_BATCH} token ids`);
      if (sides.length > 1 && sides.length !== ids.length) throw new BadRequest('Invalid payload: sides must match token_ids');
      items = ids.map((token_id, i) => ({ token_id, side: sides.length > 0 ? side(sides[sides.length > 1 ? i : 0]) : undefined }));
    }
    for (const it of items) if (!exchange.hasToken(it.token_id)) throw new NoBook();
    return items;
  };
  const both = (app: FastifyInstance, path: string, handler: (req: { method: string; body: unknown; query: unknown }) => unknown) => {
    app.get(path, async (req) => handler(req));
    app.post(path, async (req) => handler(req));
  };
  const notFound = (reply: FastifyReply, error: string) => reply.code(404).send({ error });

  // ---------------------------------------------------------------- CLOB public

  app.get('/ok', async (_req, reply) => reply.type('text/plain').send('OK'));
  app.get('/time', async () => Math.floor(Date.now() / 1000));
  app.get('/version', async () => ({ version: 2 }));

  app.get('/book', async (req) => book(tokenParam(req.query as Query)));
  app.post('/books', async (req) => batch(req).map((it) => book(it.token_id)));

  // API reference: side=BUY → best bid, side=SELL → best ask; an empty side reads 0 / 1 like WS best_bid/best_ask.
  const priceOf = (t: TopOfBook, s: 'BUY' | 'SELL') => fromMicros(s === 'BUY' ? bidOrZero(t) : askOrOne(t));
  app.get('/price', async (req) => {
    const q = req.query as Query;
    const tokenId = tokenParam(q);
    const s = side(one(q, 'side'));
    return { price: priceOf(top(tokenId), s) };
  });
  both(app, '/prices', (req) => {
    const out: Record<string, { BUY?: string; SELL?: string }> = {};
    for (const it of batch(req)) {
      const t = top(it.token_id);
      const entry = (out[it.token_id] ??= {});
      for (const s of it.side ? [it.side] : (['BUY', 'SELL'] as const)) entry[s] = priceOf(t, s);
    }
    return out;
  });

  app.get('/midpoint', async (req) => ({ mid: fromMicros(midMicros(top(tokenParam(req.query as Query)))) }));
  both(app, '/midpoints', (req) =>
    Object.fromEntries(batch(req).map((it) => [it.token_id, fromMicros(midMicros(top(it.token_id)))])),
  );

  const spreadOf = (t: TopOfBook) => fromMicros(askOrOne(t) - bidOrZero(t));
  app.get('/spread', async (req) => ({ spread: spreadOf(top(tokenParam(req.query as Query))) }));
  both(app, '/spreads', (req) => Object.fromEntries(batch(req).map((it) => [it.token_id, spreadOf(top(it.token_id))])));

  const lastTrade = (tokenId: string) => ({
    price: fromMicros(top(tokenId).last),
    side: recorder.lastTradeSide(tokenId),
  });
  app.get('/last-trade-price', async (req) => lastTrade(tokenParam(req.query as Query)));
  both(app, '/last-trades-prices', (req) => batch(req).map((it) => ({ token_id: it.token_id, ...lastTrade(it.token_id) })));

  const marketOf = (q: Query) => {
    const m = catalog.marketOfToken(tokenParam(q));
    if (!m) throw new NoBook();
    return m;
  };
  app.get('/tick-size', async (req) => ({ minimum_tick_size: microsToNumber(marketOf(req.query as Query).tickSize) }));
  app.get('/neg-risk', async (req) => ({ neg_risk: marketOf(req.query as Query).negRisk }));
  // V1-era fee rate in bps; the sim charges no fees.
  app.get('/fee-rate', async (req) => {
    marketOf(req.query as Query);
    return { base_fee: 0 };
  });

  app.get('/prices-history', async (req) => {
    const q = req.query as Query;
    const tokenId = one(q, 'market');
    if (!tokenId) throw new BadRequest('market (token id) is required');
    if (!recorder.has(tokenId)) throw new NoBook();
    const interval = one(q, 'interval');
    const startTs = unixSeconds(q, 'startTs');
    const endTs = unixSeconds(q, 'endTs');
    const nowS = Math.floor(Date.now() / 1000);
    let startS: number;
    let endS: number;
    if (interval !== undefined && interval !== '') {
      if (!INTERVALS.includes(interval)) throw new BadRequest(`interval must be one of ${INTERVALS.join(', ')}`);
      if (startTs !== undefined || endTs !== undefined) throw new BadRequest('interval cannot be combined with startTs/endTs');
      endS = nowS;
      startS = interval === 'max' ? 0 : nowS - (INTERVAL_S[interval] as number);
    } else {
      if (startTs === undefined && endTs === undefined) throw new BadRequest('interval or startTs/endTs is required');
      startS = startTs ?? 0;
      endS = endTs ?? nowS;
      if (startS > endS) throw new BadRequest('startTs must not be after endTs');
    }
    // Default fidelity: about DEFAULT_POINTS points over the part of the range that was recorded.
    const from = Math.max(startS, recorder.oldest(tokenId) ?? nowS);
    const span = Math.max(0, Math.min(endS, nowS) - from);
    const fidelityMin = int(q, 'fidelity', Math.max(1, Math.ceil(span / 60 / DEFAULT_POINTS)), 525_600);
    if (fidelityMin < 1) throw new BadRequest('fidelity must be at least 1 (minute)');
    return { history: recorder.history(tokenId, { startS, endS, fidelityMin }) };
  });

  // ---------------------------------------------------------------- CLOB market listings

  app.get('/markets-by-token/:tokenId', async (req, reply) => {
    const tokenId = (req.params as { tokenId: string }).tokenId;
    const m = catalog.marketOfToken(tokenId);
    if (!m) return notFound(reply, 'market not found');
    return { condition_id: m.conditionId, primary_token_id: m.tokenIds[0], secondary_token_id: m.tokenIds[1] };
  });

  app.get('/clob-markets/:conditionId', async (req, reply) => {
    const info = catalog.info((req.params as { conditionId: string }).conditionId);
    return info ?? notFound(reply, 'market not found');
  });

  app.get('/simplified-markets', async (req) => page(catalog.simplifiedMarkets(), req.query as Query));
  app.get('/sampling-markets', async (req) => page(catalog.samplingMarkets(), req.query as Query));
  app.get('/sampling-simplified-markets', async (req) => page(catalog.samplingSimplifiedMarkets(), req.query as Query));
  // `GET /markets` (CLOB form with `next_cursor`) and `GET /markets/0x…` share their paths with
  // Gamma and are dispatched in gamma.ts.
}
