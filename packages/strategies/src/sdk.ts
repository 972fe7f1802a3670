import Type, { type Static, type TObject } from 'typebox';
import Value from 'typebox/value';
import { SignalMessage, type EventMessage, type PriceMessage } from '@polybot/protocol';

/**
 * The strategy SDK. A strategy is pure: it sees prices and its own order/fill/position events
 * through handlers, reads its config, clock and positions through `ctx`, and acts only through
 * `ctx.emit`. The same code runs in the live host, on the simulator and in a backtest.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What a strategy asks for; the host adds `id`, `strategy`, `type` and the envelope. */
export const SignalIntent = Type.Object({
  token_id: SignalMessage.properties.token_id,
  market: SignalMessage.properties.market,
  side: SignalMessage.properties.side,
  price: SignalMessage.properties.price,
  size: SignalMessage.properties.size,
  order_type: SignalMessage.properties.order_type,
  reason: SignalMessage.properties.reason,
});
export type SignalIntent = Static<typeof SignalIntent>;

export interface StrategyContext<C = unknown> {
  /** The strategy id as it appears on signals and event topics (e.g. `threshold`). */
  readonly id: string;
  /** Validated, defaults applied, frozen. */
  readonly config: Readonly<C>;
  /** The injected clock (ms). Never read Date.now() in a strategy: backtests replay time. */
  now(): number;
  /**
   * Sends a signal. Returns its id (match it against `signal_id` on order and signal events), or
   * undefined when the host refused it (invalid, or the outbound queue is full).
   */
  emit(intent: SignalIntent): string | undefined;
  /** Shares of the token this strategy holds, from the executor's position events (0 if none). */
  position(tokenId: string): number;
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
}

/** A running strategy instance. Handlers are synchronous and must not throw (the host counts it if they do). */
export interface Strategy {
  onPrice?(price: PriceMessage): void;
  /** Order, fill, position and signal events of this strategy only. */
  onEvent?(event: EventMessage): void;
  /** Called periodically by the host with the injected clock's time. */
  onTimer?(now: number): void;
}

export interface StrategyDefinition<S extends TObject = TObject> {
  /** Lowercase id: the registry key, `POLYBOT_STRATEGY`, `signal.strategy` and the event topic suffix. */
  readonly id: string;
  readonly description: string;
  /** TypeBox schema of the config; `default`s fill missing fields. */
  readonly configSchema: S;
  /** Cross-field checks the schema cannot express; return one message per problem (`field: what is wrong`). */
  readonly check?: (config: Static<S>) => string[];
  create(ctx: StrategyContext<Static<S>>): Strategy;
}

export type AnyStrategyDefinition = StrategyDefinition<TObject>;

const ID_RE = /^[a-z][a-z0-9_-]{0,47}$/;

/** Declares a strategy. Checks the id and that the schema's defaults form a valid config. */
export function defineStrategy<S extends TObject>(def: StrategyDefinition<S>): StrategyDefinition<S> {
  if (!ID_RE.test(def.id)) throw new Error(`strategy id ${JSON.stringify(def.id)} must match ${ID_RE}`);
  // A definition whose defaults do not validate is a bug in the strategy; fail at registration.
  parseStrategyConfig(def, {});
  return Object.freeze({ ...def });
}

export class StrategyConfigError extends Error {
  constructor(
    readonly strategy: string,
    /** One `field: problem` line each. */
    readonly problems: string[],
  ) {
    super(`invalid config for strategy ${strategy}:\n  ${problems.join('\n  ')}`);
    this.name = 'StrategyConfigError';
  }
}

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

function fieldName(instancePath: string): string {
  return instancePath.replace(/^\//, '').replace(/\//g, '.') || '(config)';
}

function show(value: unknown): string {
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function valueAt(root: unknown, instancePath: string): unknown {
  let cur: unknown = root;
  for (const part of instancePath.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Turns TypeBox errors into one readable line per field, naming the field and the value given. */
function describeErrors(errors: SchemaError[], value: unknown): string[] {
  const out: string[] = [];
  const byPath = new Map<string, SchemaError[]>();
  for (const e of errors) {
    if (e.keyword === 'boolean') continue; // "schema is false": repeated by additionalProperties below
    if (e.keyword === 'additionalProperties') {
      const names = (e.params.additionalProperties as string[] | undefined) ?? [];
      for (const n of names) out.push(`${fieldName(`${e.instancePath}/${n}`)}: unknown field`);
      continue;
    }
    const list = byPath.get(e.instancePath) ?? [];
    list.push(e);
    byPath.set(e.instancePath, list);
  }
  for (const [path, errs] of byPath) {
    const given = `got ${show(valueAt(value, path))}`;
    const consts = errs.filter((e) => e.keyword === 'const').map((e) => e.params.allowedValue);
    if (consts.length > 0 && errs.some((e) => e.keyword === 'anyOf')) {
      out.push(`${fieldName(path)}: must be one of ${consts.map(show).join(', ')} (${given})`);
      continue;
    }
    for (const e of errs) {
      if (e.keyword === 'anyOf') continue;
      out.push(`${fieldName(path)}: ${e.message} (${given})`);
    }
  }
  return [...new Set(out)];
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/**
 * Validates a raw config (parsed JSON, or undefined for all defaults) against the strategy's
 * schema, fills defaults, runs its cross-field check and returns a frozen copy.
 * Throws StrategyConfigError listing every problem by field.
 */
export function parseStrategyConfig<S extends TObject>(def: StrategyDefinition<S>, raw: unknown): Readonly<Static<S>> {
  if (raw !== undefined && (raw === null || typeof raw !== 'object' || Array.isArray(raw))) {
    throw new StrategyConfigError(def.id, [`(config): must be a JSON object (got ${show(raw)})`]);
  }
  const input = raw === undefined ? {} : Value.Clone(raw);
  const cfg = Value.Default(def.configSchema, input);
  if (!Value.Check(def.configSchema, cfg)) {
    const errors = [...Value.Errors(def.configSchema, cfg)] as unknown as SchemaError[];
    throw new StrategyConfigError(def.id, describeErrors(errors, cfg));
  }
  const problems = def.check?.(cfg as Static<S>) ?? [];
  if (problems.length > 0) throw new StrategyConfigError(def.id, problems);
  return deepFreeze(cfg as Static<S>);
}
