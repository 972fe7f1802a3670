import { join } from 'node:path';
import { statSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { Publisher, Push, Reply } from 'zeromq';
import { encode } from '@msgpack/msgpack';
import { FlatEncoder, topics, type PriceMessage, type SignalMessage, type StatusMessage, type Unstamped } from '@polybot/protocol';
import { tempDataDir, waitFor, sleep } from '@polybot/testkit';
import {
  BusError,
  BusPublisher,
  BusPuller,
  BusPusher,
  BusReplier,
  BusRequester,
  BusSubscriber,
  Forwarder,
  prepareEndpoint,
  RpcFailure,
  type Endpoints,
} from '../src/index.js';
import { busTestEnv, joined, price, pricePair } from './harness.js';

const env = busTestEnv('pbbus');
const closers = env.closers;
let ep: Endpoints;
let tmp: ReturnType<typeof tempDataDir>;
beforeEach(() => {
  ep = env.ep;
  tmp = env.tmp;
});

describe('PUB/SUB', () => {
  it('delivers validated messages by topic prefix and stamps the envelope', async () => {
    const pub = new BusPublisher({ endpoint: ep['prices.pub'], mode: 'bind', src: 'scanner' });
    await pub.start();
    closers.push(() => pub.close());
    const got: PriceMessage[] = [];
    const sub = new BusSubscriber({ endpoints: [ep['prices.pub']], topics: ['price.1'], onMessage: (m) => void got.push(m as PriceMessage) });
    sub.start();
    closers.push(() => sub.close());
    await joined(pub, sub, topics.price('1'), price('1', 0.4));
    pub.publish(topics.price('2'), price('2', 0.3)); // not subscribed
    pub.publish(topics.price('1'), price('1', 0.41));
    const last = await waitFor(() => got.find((m) => m.bid === 0.41));
    expect(last).toMatchObject({ type: 'price', token_id: '1', v: 1, src: 'scanner' });
    expect(last.seq).toBeGreaterThan(1);
    expect(got.every((m) => m.token_id === '1')).toBe(true);
    expect(statSync(join(tmp.dir, 'ipc')).mode & 0o777).toBe(0o700);
  });

  it('hands every message to ZeroMQ as it is published: a burst from one synchronous loop arrives whole and in order', async () => {
    const { pub, sub, bids } = await pricePair(env, 'burst', { sendHighWaterMark: 100_000 });
    await sleep(100);
    const N = 20_000;
    // Far more than zeromq.js resolves per event-loop turn for a waiting send (512).
    for (let i = 1; i <= N; i++) expect(pub.publish(topics.price('burst'), price('burst', i / 1e6))).toBe(true);
    // Handed over in batches while the loop runs, the rest as soon as it yields: nothing is left
    // waiting on our side for later turns of the event loop.
    expect(pub.stats.queued).toBeLessThan(N);
    expect(await pub.drain(0)).toBe(true);
    expect(pub.stats.queued).toBe(0);
    expect(pub.stats.sent).toBeGreaterThanOrEqual(N);
    await waitFor(() => bids.length >= N, { what: 'the whole burst', timeoutMs: 30_000 });
    expect(bids).toEqual(Array.from({ length: N }, (_, i) => (i + 1) / 1e6));
    expect(sub.stats.gaps).toBe(0);
    await pub.close();
    // A closed publisher refuses and counts instead of throwing.
    expect(pub.publish(topics.price('burst'), price('burst', 0.5))).toBe(false);
    expect(pub.stats.dropped).toBe(1);
  });

  it('refuses to publish a message that breaks its schema', async () => {
    const pub = new BusPublisher({ endpoint: ep['prices.pub'], mode: 'bind', src: 'scanner' });
    await pub.start();
    closers.push(() => pub.close());
    expect(pub.publish('price.1', { ...price('1', 0.4), bid: 7 })).toBe(false);
    expect(pub.stats.invalid).toBe(1);
    expect(pub.stats.seq).toBe(0);
  });

  it('a message written entry by entry goes out as the same bytes as its object, and a bad one is refused', async () => {
    const pub = new BusPublisher({ endpoint: ep['prices.pub'], mode: 'bind', src: 'scanner' });
    await pub.start();
    closers.push(() => pub.close());
    pub.clock = () => 1_767_225_600_123;
    const sent: Buffer[] = [];
    pub.tap = (_topic, payload) => void sent.push(Buffer.from(payload));
    const head = FlatEncoder.entries({ type: 'price', token_id: '1', market: '0xabc' });
    const k = (name: string) => FlatEncoder.key(name);
    const written = (bid: number) => (w: Parameters<Parameters<BusPublisher['publishWritten']>[1]>[0]) =>
      void w.entries(head).field(k('bid')).number(bid).field(k('ask')).number(bid + 0.01).field(k('mid')).nil()
        .field(k('bid_size')).number(10).field(k('ask_size')).number(12.5).field(k('venue_ts')).number(5);
    const object = (bid: number): Unstamped<PriceMessage> => ({ type: 'price', token_id: '1', market: '0xabc', bid, ask: bid + 0.01, mid: null, bid_size: 10, ask_size: 12.5, venue_ts: 5 });
    expect(pub.publishWritten(topics.price('1'), written(0.4))).toBe(true);
    expect(pub.publish(topics.price('1'), object(0.4))).toBe(true);
    // Equal but for the sequence number: seq 1 and seq 2 are one byte each.
    const seqAt = sent[0]!.indexOf(Buffer.from([0xa3, ...Buffer.from('seq')])) + 4;
    expect(sent[0]![seqAt]).toBe(1);
    expect(sent[1]![seqAt]).toBe(2);
    sent[1]![seqAt] = 1;
    expect(sent[1]!.equals(sent[0]!)).toBe(true);
    // A validating publisher checks what was written.
    expect(pub.publishWritten(topics.price('1'), written(7))).toBe(false);
    expect(pub.stats.invalid).toBe(1);
    expect(pub.stats.seq).toBe(2);
    expect(sent).toHaveLength(2);
  });

  it('counts malformed frames by reason without stopping, and detects sequence gaps', async () => {
    const raw = new Publisher();
    prepareEndpoint(ep['prices.pub']);
    await raw.bind(ep['prices.pub']);
    closers.push(() => raw.close());
    const good: PriceMessage[] = [];
    const gaps: number[] = [];
    const sub = new BusSubscriber({
      endpoints: [ep['prices.pub']], topics: [''], onMessage: (m) => void good.push(m as PriceMessage), onGap: (_s, n) => void gaps.push(n),
    });
    sub.start();
    closers.push(() => sub.close());
    const valid = (seq: number) => encode({ ...price('9', 0.5), v: 1, src: 'x', seq, ts: 1 });
    await waitFor(async () => {
      await raw.send(['price.9', valid(1)]);
      return good.length > 0;
    });
    const bad: Array<[string, Uint8Array]> = [
      ['price.9', new Uint8Array([0xc1])], // never-used msgpack byte
      ['price.9', new Uint8Array([0xdb, 0xff, 0xff, 0xff, 0xff])], // 4 GB string header
      ['price.9', encode([1, 2, 3])],
      ['price.9', encode({ type: 'nope', v: 1, src: 'x', seq: 1, ts: 1 })],
      ['price.9', encode({ ...price('9', 0.5), bid: 'high', v: 1, src: 'x', seq: 1, ts: 1 })],
      ['book.9', valid(2)], // a price on a book topic
      ['price.9', encode({ ...price('9', 0.5), v: 99, src: 'x', seq: 1, ts: 1 })],
    ];
    for (const [t, p] of bad) await raw.send([t, p]);
    await raw.send(['price.9', valid(50)]);
    await waitFor(() => good.length >= 2);
    const s = sub.stats;
    expect(s.invalid).toBe(bad.length);
    expect(Object.keys(s.invalid_by_code).sort()).toEqual(['msgpack', 'not_map', 'schema', 'topic_mismatch', 'unknown_type', 'version'].sort());
    expect(sub.gaps).toBeGreaterThan(0);
    expect(gaps.at(-1)).toBe(50 - good.at(-2)!.seq - 1);
  });
});


describe('events forwarder', () => {
  it('merges many publishers into one stream', async () => {
    const fwd = new Forwarder({ frontend: ep['events.in'], backend: ep['events.pub'] });
    await fwd.start();
    closers.push(() => fwd.stop());
    const got: StatusMessage[] = [];
    const sub = new BusSubscriber({ endpoints: [ep['events.pub']], topics: ['status.'], onMessage: (m) => void got.push(m as StatusMessage) });
    sub.start();
    closers.push(() => sub.close());
    const pubs = ['a', 'b'].map((src) => new BusPublisher({ endpoint: ep['events.in'], mode: 'connect', src }));
    for (const p of pubs) {
      await p.start();
      closers.push(() => p.close());
    }
    const status = (service: string): Unstamped<StatusMessage> => ({
      type: 'status', service, state: 'running', since: 1, pid: 1, interval_ms: 1000, metrics: { x: 1 },
    });
    await waitFor(() => {
      for (const p of pubs) p.publish(topics.status(p.stats.seq >= 0 ? 'svc' : ''), status('svc'));
      return new Set(got.map((m) => m.src)).size === 2;
    });
    expect(new Set(got.map((m) => m.src))).toEqual(new Set(['a', 'b']));
  });
});

describe('REQ/REP', () => {
  it('answers typed calls, validates params and reports remote errors with codes', async () => {
    const rep = new BusReplier({
      endpoint: ep['analytics.rep'], src: 'analytics',
      handlers: {
        'prices.recent': (p) => ({ token_id: p.token_id, rows: [{ ts: 1, bid: 0.4, ask: 0.5, mid: 0.45 }] }),
        boom: () => { throw new RpcFailure('no_such_thing', 'nothing here'); },
      },
    });
    await rep.start();
    closers.push(() => rep.close());
    const req = new BusRequester({ endpoint: ep['analytics.rep'], src: 'api', timeoutMs: 2000 });
    closers.push(() => req.close());
    const res = await req.call('prices.recent', { token_id: '42', limit: 1 });
    expect(res.rows[0]!.mid).toBe(0.45);
    const ping = await req.call('ping', {});
    expect(ping.service).toBe('analytics');
    await expect(req.request('prices.recent', { token_id: '' })).rejects.toMatchObject({ code: 'remote', remoteCode: 'bad_params' });
    await expect(req.request('boom', {})).rejects.toMatchObject({ remoteCode: 'no_such_thing' });
    await expect(req.request('nope', {})).rejects.toMatchObject({ remoteCode: 'unknown_method' });
    // concurrent calls are serialized and each gets its own answer
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => req.call('prices.recent', { token_id: String(i) })));
    expect(many.map((r) => r.token_id)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
  });

  it('times out on a dead peer, then recovers when a replier comes back', async () => {
    const req = new BusRequester({ endpoint: ep['executor.rep'], src: 'api', timeoutMs: 300 });
    closers.push(() => req.close());
    const err = await req.call('ping', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusError);
    expect((err as BusError).code).toBe('timeout');
    expect((err as BusError).retryable).toBe(true);
    // A replier that receives but never answers, then dies: the REQ socket must not lock up.
    prepareEndpoint(ep['executor.rep']);
    const mute = new Reply();
    await mute.bind(ep['executor.rep']);
    await expect(req.call('ping', {})).rejects.toMatchObject({ code: 'timeout' });
    mute.close();
    await sleep(50);
    const rep = new BusReplier({ endpoint: ep['executor.rep'], src: 'executor', handlers: {} });
    await rep.start();
    closers.push(() => rep.close());
    const ok = await waitFor(() => req.call('ping', {}, 1000).catch(() => null), { what: 'replier to answer' });
    expect(ok.service).toBe('executor');
    expect(req.stats.timeouts).toBeGreaterThanOrEqual(2);
  });

  it('answers a malformed request with an error instead of hanging', async () => {
    const rep = new BusReplier({ endpoint: ep['scanner.rep'], src: 'scanner', handlers: {} });
    await rep.start();
    closers.push(() => rep.close());
    const { Request } = await import('zeromq');
    const raw = new Request({ receiveTimeout: 2000 });
    raw.connect(ep['scanner.rep']);
    closers.push(() => raw.close());
    await raw.send(['x', new Uint8Array([0xc1])]);
    const [, payload] = await raw.receive();
    const { decode } = await import('@msgpack/msgpack');
    expect(decode(payload!)).toMatchObject({ type: 'rpc.reply', ok: false, error: { code: 'bad_request' } });
    expect(rep.stats.invalid).toBe(1);
  });
});

describe('PUSH/PULL', () => {
  it('delivers signals in order and hands malformed ones to the dead-letter callback', async () => {
    const got: SignalMessage[] = [];
    const dead: string[] = [];
    const pull = new BusPuller({ endpoint: ep['signals.push'], onMessage: (m) => void got.push(m as SignalMessage), onInvalid: (f) => void dead.push(f.code) });
    await pull.start();
    closers.push(() => pull.close());
    const push = new BusPusher({ endpoint: ep['signals.push'], src: 'strategy:t' });
    push.start();
    closers.push(() => push.close());
    for (let i = 0; i < 100; i++) {
      push.push('signal', {
        type: 'signal', id: `sig-000000-${i}`, strategy: 't', token_id: '1', market: '0x1', side: 'BUY', price: 0.3, size: 5, order_type: 'FAK',
      });
    }
    await waitFor(() => got.length === 100);
    expect(got.map((s) => s.id)).toEqual(Array.from({ length: 100 }, (_, i) => `sig-000000-${i}`));
    const raw = new Push();
    raw.connect(ep['signals.push']);
    closers.push(() => raw.close());
    await raw.send(['signal', encode({ type: 'signal', id: 'short' })]);
    await waitFor(() => dead.length === 1);
    expect(dead).toEqual(['schema']);
  });
});
