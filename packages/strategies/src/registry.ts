import type { AnyStrategyDefinition } from './sdk.js';
import { threshold } from './threshold/index.js';

/**
 * Every strategy the host can run, by id. Adding one: write `src/<id>/index.ts` exporting its
 * `defineStrategy(...)`, then add it to this list.
 */
const all: AnyStrategyDefinition[] = [threshold];

export const strategies: ReadonlyMap<string, AnyStrategyDefinition> = new Map(all.map((d) => [d.id, d]));

export function getStrategy(id: string): AnyStrategyDefinition | undefined {
  return strategies.get(id);
}

export function listStrategies(): Array<{ id: string; description: string }> {
  return [...strategies.values()].map((d) => ({ id: d.id, description: d.description })).sort((a, b) => a.id.localeCompare(b.id));
}
