import Compile from 'typebox/compile';
import { newId, type EventMessage, type PriceMessage, type SignalMessage, type Unstamped } from '@polybot/protocol';
import {
  parseStrategyConfig,
  SignalIntent,
  type AnyStrategyDefinition,
  type LogLevel,
  type Strategy,
  type StrategyContext,
} from './sdk.js';

export type StrategyLogSink = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface StrategyRunnerOptions {
  definition: AnyStrategyDefinition;
  /** Raw config (parsed JSON); validated here. Undefined means all defaults. */
  config?: unknown;
  now: () => number;
  /** Hands a complete signal to the transport; false when it could not be queued. */
  send: (signal: Unstamped<SignalMessage>) => boolean;
  log?: StrategyLogSink;
  /** Signal id factory; injectable so backtests can be deterministic. */
  newSignalId?: () => string;
}

export type HandlerKind = 'onPrice' | 'onEvent' | 'onTimer';

const checkIntent = Compile(SignalIntent);

/**
 * The transport-free core of a strategy host: validates config, builds the context, keeps the
 * strategy's positions from executor events, stamps and validates signals, and isolates handler
 * failures. The live host wires sockets to it; tests and backtests drive it directly.
 */
export class StrategyRunner {
  readonly id: string;
  readonly config: Readonly<unknown>;
  private readonly strategy: Strategy;
  private readonly positionMap = new Map<string, number>();
  /** Tokens whose position came from an event since start: newer than any snapshot we may still receive. */
  private readonly positionFromEvent = new Set<string>();
  private readonly loggedKinds = new Set<string>();
  private readonly log: StrategyLogSink;
  private readonly nextId: () => string;
  prices = 0;
  events = 0;
  signals = 0;
  signalsRefused = 0;
  readonly handlerErrors: Record<HandlerKind, number> = { onPrice: 0, onEvent: 0, onTimer: 0 };
  /** Tokens whose book the scanner reported untrusted, until it reports them trusted again. */
  private readonly untrusted = new Set<string>();
  private pricesUntrusted = 0;

  constructor(private readonly opts: StrategyRunnerOptions) {
    const def = opts.definition;
    this.id = def.id;
    this.log = opts.log ?? (() => {});
    this.nextId = opts.newSignalId ?? (() => newId('sig-'));
    this.config = parseStrategyConfig(def, opts.config);
    const ctx: StrategyContext<unknown> = {
      id: def.id,
      config: this.config,
      now: () => opts.now(),
      emit: (intent) => this.emit(intent),
      position: (tokenId) => this.positionMap.get(tokenId) ?? 0,
      log: (level, msg, fields) => this.log(level, msg, fields),
    };
    this.strategy = def.create(ctx as never);
  }

  private emit(intent: SignalIntent): string | undefined {
    if (this.untrusted.has(intent.token_id)) {
      // The scanner said this book is not usable (crossed, disconnected): no decision may rest on it.
      this.signalsRefused++;
      this.logOnce('refused:untrusted', 'warn', 'signal for a token whose book is untrusted; refused', { token_id: intent.token_id });
      return undefined;
    }
    if (!checkIntent.Check(intent)) {
      this.signalsRefused++;
      const e = checkIntent.Errors(intent)[0];
      this.logOnce('refused:invalid', 'error', 'strategy emitted an invalid signal; refused', {
        problem: e ? `${e.instancePath || '/'} ${e.message}` : 'invalid',
        intent,
      });
      return undefined;
    }
    const id = this.nextId();
    const signal: Unstamped<SignalMessage> = {
      type: 'signal',
      id,
      strategy: this.id,
      token_id: intent.token_id,
      market: intent.market,
      side: intent.side,
      price: intent.price,
      size: intent.size,
      order_type: intent.order_type,
      ...(intent.reason !== undefined ? { reason: intent.reason } : {}),
    };
    if (!this.opts.send(signal)) {
      this.signalsRefused++;
      this.logOnce('refused:send', 'warn', 'signal could not be queued for the executor', { signal_id: id });
      return undefined;
    }
    this.signals++;
    this.log('info', 'signal', { signal_id: id, token_id: signal.token_id, side: signal.side, price: signal.price, size: signal.size });
    return id;
  }

  private logOnce(kind: string, level: LogLevel, msg: string, fields: Record<string, unknown>): void {
    if (this.loggedKinds.has(kind)) return;
    this.loggedKinds.add(kind);
    this.log(level, msg, fields);
  }

  private call(kind: HandlerKind, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.handlerErrors[kind]++;
      this.logOnce(`handler:${kind}`, 'error', `strategy ${kind} threw; counting further errors of this kind silently`, {
        err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err),
      });
    }
  }

  onPrice(msg: PriceMessage): void {
    this.prices++;
    if (this.untrusted.has(msg.token_id)) {
      this.pricesUntrusted++;
      return;
    }
    if (this.strategy.onPrice) this.call('onPrice', () => this.strategy.onPrice!(msg));
  }

  /** The scanner's `book.status`: prices of an untrusted book are withheld from the strategy. */
  onBookStatus(tokenId: string, trusted: boolean): void {
    if (trusted) this.untrusted.delete(tokenId);
    else this.untrusted.add(tokenId);
  }

  /** Applies this strategy's events (others are ignored): positions first, then the handler. */
  onEvent(msg: EventMessage): boolean {
    if (msg.strategy !== this.id) return false;
    this.events++;
    if (msg.kind === 'position') {
      this.positionFromEvent.add(msg.token_id);
      this.setPosition(msg.token_id, msg.size);
    }
    if (this.strategy.onEvent) this.call('onEvent', () => this.strategy.onEvent!(msg));
    return true;
  }

  onTimer(now = this.opts.now()): void {
    if (this.strategy.onTimer) this.call('onTimer', () => this.strategy.onTimer!(now));
  }

  /**
   * Seeds positions from the executor's snapshot (`positions.list`). Tokens already updated by a
   * position event since start keep the event's value, which is at least as new.
   */
  seedPositions(rows: ReadonlyArray<{ strategy?: string; token_id: string; size: string }>): number {
    let n = 0;
    for (const r of rows) {
      if (r.strategy !== undefined && r.strategy !== this.id) continue;
      if (this.positionFromEvent.has(r.token_id)) continue;
      this.setPosition(r.token_id, r.size);
      n++;
    }
    return n;
  }

  private setPosition(tokenId: string, size: string): void {
    const n = Number(size);
    if (!Number.isFinite(n)) return;
    if (n === 0) this.positionMap.delete(tokenId);
    else this.positionMap.set(tokenId, n);
  }

  position(tokenId: string): number {
    return this.positionMap.get(tokenId) ?? 0;
  }

  get positions(): ReadonlyMap<string, number> {
    return this.positionMap;
  }

  get handlerErrorsTotal(): number {
    return this.handlerErrors.onPrice + this.handlerErrors.onEvent + this.handlerErrors.onTimer;
  }

  /** Figures for the host's status message. */
  metrics(): Record<string, number> {
    return {
      prices_seen: this.prices,
      events_seen: this.events,
      signals_emitted: this.signals,
      signals_refused: this.signalsRefused,
      prices_untrusted: this.pricesUntrusted,
      books_untrusted: this.untrusted.size,
      handler_errors: this.handlerErrorsTotal,
      handler_errors_on_price: this.handlerErrors.onPrice,
      handler_errors_on_event: this.handlerErrors.onEvent,
      handler_errors_on_timer: this.handlerErrors.onTimer,
      positions_held: this.positionMap.size,
    };
  }
}
