import { afterEach, beforeEach } from 'vitest';
import { topics, type PriceMessage, type Unstamped } from '@polybot/protocol';
import { tempDataDir, waitFor } from '@polybot/testkit';
import { BusPublisher, BusSubscriber, resolveEndpoints, type Endpoints } from '../src/index.js';

/**
 * A temporary data dir and endpoints per test, and things to close after it (in reverse order).
 * Call once at the top of a test file; read `env.ep` inside tests.
 */
export function busTestEnv(prefix: string) {
  const env = {
    tmp: undefined as unknown as ReturnType<typeof tempDataDir>,
    ep: undefined as unknown as Endpoints,
    closers: [] as Array<() => Promise<void> | void>,
  };
  beforeEach(() => {
    env.tmp = tempDataDir(prefix);
    env.ep = resolveEndpoints(env.tmp.dir);
  });
  afterEach(async () => {
    for (const c of env.closers.splice(0).reverse()) await c();
    env.tmp.cleanup();
  });
  return env;
}

export const price = (token: string, bid: number): Unstamped<PriceMessage> => ({
  type: 'price', token_id: token, market: '0xabc', bid, ask: bid + 0.01, mid: bid + 0.005, bid_size: 10, ask_size: 12, venue_ts: Date.now(),
});

/** Publishes until the subscriber sees something: the slow-joiner window is real. */
export async function joined(pub: BusPublisher, sub: { received: number }, topic: string, msg: Unstamped<PriceMessage>) {
  await waitFor(() => {
    pub.publish(topic, msg);
    return sub.received > 0;
  }, { what: 'subscriber to join' });
}

/**
 * A started publisher on prices.pub and a subscriber collecting the bids published on
 * `price.<token>`, joined (both closed after the test).
 */
export async function pricePair(env: ReturnType<typeof busTestEnv>, token: string, opts: Partial<ConstructorParameters<typeof BusPublisher>[0]> = {}) {
  const pub = new BusPublisher({ endpoint: env.ep['prices.pub'], mode: 'bind', src: 'scanner', ...opts });
  await pub.start();
  env.closers.push(() => pub.close());
  const bids: number[] = [];
  const sub = new BusSubscriber({
    endpoints: [env.ep['prices.pub']],
    topics: ['price.'],
    receiveHighWaterMark: 0,
    onMessage: (m, topic) => {
      if (topic === topics.price(token)) bids.push((m as PriceMessage).bid ?? -1);
    },
  });
  sub.start();
  env.closers.push(() => sub.close());
  await joined(pub, sub, topics.price('warm'), price('warm', 0.01));
  return { pub, sub, bids };
}
