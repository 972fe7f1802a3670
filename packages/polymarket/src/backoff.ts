/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from `initialMs`, capped at
 * `maxMs`, with jitter in the upper half — it spreads a herd of clients without ever retrying
 * at once.
 */
export function reconnectDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(base / 2 + random() * (base / 2));
}
