import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusPublisher, BusPuller, BusReplier, Forwarder, resolveEndpoints, type Endpoints } from '@polybot/bus';
import { ConfigError, loadConfig, ServiceRunner, type Service } from '@polybot/core';
import {
  topics,
  type OrderEvent,
  type PositionEvent,
  type PriceMessage,
  type SignalMessage,
  type Unstamped,
} from '@polybot/protocol';
import { tempDataDir, waitFor } from '@polybot/testkit';
import { createStrategyHost, resolveStrategy, StrategyHostConfig } from '../src/index.js';

const TOKEN = 'tokYes1';
const MARKET = '0xmkt1';

let tmp: ReturnType<typeof tempDataDir>;
let ep: Endpoints;
const closers: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  tmp = tempDataDir('pbstrat');
  ep = resolveEndpoints(tmp.dir);
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  tmp.cleanup();
});

const config = (env: Record<string, string> = {}) =>
  loadConfig(StrategyHostConfig, {
    env: { POLYBOT_DATA_DIR: tmp.dir, POLYBOT_LOG_LEVEL: 'silent', POLYBOT_STATUS_INTERVAL_MS: '200', ...env },
    envFile: false,
  });

const price = (over: Partial<Unstamped<PriceMessage>>): Unstamped<PriceMessage> => ({
  type: 'price', token_id: TOKEN, market: MARKET, outcome: 'Yes', bid: 0.48, ask: 0.52, mid: 0.5,
  bid_size: 100, ask_size: 100, venue_ts: Date.now(), ...over,
});
const lowAsk = price({ bid: 0.28, ask: 0.3, mid: 0.29 });
const highBid = price({ bid: 0.7, ask: 0.72, mid: 0.71 });

const positionEvent = (size: string): Unstamped<PositionEvent> => ({
  type: 'event', kind: 'position', strategy: 'threshold', token_id: TOKEN, market: MARKET,
  size, avg_price: '0.3', cost: '3', realized_pnl: '0',
});
const orderEvent = (signalId: string, status: OrderEvent['status'], filled: string): Unstamped<OrderEvent> => ({
  type: 'event', kind: 'order', strategy: 'threshold', signal_id: signalId, order_id: `ord-${signalId}`, venue_order_id: null,
  token_id: TOKEN, market: MARKET, side: 'BUY', order_type: 'FAK', price: '0.3', size: '10', filled, status,
});

/** The parts around the host: prices publisher, events forwarder + executor-side publisher, signals puller. */
async function harness(opts: { executorPositions?: Array<{ token_id: string; size: string }> } = {}) {
  const fwd = new Forwarder({ frontend: ep['events.in'], backend: ep['events.pub'] });
  await fwd.start();
  closers.push(() => fwd.stop());

  const prices = new BusPublisher({ endpoint: ep['prices.pub'], mode: 'bind', src: 'scanner' });
  await prices.start();
  closers.push(() => prices.close(100));

  const executorEvents = new BusPublisher({ endpoint: ep['events.in'], mode: 'connect', src: 'executor' });
  await executorEvents.start();
  closers.push(() => executorEvents.close(100));

  const signals: SignalMessage[] = [];
  const puller = new BusPuller({ endpoint: ep['signals.push'], onMessage: (m) => void signals.push(m as SignalMessage) });
  await puller.start();
  closers.push(() => puller.close());

  const asked: unknown[] = [];
  if (opts.executorPositions) {
    const rows = opts.executorPositions;
    const rep = new BusReplier({
      endpoint: ep['executor.rep'],
      src: 'executor',
      handlers: {
        'positions.list': (params) => {
          asked.push(params);
          return {
            positions: rows.map((r) => ({ strategy: 'threshold', market: MARKET, avg_price: '0.3', cost: '0', realized_pnl: '0', ...r })),
          };
        },
      },
    });
    await rep.start();
    closers.push(() => rep.close());
  }
  return { prices, executorEvents, signals, asked };
}

async function startHost(env: Record<string, string> = {}) {
  let service: Service | undefined;
  const runner = new ServiceRunner({
    name: 'strategy:threshold',
    config: config(env),
    create: (ctx) => (service = createStrategyHost(ctx)),
  });
  await runner.start();
  closers.push(() => runner.stop());
  const metrics = () => service!.metrics!();
  return { runner, metrics };
}

/** Publishes until `until` holds: a SUB joining a PUB misses what was sent before it connected. */
async function publishUntil<T>(send: () => void, until: () => T, what: string): Promise<NonNullable<T>> {
  return waitFor(
    () => {
      const done = until();
      if (!done) send();
      return done;
    },
    { what, intervalMs: 50 },
  );
}

describe('strategy host', () => {
  it('turns a low ask into one BUY, waits while it is in flight, and follows position events', async () => {
    const h = await harness({ executorPositions: [] });
    const host = await startHost();
    await waitFor(() => host.metrics().positions_loaded === 1, { what: 'positions loaded' });
    expect(h.asked).toContainEqual({ strategy: 'threshold' });

    // Repeated low asks while the first signal is unanswered: exactly one signal.
    await publishUntil(() => h.prices.publish(topics.price(TOKEN), lowAsk), () => h.signals.length > 0, 'first signal');
    const seen = host.metrics().prices_seen as number;
    for (let i = 0; i < 5; i++) h.prices.publish(topics.price(TOKEN), lowAsk);
    await waitFor(() => (host.metrics().prices_seen as number) >= seen + 5, { what: 'later prices handled' });
    expect(h.signals).toHaveLength(1);
    const first = h.signals[0]!;
    expect(first).toMatchObject({ type: 'signal', strategy: 'threshold', token_id: TOKEN, market: MARKET, side: 'BUY', price: 0.3, size: 10, order_type: 'FAK', src: 'strategy:threshold' });
    expect(first.id).toMatch(/^sig-[0-9a-f]{32}$/);

    // The executor fills it and reports the position: the host may buy again, with a new id.
    await publishUntil(
      () => {
        h.executorEvents.publish(topics.event('order', 'threshold'), orderEvent(first.id, 'filled', '10'));
        h.executorEvents.publish(topics.event('position', 'threshold'), positionEvent('10'));
      },
      () => host.metrics().positions_held === 1,
      'position event to reach the host',
    );
    await publishUntil(() => h.prices.publish(topics.price(TOKEN), lowAsk), () => h.signals.length > 1, 'second signal');
    expect(h.signals[1]).toMatchObject({ side: 'BUY', size: 10 });
    expect(h.signals[1]!.id).not.toBe(first.id);

    // At the cap, a low ask does nothing; a high bid sells what is held.
    const second = h.signals[1]!;
    h.executorEvents.publish(topics.event('order', 'threshold'), orderEvent(second.id, 'filled', '10'));
    h.executorEvents.publish(topics.event('position', 'threshold'), positionEvent('50'));
    // Events for another strategy must not move our position.
    h.executorEvents.publish(topics.event('position', 'threshold2'), { ...positionEvent('0'), strategy: 'threshold2' });
    const events = host.metrics().events_seen as number;
    await waitFor(() => (host.metrics().events_seen as number) >= events + 2, { what: 'cap events' });
    const before = h.signals.length;
    for (let i = 0; i < 3; i++) h.prices.publish(topics.price(TOKEN), lowAsk);
    h.prices.publish(topics.price(TOKEN), highBid);
    await waitFor(() => h.signals.length > before, { what: 'sell signal' });
    // Same publisher and socket: the low asks were handled first and produced nothing.
    expect(h.signals[before]).toMatchObject({ side: 'SELL', price: 0.7, size: 10 });
    expect(new Set(h.signals.map((s) => s.id)).size).toBe(h.signals.length);
    expect(host.metrics()).toMatchObject({ handler_errors: 0, positions_held: 1 });
  });

  it('loads holdings from the executor at start so a restart does not forget them', async () => {
    const h = await harness({ executorPositions: [{ token_id: TOKEN, size: '50' }] });
    const host = await startHost();
    await waitFor(() => host.metrics().positions_loaded === 1, { what: 'positions loaded' });
    expect(host.metrics().positions_held).toBe(1);
    await publishUntil(() => {
      h.prices.publish(topics.price(TOKEN), lowAsk);
      h.prices.publish(topics.price(TOKEN), highBid);
    }, () => h.signals.length > 0, 'sell signal');
    expect(h.signals[0]).toMatchObject({ side: 'SELL', size: 10 });
  });

  it('holds prices back until the executor answers, retrying in the background', async () => {
    const h = await harness();
    const host = await startHost();
    await publishUntil(() => h.prices.publish(topics.price(TOKEN), lowAsk), () => (host.metrics().prices_held_back as number) > 0, 'prices held back');
    expect(host.metrics()).toMatchObject({ positions_loaded: 0, prices_seen: 0, signals_emitted: 0 });
    await waitFor(() => host.runner.currentState === 'degraded', { what: 'degraded state' });
    // The executor comes up late: the host finds it and starts trading.
    const rep = new BusReplier({ endpoint: ep['executor.rep'], src: 'executor', handlers: { 'positions.list': () => ({ positions: [] }) } });
    await rep.start();
    closers.push(() => rep.close());
    await waitFor(() => host.metrics().positions_loaded === 1, { what: 'positions loaded after retry' });
    await publishUntil(() => h.prices.publish(topics.price(TOKEN), lowAsk), () => h.signals.length > 0, 'signal');
    expect(h.signals[0]).toMatchObject({ side: 'BUY' });
    await waitFor(() => host.runner.currentState === 'running', { what: 'running state' });
  });

  it('can trade without the executor snapshot when told to', async () => {
    const h = await harness();
    await startHost({ POLYBOT_STRATEGY_WAIT_POSITIONS: 'false' });
    await publishUntil(() => h.prices.publish(topics.price(TOKEN), lowAsk), () => h.signals.length > 0, 'signal');
    expect(h.signals).toHaveLength(1);
  });

  it('refuses to start with a bad strategy or config, naming the field', async () => {
    const problems = (env: Record<string, string>) => {
      try {
        resolveStrategy(config(env));
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems.join('\n');
      }
      return '';
    };
    expect(problems({ POLYBOT_STRATEGY: 'nope' })).toMatch(/^POLYBOT_STRATEGY: unknown strategy "nope"/);
    expect(problems({ POLYBOT_STRATEGY_CONFIG: '{"buy_below": 2}' })).toMatch(/^POLYBOT_STRATEGY_CONFIG\.buy_below: must be < 1/);
    expect(problems({ POLYBOT_STRATEGY_CONFIG: '{nope' })).toMatch(/^POLYBOT_STRATEGY_CONFIG: not valid JSON/);
    expect(problems({ POLYBOT_STRATEGY_CONFIG: '{"order_size": 5, "max_position": 20}' })).toBe('');

    const runner = new ServiceRunner({
      name: 'strategy:threshold',
      config: config({ POLYBOT_STRATEGY_CONFIG: '{"outcomes": []}' }),
      create: createStrategyHost,
    });
    closers.push(() => runner.stop());
    await expect(runner.start()).rejects.toThrow(/POLYBOT_STRATEGY_CONFIG\.outcomes/);
    expect(runner.currentState).toBe('faulted');
  });
});
