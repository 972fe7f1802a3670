import { describe, expect, it } from 'vitest';
import Type from 'typebox';
import type { EventMessage, OrderEvent, PositionEvent, PriceMessage, SignalEvent, SignalMessage, Unstamped } from '@polybot/protocol';
import {
  defineStrategy,
  getStrategy,
  listStrategies,
  parseStrategyConfig,
  StrategyConfigError,
  StrategyRunner,
  strategies,
  threshold,
  type LogLevel,
} from '../src/index.js';

const env = { v: 1, src: 'test', seq: 1, ts: 0 };
const TOKEN = 'tokYes';
const MARKET = '0xm1';

function price(over: Partial<PriceMessage> = {}): PriceMessage {
  return {
    type: 'price', token_id: TOKEN, market: MARKET, outcome: 'Yes',
    bid: 0.48, ask: 0.52, mid: 0.5, bid_size: 100, ask_size: 100, venue_ts: 0, ...env, ...over,
  };
}
const ask = (a: number, over: Partial<PriceMessage> = {}) => price({ bid: Math.max(0.01, a - 0.02), ask: a, ...over });
const bid = (b: number, over: Partial<PriceMessage> = {}) => price({ bid: b, ask: Math.min(0.99, b + 0.02), ...over });

function position(size: string, token = TOKEN, strategy = 'threshold'): PositionEvent {
  return { type: 'event', kind: 'position', strategy, token_id: token, market: MARKET, size, avg_price: '0.3', cost: '0', realized_pnl: '0', ...env };
}
function order(signalId: string, status: OrderEvent['status'], filled = '0', token = TOKEN): OrderEvent {
  return {
    type: 'event', kind: 'order', strategy: 'threshold', signal_id: signalId, order_id: `o-${signalId}`, venue_order_id: null,
    token_id: token, market: MARKET, side: 'BUY', order_type: 'FAK', price: '0.3', size: '10', filled, status, ...env,
  };
}
function signalEvent(signalId: string, status: SignalEvent['status']): SignalEvent {
  return { type: 'event', kind: 'signal', strategy: 'threshold', signal_id: signalId, status, code: 'x', ...env };
}

/** Drives the threshold strategy with an injected clock and captures what it emits. */
function harness(config?: unknown) {
  let now = 1_000_000;
  let n = 0;
  const sent: Array<Unstamped<SignalMessage>> = [];
  const logs: Array<{ level: LogLevel; msg: string }> = [];
  const runner = new StrategyRunner({
    definition: threshold,
    config,
    now: () => now,
    send: (s) => sent.push(s) > 0,
    log: (level, msg) => void logs.push({ level, msg }),
    newSignalId: () => `sig-test-${++n}`,
  });
  return {
    runner, sent, logs,
    advance: (ms: number) => { now += ms; runner.onTimer(now); },
    event: (e: EventMessage) => runner.onEvent(e),
    last: () => sent[sent.length - 1]!,
  };
}

describe('registry', () => {
  it('lists threshold and finds it by id', () => {
    expect(strategies.has('threshold')).toBe(true);
    expect(getStrategy('threshold')?.id).toBe('threshold');
    expect(getStrategy('nope')).toBeUndefined();
    expect(listStrategies().map((s) => s.id)).toContain('threshold');
  });

  it('rejects a bad id and defaults that do not validate', () => {
    expect(() => defineStrategy({ id: 'Bad Id', description: '', configSchema: Type.Object({}), create: () => ({}) })).toThrow(/must match/);
    expect(() =>
      defineStrategy({ id: 'x', description: '', configSchema: Type.Object({ n: Type.Number({ minimum: 5, default: 1 }) }), create: () => ({}) }),
    ).toThrow(StrategyConfigError);
  });
});

describe('threshold config', () => {
  it('fills defaults and freezes', () => {
    const cfg = parseStrategyConfig(threshold, undefined);
    expect(cfg).toEqual({ buy_below: 0.35, sell_above: 0.65, order_size: 10, max_position: 50, outcomes: ['Yes', 'Up'], order_type: 'FAK', in_flight_timeout_ms: 15_000 });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.outcomes)).toBe(true);
    expect(parseStrategyConfig(threshold, { buy_below: 0.2, outcomes: ['No'] })).toMatchObject({ buy_below: 0.2, outcomes: ['No'], sell_above: 0.65 });
  });

  const bad: Array<[unknown, RegExp]> = [
    [{ buy_below: 2 }, /^buy_below: must be < 1 \(got 2\)/],
    [{ buy_below: 'low' }, /^buy_below: must be number/],
    [{ order_size: 0 }, /^order_size: must be > 0/],
    [{ order_type: 'MARKET' }, /^order_type: must be one of "GTC", "GTD", "FOK", "FAK" \(got "MARKET"\)/],
    [{ outcomes: [] }, /^outcomes: /],
    [{ outcomes: [''] }, /^outcomes\.0: /],
    [{ buy_below_typo: 0.2 }, /^buy_below_typo: unknown field/],
    [{ buy_below: 0.7, sell_above: 0.6 }, /^buy_below: must be below sell_above/],
    [{ order_size: 60 }, /^order_size: must not exceed max_position/],
    [[1, 2], /^\(config\): must be a JSON object/],
    [null, /^\(config\): must be a JSON object/],
  ];
  it.each(bad)('rejects %j naming the field', (raw, re) => {
    let err: unknown;
    try {
      parseStrategyConfig(threshold, raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StrategyConfigError);
    const problems = (err as StrategyConfigError).problems;
    expect(problems.some((p) => re.test(p)), problems.join('\n')).toBe(true);
  });

  it('a runner refuses to start with a bad config', () => {
    expect(() => harness({ max_position: -1 })).toThrow(/max_position/);
  });
});

describe('threshold signals', () => {
  it('buys a watched token at the ask when the ask is below buy_below', () => {
    const h = harness();
    h.runner.onPrice(ask(0.4));
    h.runner.onPrice(ask(0.35)); // not strictly below
    expect(h.sent).toHaveLength(0);
    h.runner.onPrice(ask(0.3));
    expect(h.sent).toHaveLength(1);
    expect(h.last()).toMatchObject({ type: 'signal', id: 'sig-test-1', strategy: 'threshold', token_id: TOKEN, market: MARKET, side: 'BUY', price: 0.3, size: 10, order_type: 'FAK' });
    expect(h.runner.metrics()).toMatchObject({ prices_seen: 3, signals_emitted: 1 });
  });

  it('acts on nothing while the scanner reports the book untrusted, and resumes when it is trusted again', () => {
    const h = harness();
    h.runner.onBookStatus(TOKEN, false);
    h.runner.onPrice(ask(0.2));
    expect(h.sent).toHaveLength(0);
    expect(h.runner.metrics()).toMatchObject({ prices_untrusted: 1, books_untrusted: 1 });
    h.runner.onBookStatus(TOKEN, true);
    h.runner.onPrice(ask(0.2));
    expect(h.sent).toHaveLength(1);
    expect(h.runner.metrics()).toMatchObject({ books_untrusted: 0 });
  });

  it('ignores outcomes it does not watch, and tokens without an outcome', () => {
    const h = harness();
    h.runner.onPrice(ask(0.1, { outcome: 'No', token_id: 'tokNo' }));
    h.runner.onPrice(ask(0.1, { outcome: undefined, token_id: 'tokX' }));
    expect(h.sent).toHaveLength(0);
    h.runner.onPrice(ask(0.1, { outcome: 'Up', token_id: 'tokUp' }));
    expect(h.last()).toMatchObject({ token_id: 'tokUp', side: 'BUY' });
    const custom = harness({ outcomes: ['No'] });
    custom.runner.onPrice(ask(0.1, { outcome: 'No', token_id: 'tokNo' }));
    expect(custom.sent).toHaveLength(1);
  });

  it('sells min(order_size, position) at the bid only when holding', () => {
    const h = harness();
    h.runner.onPrice(bid(0.7));
    expect(h.sent).toHaveLength(0); // nothing held
    h.event(position('4'));
    h.runner.onPrice(bid(0.65)); // not strictly above
    expect(h.sent).toHaveLength(0);
    h.runner.onPrice(bid(0.7));
    expect(h.last()).toMatchObject({ side: 'SELL', price: 0.7, size: 4 });
    const big = harness();
    big.event(position('35'));
    big.runner.onPrice(bid(0.8));
    expect(big.last()).toMatchObject({ side: 'SELL', size: 10 });
  });

  it('never buys past max_position', () => {
    const h = harness();
    h.event(position('40'));
    h.runner.onPrice(ask(0.3));
    expect(h.last()).toMatchObject({ side: 'BUY', size: 10 }); // 40 + 10 = 50 is allowed
    h.event(order(h.last().id, 'filled', '10'));
    h.event(position('50'));
    h.runner.onPrice(ask(0.2));
    expect(h.sent).toHaveLength(1);
    h.event(position('40.5'));
    h.runner.onPrice(ask(0.2));
    expect(h.sent).toHaveLength(1);
  });

  it('keeps one signal in flight per token until a terminal order event', () => {
    const h = harness();
    h.runner.onPrice(ask(0.3));
    const first = h.last().id;
    h.runner.onPrice(ask(0.29));
    h.event(order(first, 'live'));
    h.event(order(first, 'partially_filled', '0'));
    h.event(order('sig-other', 'canceled'));
    h.runner.onPrice(ask(0.28));
    expect(h.sent).toHaveLength(1);
    // Another token is independent.
    h.runner.onPrice(ask(0.3, { token_id: 'tokUp', outcome: 'Up' }));
    expect(h.sent).toHaveLength(2);
    h.event(order(first, 'canceled'));
    h.runner.onPrice(ask(0.27));
    expect(h.sent).toHaveLength(3);
    expect(h.last()).toMatchObject({ token_id: TOKEN, price: 0.27 });
    expect(new Set(h.sent.map((s) => s.id)).size).toBe(3);
  });

  it('after a filled order waits for the position event before trading the token again', () => {
    const h = harness();
    h.runner.onPrice(ask(0.3));
    h.event(order(h.last().id, 'filled', '10'));
    h.runner.onPrice(ask(0.3));
    expect(h.sent).toHaveLength(1); // fill not yet in the position
    h.event(position('10'));
    h.runner.onPrice(ask(0.3));
    expect(h.sent).toHaveLength(2);
    // Position event first, then the terminal order event: clears at once.
    h.event(position('20'));
    h.event(order(h.last().id, 'filled', '10'));
    h.runner.onPrice(ask(0.3));
    expect(h.sent).toHaveLength(3);
  });

  it('clears the in-flight signal when the executor denies or dead-letters it', () => {
    for (const status of ['denied', 'dead_lettered'] as const) {
      const h = harness();
      h.runner.onPrice(ask(0.3));
      h.event(signalEvent(h.last().id, 'accepted'));
      h.runner.onPrice(ask(0.3));
      expect(h.sent).toHaveLength(1);
      h.event(signalEvent(h.last().id, status));
      h.runner.onPrice(ask(0.3));
      expect(h.sent).toHaveLength(2);
    }
  });

  it('gives up on an unanswered signal after 15 s of the injected clock', () => {
    const h = harness();
    h.runner.onPrice(ask(0.3));
    h.advance(14_999);
    h.runner.onPrice(ask(0.3));
    expect(h.sent).toHaveLength(1);
    h.advance(1);
    h.runner.onPrice(ask(0.3));
    expect(h.sent).toHaveLength(2);
    expect(h.logs.some((l) => l.level === 'warn' && /no terminal event/.test(l.msg))).toBe(true);
  });

  it('ignores events of other strategies', () => {
    const h = harness();
    expect(h.event(position('50', TOKEN, 'other'))).toBe(false);
    expect(h.runner.position(TOKEN)).toBe(0);
    h.runner.onPrice(ask(0.3));
    expect(h.sent).toHaveLength(1);
  });
});

describe('runner', () => {
  it('seeds positions from a snapshot without overriding newer events', () => {
    const h = harness();
    h.event(position('5', 'a'));
    const n = h.runner.seedPositions([
      { strategy: 'threshold', token_id: 'a', size: '50' },
      { strategy: 'threshold', token_id: 'b', size: '7.5' },
      { strategy: 'other', token_id: 'c', size: '1' },
      { strategy: 'threshold', token_id: 'd', size: '0' },
    ]);
    expect(n).toBe(2);
    expect([...h.runner.positions]).toEqual([['a', 5], ['b', 7.5]]);
    expect(h.runner.metrics().positions_held).toBe(2);
  });

  it('catches handler errors, counts them and logs once per kind', () => {
    const boom = defineStrategy({
      id: 'boom',
      description: 'throws',
      configSchema: Type.Object({}),
      create: () => ({
        onPrice() { throw new Error('price boom'); },
        onEvent() { throw new Error('event boom'); },
      }),
    });
    const logs: string[] = [];
    const r = new StrategyRunner({ definition: boom, now: () => 0, send: () => true, log: (level, msg) => void logs.push(`${level} ${msg}`) });
    for (let i = 0; i < 3; i++) r.onPrice(ask(0.3));
    r.onEvent({ ...position('1'), strategy: 'boom' });
    r.onTimer(); // no handler: fine
    expect(r.metrics()).toMatchObject({ prices_seen: 3, handler_errors: 4, handler_errors_on_price: 3, handler_errors_on_event: 1 });
    expect(logs.filter((l) => l.startsWith('error'))).toHaveLength(2);
    expect(r.position(TOKEN)).toBe(1); // positions still tracked when the handler throws
  });

  it('refuses invalid signals and reports a failed send', () => {
    let accept = true;
    const bad = defineStrategy({
      id: 'bad',
      description: 'emits',
      configSchema: Type.Object({}),
      create: (ctx) => ({
        onPrice(p) {
          ctx.emit({ token_id: p.token_id, market: p.market, side: 'BUY', price: p.ask ?? 0, size: 1, order_type: 'FAK' });
        },
      }),
    });
    const sent: unknown[] = [];
    const r = new StrategyRunner({ definition: bad, now: () => 0, send: (s) => accept && sent.push(s) > 0 });
    r.onPrice(ask(0.3, { ask: 1 })); // price must be < 1
    expect(sent).toHaveLength(0);
    r.onPrice(ask(0.3));
    expect(sent).toHaveLength(1);
    accept = false;
    r.onPrice(ask(0.3));
    expect(r.metrics()).toMatchObject({ signals_emitted: 1, signals_refused: 2 });
  });
});
