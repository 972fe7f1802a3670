import { afterAll, describe, expect, it } from 'vitest';
import { makeRng, Rig, runSignals, runWithKills, SignalFeed, summaryLine, type RigOptions, type Verdict } from './executor-harness.js';

// End-to-end: the executor and the simulator as real processes (built dist), the harness as a strategy
// (signals over ZeroMQ, re-sent until stored) and as an auditor (the account's user channel and REST).
// Seeds are fixed so a failure replays with the same signals, kill delays and venue; E2E_SEED varies
// them. E2E_KEEP=1 keeps each data dir (executor.log, sim.log, polybot.db) for a post-mortem.
const SEED = Number(process.env.E2E_SEED ?? 7);

const rigs: Rig[] = [];
afterAll(async () => {
  await Promise.all(rigs.map((r) => r.close()));
}, 60_000);

/** Runs `fn` on a fresh rig and stops its processes right after, so the next test has the cores. */
async function withRig(opts: RigOptions, fn: (r: Rig) => Promise<void>): Promise<void> {
  const r = await Rig.start(opts);
  rigs.push(r);
  try {
    await fn(r);
  } finally {
    await r.close();
  }
}

const list = (xs: string[]) => `${xs.length}:\n  ${xs.slice(0, 15).join('\n  ')}${xs.length > 15 ? '\n  …' : ''}`;

/** Every end-state invariant, as soft assertions so one run reports all that fail. */
function expectEndState(v: Verdict, unsettled: string[]): void {
  expect.soft(unsettled.length, `settle: ${unsettled[0]}; not final ${list(unsettled.slice(1))}`).toBe(0);
  // (a) one venue order per signal at most, and every venue order is one the executor recorded.
  expect.soft(v.watchGaps, 'the user-channel watch missed events, so the venue-side order list may be incomplete').toBe(0);
  expect.soft(v.orphans.length, `venue orders with no executor row ${list(v.orphans)}`).toBe(0);
  expect.soft(v.doubles.length, `signals with two or more venue orders ${list(v.doubles)}`).toBe(0);
  expect.soft(v.mismatched.length, `venue orders that differ from their executor row or signal ${list(v.mismatched)}`).toBe(0);
  expect.soft(v.rejectedButPlaced.length, `orders the executor calls rejected that the venue has ${list(v.rejectedButPlaced)}`).toBe(0);
  expect.soft(v.phantomFills.length, `executor fills on orders the venue never had ${list(v.phantomFills)}`).toBe(0);
  // (b) every signal has a final outcome, every order a terminal status, nothing left at the venue.
  expect.soft(v.notStored.length, `signals the executor never stored ${list(v.notStored)}`).toBe(0);
  expect.soft(v.notFinal.length, `signals without a final outcome ${list(v.notFinal)}`).toBe(0);
  expect.soft(v.openOrders.length, `executor orders not terminal ${list(v.openOrders)}`).toBe(0);
  expect.soft(v.liveAtVenue.length, `orders still live at the venue ${list(v.liveAtVenue)}`).toBe(0);
  expect.soft(v.tradesNotFinal.length, `venue trades not CONFIRMED/FAILED ${list(v.tradesNotFinal)}`).toBe(0);
  // (c) positions: Σ executor positions per token = the venue's token balance, exactly.
  expect.soft(v.positionDiffs.length, `executor positions ≠ venue balances ${list(v.positionDiffs)}`).toBe(0);
}

describe('executor on the simulator, under crashes and venue faults', () => {
  it('1,000 signals with the executor SIGKILLed at random 20+ times: one order per signal, all final, positions = balances', () =>
    withRig({ name: 'crash', seed: SEED }, async (r) => {
      // Separate streams: the signals must not depend on how the kills interleave with them.
      const feed = new SignalFeed(r, makeRng(SEED), 'crash');
      const rng = makeRng(SEED ^ 0x9e3779b9);
      await runWithKills(r, feed, {
        signals: 1000,
        intervalMs: 30,
        perLife: 40,
        killDelay: () => rng.int(300, 2500),
        // A quarter of the restarts die again while starting, 0.1–1.2 s after spawn.
        startupKill: () => (rng.next() < 0.25 ? rng.int(100, 1200) : undefined),
      });
      expect(r.kills, 'kills of a running executor while signals flowed').toBeGreaterThanOrEqual(20);
      const unsettled = await r.settle(feed, { timeoutMs: 60_000, stallMs: 15_000 });
      const v = await r.verify(feed);
      console.log(summaryLine('crash', v));
      expect(feed.sent.size).toBe(1000);
      expectEndState(v, unsettled);
    }), 240_000);

  it('10 % of accepted orders lose their answer (accept_then_timeout): no duplicate order, every signal final', () =>
    withRig({ name: 'timeout', seed: SEED + 1, executorEnv: { POLYBOT_EXECUTOR_ORDER_TIMEOUT_MS: '1500' } }, async (r) => {
      const set = (await r.admin('faults', { accept_then_timeout_rate: 0.1 })) as { accept_then_timeout_rate: number };
      expect(set.accept_then_timeout_rate).toBe(0.1);
      const feed = new SignalFeed(r, makeRng(SEED + 1), 'timeout');
      await runSignals(feed, { signals: 150, intervalMs: 40 });
      const unsettled = await r.settle(feed, { timeoutMs: 40_000, stallMs: 15_000 });
      const v = await r.verify(feed);
      const view = (await r.admin('faults')) as { metrics: Record<string, number> };
      v.summary.answers_dropped = view.metrics.fault_timeouts;
      console.log(summaryLine('accept_then_timeout', v));
      // The fault must actually have hit some orders, or the test proves nothing.
      expect(view.metrics.fault_timeouts, 'POST /order answers the simulator dropped').toBeGreaterThan(0);
      expectEndState(v, unsettled);
    }), 240_000);

  it('20 % of trades FAIL on chain (POLYBOT_SIM_FAIL_RATE=0.2): positions end equal to balances', () =>
    withRig({ name: 'failrate', seed: SEED + 2, simEnv: { POLYBOT_SIM_FAIL_RATE: '0.2' } }, async (r) => {
      const feed = new SignalFeed(r, makeRng(SEED + 2), 'failrate');
      await runSignals(feed, { signals: 150, intervalMs: 40 });
      const unsettled = await r.settle(feed, { timeoutMs: 40_000, stallMs: 15_000 });
      const v = await r.verify(feed);
      console.log(summaryLine('fail_rate', v));
      expect((v.summary.venue_trades as Record<string, number>).FAILED ?? 0, 'trades the simulator failed').toBeGreaterThan(0);
      expectEndState(v, unsettled);
    }), 240_000);
});
