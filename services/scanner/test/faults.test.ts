import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusRequester, BusSubscriber, resolveEndpoints } from '@polybot/bus';
import { ServiceRunner, type Service } from '@polybot/core';
import type { BookStatusMessage, BusMessage } from '@polybot/protocol';
import { sleep, tempDataDir, waitFor } from '@polybot/testkit';
import { startSim, type RunningSim } from '../../sim/test/helpers.js';
import { scannerOnSim } from './scanner-on-sim.js';
import { createScannerService, ScannerConfig } from '../src/index.js';

/**
 * The scanner against the simulator's fault routes: 50 forced drops and 10 silent freezes (PONGs
 * still answered, no data). After each, every local book must equal the simulator's `/book`, and
 * each freeze must be noticed within twice the staleness window. The test drives the simulator's
 * makers itself, so it can hold the books still while it compares them.
 */
const ADMIN = 'fault-test-admin-secret';
const STALE_MS = 1000;
const DROPS = 50;
const FREEZES = 10;

type Level = [number, number];
const norm = (levels: Level[]) => [...levels].map(([p, s]) => `${p}@${s}`).sort();

describe('scanner under forced drops and silent freezes', () => {
  let sim: RunningSim;
  let tmp: ReturnType<typeof tempDataDir>;
  let runner: ServiceRunner<ScannerConfig>;
  let scanner: Service | undefined;
  let req: BusRequester;
  let sub: BusSubscriber;
  let driving = false;
  let driver: NodeJS.Timeout | undefined;
  const statuses: Array<{ at: number; msg: BookStatusMessage }> = [];

  const admin = (path: string, body: unknown = {}) =>
    fetch(`${sim.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-admin-secret': ADMIN }, body: JSON.stringify(body) }).then(async (r) => {
      expect(r.status).toBe(200);
      return (await r.json()) as Record<string, number>;
    });
  type Figures = Record<'reconnects' | 'stale_reconnects' | 'shards' | 'shards_connected' | 'books' | 'invalid_frames' | 'crossed_books' | 'top_mismatch' | 'out_of_order', number> &
    Record<string, number>;
  const metrics = () => scanner!.metrics!() as Figures;

  beforeAll(async () => {
    sim = await startSim({ POLYBOT_SIM_EVENT_RATE: '0', POLYBOT_SIM_ADMIN_SECRET: ADMIN, POLYBOT_SIM_MARKETS: '6' });
    tmp = tempDataDir('pbscanf');
    // 12 tokens over three connections: drops and freezes hit every shard.
    const config = scannerOnSim(sim, tmp.dir, { POLYBOT_SCANNER_STALE_MS: String(STALE_MS) });
    const eps = resolveEndpoints(tmp.dir, {});
    sub = new BusSubscriber({
      endpoints: [eps['prices.pub']],
      topics: ['book.status.'],
      onMessage: (msg: BusMessage) => {
        statuses.push({ at: Date.now(), msg: msg as BookStatusMessage });
      },
    });
    sub.start();
    runner = new ServiceRunner({ name: 'scanner', config, env: {}, create: (ctx) => (scanner = createScannerService(ctx)) });
    await runner.start();
    req = new BusRequester({ endpoint: eps['scanner.rep'], src: 'test', timeoutMs: 5000 });
    // Makers at ~500 events/s while driving; the books are still only while a comparison runs.
    driver = setInterval(() => {
      if (driving) for (let i = 0; i < 10; i++) sim.service.exchange.step();
    }, 20);
  }, 60_000);

  afterAll(async () => {
    if (driver) clearInterval(driver);
    await req?.close();
    await runner?.stop();
    await sub?.close();
    await sim?.stop();
    tmp?.cleanup();
  });

  /** Holds the makers still and waits until every local book is trusted and equal to the simulator's. */
  async function expectInSync(what: string): Promise<number> {
    driving = false;
    let tokens = 0;
    await waitFor(
      async () => {
        const snap = await req.call('books.snapshot', { depth: 1000 });
        if (snap.books.length < 12) return false;
        for (const b of snap.books) {
          if (!b.trusted) return false;
          const res = await fetch(`${sim.base}/book?token_id=${b.token_id}`);
          const venue = (await res.json()) as { bids: Array<{ price: string; size: string }>; asks: Array<{ price: string; size: string }> };
          const toLevels = (ls: typeof venue.bids): Level[] => ls.map((l) => [Number(l.price), Number(l.size)]);
          if (norm(b.bids as Level[]).join() !== norm(toLevels(venue.bids)).join()) return false;
          if (norm(b.asks as Level[]).join() !== norm(toLevels(venue.asks)).join()) return false;
        }
        tokens = snap.books.length;
        return true;
      },
      { what: `books equal to the simulator's after ${what}`, timeoutMs: 20_000, intervalMs: 50 },
    );
    return tokens;
  }

  it('follows every token of the simulator, sharded', async () => {
    await waitFor(() => metrics().books === 12, { what: '12 trusted books', timeoutMs: 20_000 });
    expect(metrics().shards).toBe(3);
    driving = true;
    await sleep(300);
    expect(await expectInSync('start')).toBe(12);
  });

  it(`heals ${DROPS} forced drops: after each, every book equals the simulator's /book`, async () => {
    const before = metrics().reconnects;
    for (let i = 0; i < DROPS; i++) {
      const reconnects = metrics().reconnects;
      driving = true;
      await sleep(30 + (i % 5) * 20);
      const { dropped } = await admin('/admin/ws/drop');
      expect(dropped).toBeGreaterThan(0);
      // Keep the books moving while the scanner reconnects: deltas during the gap must not leak in.
      await sleep(50);
      await waitFor(() => metrics().reconnects >= reconnects + 3 && metrics().shards_connected === 3, {
        what: `reconnect after drop ${i + 1}`,
        timeoutMs: 20_000,
      });
      expect(await expectInSync(`drop ${i + 1}`)).toBe(12);
    }
    expect(metrics().reconnects - before).toBeGreaterThanOrEqual(DROPS * 3);
  }, 300_000);

  it(`notices ${FREEZES} silent freezes within twice the staleness window and heals them`, async () => {
    for (let i = 0; i < FREEZES; i++) {
      const stale = metrics().stale_reconnects;
      driving = true;
      await sleep(100);
      const at = Date.now();
      const { frozen } = await admin('/admin/ws/freeze', { seconds: 30 });
      expect(frozen).toBe(3);
      await waitFor(() => metrics().stale_reconnects >= stale + 3, { what: `stale detection of freeze ${i + 1}`, timeoutMs: 20_000, intervalMs: 20 });
      // The first "disconnected" book.status after the freeze is when consumers were told.
      const toldAt = () => statuses.find((s) => s.at >= at && !s.msg.trusted && s.msg.reason === 'disconnected');
      await waitFor(() => toldAt() !== undefined, { what: `book.status after freeze ${i + 1}`, timeoutMs: 10_000, intervalMs: 20 });
      const told = toldAt();
      expect(told!.at - at).toBeLessThanOrEqual(2 * STALE_MS);
      expect(await expectInSync(`freeze ${i + 1}`)).toBe(12);
    }
    const m = metrics();
    expect(m.invalid_frames).toBe(0);
    expect(m.crossed_books).toBe(0);
    // The venue's own top of book in every price_change agreed with ours, and nothing arrived out of order.
    expect(m.top_mismatch).toBe(0);
    expect(m.out_of_order).toBe(0);
    expect(m['events_total:price_change']).toBeGreaterThan(1000);
  }, 300_000);
});
