import Type, { type Static } from 'typebox';
import { OrderType, toMicros, type EventMessage, type PriceMessage } from '@polybot/protocol';
import { defineStrategy, type StrategyContext } from '../sdk.js';

/**
 * The PolySimulator example: buy a watched outcome when it is cheap, sell what we hold when it
 * is dear, never holding more than `max_position` shares and never with two orders racing.
 */
export const ThresholdConfig = Type.Object(
  {
    buy_below: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.35, description: 'BUY when the ask is below this' }),
    sell_above: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.65, description: 'SELL when the bid is above this' }),
    order_size: Type.Number({ exclusiveMinimum: 0, maximum: 1e6, default: 10, description: 'shares per order' }),
    max_position: Type.Number({ exclusiveMinimum: 0, maximum: 1e9, default: 50, description: 'most shares held per token' }),
    outcomes: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      minItems: 1,
      maxItems: 32,
      default: ['Yes', 'Up'],
      description: 'only tokens whose price message `outcome` is one of these are traded',
    }),
    order_type: Type.Union(OrderType.anyOf, { default: 'FAK', description: 'order type of every signal' }),
    in_flight_timeout_ms: Type.Integer({
      minimum: 1000,
      maximum: 600_000,
      default: 15_000,
      description: 'forget an unanswered signal after this long (injected clock)',
    }),
  },
  { additionalProperties: false },
);
export type ThresholdConfig = Static<typeof ThresholdConfig>;

interface InFlight {
  signalId: string;
  at: number;
  /** Position when the signal was sent: a fill is only accounted once the position moves off it. */
  basePosition: number;
  /** Terminal order event seen with a fill; waiting for the position event that reflects it. */
  awaitingPosition: boolean;
}

const TERMINAL = new Set(['filled', 'canceled', 'rejected']);

export function createThreshold(ctx: StrategyContext<ThresholdConfig>) {
  const cfg = ctx.config;
  const watched = new Set(cfg.outcomes);
  const inFlight = new Map<string, InFlight>();
  const orderSize = toMicros(cfg.order_size);
  const maxPosition = toMicros(cfg.max_position);

  const expire = (now: number) => {
    for (const [token, f] of inFlight) {
      if (now - f.at >= cfg.in_flight_timeout_ms) {
        inFlight.delete(token);
        ctx.log('warn', 'no terminal event for signal; no longer waiting', { token_id: token, signal_id: f.signalId });
      }
    }
  };

  const send = (p: PriceMessage, side: 'BUY' | 'SELL', price: number, size: number, reason: string) => {
    const id = ctx.emit({ token_id: p.token_id, market: p.market, side, price, size, order_type: cfg.order_type, reason });
    if (id) inFlight.set(p.token_id, { signalId: id, at: ctx.now(), basePosition: ctx.position(p.token_id), awaitingPosition: false });
  };

  const settle = (tokenId: string, signalId: string, filled: boolean) => {
    const f = inFlight.get(tokenId);
    if (!f || f.signalId !== signalId) return;
    // If the fill is not yet in our position, another order now could breach max_position.
    if (filled && ctx.position(tokenId) === f.basePosition) f.awaitingPosition = true;
    else inFlight.delete(tokenId);
  };

  const findBySignal = (signalId: string): string | undefined => {
    for (const [token, f] of inFlight) if (f.signalId === signalId) return token;
    return undefined;
  };

  return {
    onPrice(p: PriceMessage) {
      if (p.outcome === undefined || !watched.has(p.outcome)) return;
      expire(ctx.now());
      if (inFlight.has(p.token_id)) return;
      const pos = ctx.position(p.token_id);
      if (p.ask !== null && p.ask > 0 && p.ask < cfg.buy_below) {
        if (toMicros(pos) + orderSize <= maxPosition) {
          send(p, 'BUY', p.ask, cfg.order_size, `ask ${p.ask} < ${cfg.buy_below}`);
        }
        return;
      }
      if (p.bid !== null && p.bid < 1 && p.bid > cfg.sell_above && pos > 0) {
        send(p, 'SELL', p.bid, Math.min(cfg.order_size, pos), `bid ${p.bid} > ${cfg.sell_above}`);
      }
    },

    onEvent(e: EventMessage) {
      switch (e.kind) {
        case 'order':
          if (TERMINAL.has(e.status)) settle(e.token_id, e.signal_id, toMicros(e.filled) > 0n);
          break;
        case 'signal': {
          if (e.status !== 'denied' && e.status !== 'dead_lettered') break;
          const token = findBySignal(e.signal_id);
          if (token) inFlight.delete(token);
          break;
        }
        case 'position': {
          const f = inFlight.get(e.token_id);
          if (f?.awaitingPosition) inFlight.delete(e.token_id);
          break;
        }
        case 'fill':
          break;
      }
    },

    onTimer(now: number) {
      expire(now);
    },
  };
}

export const threshold = defineStrategy({
  id: 'threshold',
  description: 'Buy watched outcomes when the ask is below buy_below, sell holdings when the bid is above sell_above, capped at max_position.',
  configSchema: ThresholdConfig,
  check: (c) => {
    const problems: string[] = [];
    if (c.buy_below >= c.sell_above) problems.push(`buy_below: must be below sell_above (got ${c.buy_below} >= ${c.sell_above})`);
    if (c.order_size > c.max_position) problems.push(`order_size: must not exceed max_position (got ${c.order_size} > ${c.max_position})`);
    return problems;
  },
  create: createThreshold,
});
