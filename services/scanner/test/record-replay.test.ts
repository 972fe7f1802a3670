import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusRequester, BusSubscriber, resolveEndpoints } from '@polybot/bus';
import { ServiceRunner } from '@polybot/core';
import { Codec, type BusMessage } from '@polybot/protocol';
import { sleep, tempDataDir, waitFor } from '@polybot/testkit';
import { startSim, type RunningSim } from '../../sim/test/helpers.js';
import { scannerOnSim } from './scanner-on-sim.js';
import { createScannerService, RecordingReader, ScannerConfig, type ScannerService } from '../src/index.js';

/**
 * Record the live scanner against the simulator (a forced drop included), then replay the recording
 * through the same processors: what the replay publishes equals what the live run published, and
 * two replays publish exactly the same messages.
 */
const ADMIN = 'record-replay-admin-secret';
const MARKET_TOPICS = ['price.', 'book.', 'trade.'];

type Msg = Record<string, unknown>;
const payloadOf = (m: Msg) => {
  const { v: _v, src: _s, seq: _q, ts: _t, ...rest } = m;
  return rest;
};

describe('record and replay', () => {
  let sim: RunningSim;
  let tmp: ReturnType<typeof tempDataDir>;
  let runner: ServiceRunner<ScannerConfig>;
  let scanner: ScannerService | undefined;
  let req: BusRequester;
  let sub: BusSubscriber;
  const got: Array<{ topic: string; msg: Msg }> = [];
  const codec = new Codec();

  beforeAll(async () => {
    sim = await startSim({ POLYBOT_SIM_EVENT_RATE: '300', POLYBOT_SIM_ADMIN_SECRET: ADMIN, POLYBOT_SIM_MARKETS: '6' });
    tmp = tempDataDir('pbscanr');
    const config = scannerOnSim(sim, tmp.dir);
    const eps = resolveEndpoints(tmp.dir, {});
    sub = new BusSubscriber({
      endpoints: [eps['prices.pub']],
      topics: MARKET_TOPICS,
      onMessage: (msg: BusMessage, topic: string) => {
        got.push({ topic, msg: msg as unknown as Msg });
      },
    });
    sub.start();
    runner = new ServiceRunner({ name: 'scanner', config, env: {}, create: (ctx) => (scanner = createScannerService(ctx)) });
    await runner.start();
    req = new BusRequester({ endpoint: eps['scanner.rep'], src: 'test', timeoutMs: 10_000 });
  }, 60_000);

  afterAll(async () => {
    await req?.close();
    await runner?.stop();
    await sub?.close();
    await sim?.stop();
    tmp?.cleanup();
  });

  const metrics = () => scanner!.metrics!() as Record<string, number>;

  /** Replays and returns what was published meanwhile (replay messages carry recorded times). */
  async function replay(name: string, speed: number, endTs: number): Promise<Array<{ topic: string; msg: Msg }>> {
    const from = got.length;
    const started = await req.call('replay.start', { recording: name, speed });
    expect(started.state).toBe('running');
    await waitFor(async () => (await req.call('replay.status', {})).state === 'done', { what: 'replay done', timeoutMs: 60_000, intervalMs: 50 });
    const st = await req.call('replay.status', {});
    expect(st.records_done).toBe(st.records_total);
    // Let the subscriber drain, then keep the replay's messages only (the live feed resumed after it).
    await sleep(300);
    return got.slice(from).filter((g) => (g.msg.ts as number) <= endTs);
  }

  it('records raw frames and published events, a forced drop included', async () => {
    await waitFor(() => metrics().books === 12, { what: 'books', timeoutMs: 20_000 });
    const start = await req.call('record.start', { name: 'rr' });
    expect(start).toMatchObject({ recording: true, name: 'rr' });
    await expect(req.request('record.start', { name: 'other' })).rejects.toMatchObject({ remoteCode: 'already_recording' });
    await sleep(800);
    const dropped = await fetch(`${sim.base}/admin/ws/drop`, { method: 'POST', headers: { 'x-admin-secret': ADMIN } });
    expect(dropped.status).toBe(200);
    await waitFor(() => metrics().books === 12 && metrics().shards_connected === 3, { what: 'resync after drop', timeoutMs: 20_000 });
    await sleep(800);
    const stop = await req.call('record.stop', {});
    expect(stop.recording).toBe(false);
    expect(stop.raw_frames).toBeGreaterThan(50);
    expect(stop.events).toBeGreaterThan(50);
    const status = await req.call('record.status', {});
    expect(status.recording).toBe(false);
  });

  it('a replay publishes what the live run published, and two replays publish the same', async () => {
    const reader = await RecordingReader.open(join(tmp.dir, 'recordings', 'rr'));
    const info = reader.info();
    const live: Array<{ topic: string; msg: Msg }> = [];
    let sources = new Set<string>();
    for (const r of reader.records()) {
      if (r.kind === 'raw') sources.add(r.source);
      if (r.kind !== 'event' || !MARKET_TOPICS.some((t) => r.topic.startsWith(t))) continue;
      const d = codec.decodePayload(r.payload, r.topic);
      expect(d.ok).toBe(true);
      if (d.ok) live.push({ topic: r.topic, msg: d.msg as unknown as Msg });
    }
    sources = new Set([...sources].sort());
    expect([...sources]).toEqual(expect.arrayContaining(['checkpoint', 'gamma', 'market', 'market_status']));
    expect(live.length).toBeGreaterThan(50);

    const first = await replay('rr', 0, info.lastTs ?? 0);
    expect(first.map((g) => [g.topic, payloadOf(g.msg)])).toEqual(live.map((g) => [g.topic, payloadOf(g.msg)]));

    const second = await replay('rr', 0, info.lastTs ?? 0);
    const strip = (xs: typeof first) => xs.map((g) => [g.topic, { ...g.msg, seq: 0 }]);
    expect(strip(second)).toEqual(strip(first));
    // The live feed came back after each replay.
    await waitFor(() => metrics().books === 12 && metrics().source === ('live' as unknown as number), { what: 'live again', timeoutMs: 20_000 });
  });

  it('replays at a chosen speed, showing progress', async () => {
    const reader = await RecordingReader.open(join(tmp.dir, 'recordings', 'rr'));
    const info = reader.info();
    const started = await req.call('replay.start', { recording: 'rr', speed: 2 });
    expect(started).toMatchObject({ state: 'running', speed: 2, records_total: info.records });
    await waitFor(async () => (await req.call('replay.status', {})).records_done > 0, { what: 'progress', timeoutMs: 20_000, intervalMs: 20 });
    const mid = await req.call('replay.status', {});
    expect(mid.records_done).toBeLessThanOrEqual(mid.records_total);
    // Stop it early: the live feed resumes.
    const stopped = await req.call('replay.stop', {});
    expect(['stopped', 'done']).toContain(stopped.state);
    await waitFor(() => metrics().books === 12, { what: 'live books again', timeoutMs: 20_000 });
  });

  it('refuses what is not a recording with a clear error and keeps running', async () => {
    await expect(req.request('replay.start', { recording: 'missing', speed: 0 })).rejects.toMatchObject({ remoteCode: 'not_found' });
    const junk = join(tmp.dir, 'recordings', 'junk');
    mkdirSync(junk, { recursive: true });
    writeFileSync(join(junk, 'notes.txt'), 'not a recording');
    await expect(req.request('replay.start', { recording: 'junk', speed: 0 })).rejects.toMatchObject({ remoteCode: 'bad_recording' });
    await expect(req.request('replay.start', { recording: 'rr', speed: -1 })).rejects.toMatchObject({ remoteCode: 'bad_params' });
    await waitFor(() => metrics().books === 12, { what: 'still live', timeoutMs: 20_000 });
    // Running (or briefly degraded while a shard reconnects after the last replay), never faulted.
    expect(['running', 'degraded']).toContain(runner.currentState);
  });
});
