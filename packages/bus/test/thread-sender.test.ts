import { describe, expect, it } from 'vitest';
import { Subscriber } from 'zeromq';
import { FlatEncoder, topics, type MapWriter } from '@polybot/protocol';
import { waitFor, sleep } from '@polybot/testkit';
import { BusPublisher, prepareEndpoint } from '../src/index.js';
import { busTestEnv, price, pricePair } from './harness.js';
import { ThreadSender, type ThreadSenderOptions } from '../src/thread-sender.js';

const env = busTestEnv('pbthread');
const closers = env.closers;

/**
 * A sender thread on prices.pub with a subscriber to `prefix` that has joined (a PUB socket sends
 * nothing to a subscriber it does not know yet); `got` collects `topic:show(payload)` after that.
 */
async function joinedSender(prefix: string, opts: Partial<ThreadSenderOptions>, show: (payload: Buffer) => string) {
  prepareEndpoint(env.ep['prices.pub']);
  const sender = new ThreadSender({ endpoint: env.ep['prices.pub'], mode: 'bind', sendHighWaterMark: 0, onError: () => {}, ...opts });
  await sender.start();
  closers.push(() => sender.close());
  const sub = new Subscriber({ receiveHighWaterMark: 0 });
  sub.connect(env.ep['prices.pub']);
  sub.subscribe(prefix);
  closers.push(() => sub.close());
  const got: string[] = [];
  let warm = 0;
  void (async () => {
    for await (const [t, p] of sub) {
      if (t!.toString() === `${prefix}.warm`) warm++;
      else got.push(`${t!.toString()}:${show(p!)}`);
    }
  })().catch(() => {});
  await waitFor(() => {
    sender.enqueue(`${prefix}.warm`, [Buffer.from(`${prefix}.warm`), new Uint8Array(1)]);
    return warm > 0;
  }, { what: 'subscriber to join' });
  return { sender, got };
}

describe('publisher with a sender thread', () => {
  it('delivers a burst from one synchronous loop whole and in order, drains, and refuses after close', async () => {
    const { pub, sub, bids } = await pricePair(env, 'burst', { sendThread: true, sendHighWaterMark: 100_000 });
    await sleep(100);
    const N = 20_000;
    for (let i = 1; i <= N; i++) expect(pub.publish(topics.price('burst'), price('burst', i / 1e6))).toBe(true);
    expect(await pub.drain(10_000)).toBe(true);
    expect(pub.stats.queued).toBe(0);
    await waitFor(() => bids.length >= N, { what: 'the whole burst', timeoutMs: 30_000 });
    expect(bids).toEqual(Array.from({ length: N }, (_, i) => (i + 1) / 1e6));
    expect(sub.stats.gaps).toBe(0);
    expect(sub.stats.invalid).toBe(0);
    await pub.close();
    expect(pub.publish(topics.price('burst'), price('burst', 0.5))).toBe(false);
    expect(pub.stats.dropped).toBe(1);
  });

  it('wraps a small ring, reuses topic ids, and holds what does not fit, in order, with messages of every size', async () => {
    const errors: unknown[] = [];
    const { sender, got } = await joinedSender('t', { ringBytes: 4096, topicIds: 5, onError: (e) => errors.push(e) }, (p) => `${p.length}:${p[p.length - 1] ?? -1}`);
    const want: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const topic = Buffer.from(`t.${i % 7}`.padEnd(1 + (i % 13), 'x'));
      const payload = new Uint8Array((i * 37) % 1500).fill(i % 251);
      expect(sender.enqueue(topic.toString(), [topic, payload])).toBe(true);
      want.push(`${topic.toString()}:${payload.length}:${payload.length ? i % 251 : -1}`);
      if (i % 500 === 0) await sleep(1);
    }
    expect(await sender.drain(20_000)).toBe(true);
    await waitFor(() => got.length >= want.length, { what: 'every message', timeoutMs: 20_000 });
    expect(got).toEqual(want);
    expect(sender.length).toBe(0);
    expect(sender.failed).toBe(0);
    expect(errors).toEqual([]);
    await sender.close();
  });

  it('written messages go from the encoder straight into a small ring; those that must wait keep their own bytes', async () => {
    const { pub, sub, bids } = await pricePair(env, 'w', { validate: false, sendThread: true, sendRingBytes: 4096, sendHighWaterMark: 0 });
    const head = FlatEncoder.entries({ type: 'price', token_id: 'w', market: '0xabc' });
    const k = (name: string) => FlatEncoder.key(name);
    const N = 3000;
    // One synchronous loop: far more than the ring holds, so most messages wait behind it.
    for (let i = 1; i <= N; i++) {
      const bid = i / 1e6;
      const ok = pub.publishWritten(topics.price('w'), (w) => {
        w.entries(head).field(k('bid')).number(bid).field(k('ask')).number(0.9).field(k('mid')).nil();
        w.field(k('bid_size')).number(1).field(k('ask_size')).number(2).field(k('venue_ts')).number(5);
      });
      expect(ok).toBe(true);
    }
    expect(await pub.drain(20_000)).toBe(true);
    await waitFor(() => bids.length >= N, { what: 'every written message', timeoutMs: 20_000 });
    expect(bids).toEqual(Array.from({ length: N }, (_, i) => (i + 1) / 1e6));
    expect(sub.stats.invalid).toBe(0);
  });

  it('topic handles keep their ids only while the table holds them, and a handle of another publisher is not used', async () => {
    const { sender, got } = await joinedSender('h', { topicIds: 2 }, (p) => String(p[0]));
    // Five topics through a table of two: ids start over again and again; each handle caches one.
    const names = ['h.a', 'h.b', 'h.c', 'h.d', 'h.e'];
    const handles = names.map(() => ({ senderId: -1, senderGen: -1 }));
    const want: string[] = [];
    for (let i = 0; i < 200; i++) {
      const k = (i * 7) % 5;
      expect(sender.enqueue(names[k]!, [Buffer.from(names[k]!), new Uint8Array([i & 0xff])], false, handles[k])).toBe(true);
      want.push(`${names[k]}:${i & 0xff}`);
    }
    expect(await sender.drain(10_000)).toBe(true);
    await waitFor(() => got.length >= want.length, { what: 'every message' });
    expect(got).toEqual(want);

    // A publisher ignores a handle it did not make (and one for another topic).
    const { pub, sub: bsub, bids } = await pricePair(env, 'hp', { validate: false, sendThread: true });
    const other = new BusPublisher({ endpoint: 'ipc:///nonexistent/never-bound', mode: 'bind', src: 'x' });
    const head = FlatEncoder.entries({ type: 'price', token_id: 'hp', market: '0xabc' });
    const k = (name: string) => FlatEncoder.key(name);
    const write = (bid: number) => (w: MapWriter) => {
      w.entries(head).field(k('bid')).number(bid).field(k('ask')).number(0.9).field(k('mid')).nil();
      w.field(k('bid_size')).number(1).field(k('ask_size')).number(2).field(k('venue_ts')).number(5);
    };
    expect(pub.publishWritten(topics.price('hp'), write(0.1), pub.topic(topics.price('hp')))).toBe(true);
    expect(pub.publishWritten(topics.price('hp'), write(0.2), other.topic(topics.price('hp')))).toBe(true);
    expect(pub.publishWritten(topics.price('hp'), write(0.3), pub.topic(topics.price('elsewhere')))).toBe(true);
    await waitFor(() => bids.length >= 3, { what: 'three prices' });
    expect(bids).toEqual([0.1, 0.2, 0.3]);
    expect(bsub.stats.invalid).toBe(0);
  });

  it('a bind that fails says so', async () => {
    const first = new BusPublisher({ endpoint: env.ep['prices.pub'], mode: 'bind', src: 'a', sendThread: true });
    await first.start();
    closers.push(() => first.close());
    const second = new BusPublisher({ endpoint: 'tcp://256.1.1.1:1', mode: 'bind', src: 'b', sendThread: true });
    await expect(second.start()).rejects.toThrow(/publisher thread could not bind tcp:\/\/256\.1\.1\.1:1/);
    await second.close();
  });
});
