import { PolybotError, serviceConfig } from '@polybot/core';
import Type, { type Static } from 'typebox';

const Shares = (def: string, description: string) =>
  Type.String({ pattern: '^[0-9]+(\\.[0-9]{1,6})?$', default: def, description });

export const ExecutorConfig = serviceConfig({
  /** sim: orders go to the simulator; paper: filled locally against the scanner's books, nothing sent; live: real orders (needs opt-in). */
  POLYBOT_EXECUTION_MODE: Type.Union([Type.Literal('sim'), Type.Literal('paper'), Type.Literal('live')], { default: 'sim' }),
  /** Must be exactly "yes" for live mode. */
  POLYBOT_LIVE_TRADING: Type.Optional(Type.String({ maxLength: 16 })),
  /** Hex private key of the signing wallet; never logged. */
  POLYBOT_PRIVATE_KEY: Type.Optional(Type.String({ pattern: '^(0x)?[0-9a-fA-F]{64}$' })),
  /** Encrypted JSON keystore (ethers/geth format) holding the signing key; preferred over POLYBOT_PRIVATE_KEY. */
  POLYBOT_KEYSTORE: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  /** File (mode 0600) holding the keystore password. */
  POLYBOT_KEYSTORE_PASSWORD_FILE: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  /** The keystore password itself, when a file is not practical; never logged. */
  POLYBOT_KEYSTORE_PASSWORD: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  POLYBOT_RISK_MAX_ORDER_SIZE: Shares('100', 'largest order, in shares'),
  POLYBOT_RISK_MAX_POSITION: Shares('500', 'largest position per strategy and token, in shares'),
  POLYBOT_RISK_MAX_NOTIONAL: Shares('100', 'largest price × size of one order, in pUSD'),
  POLYBOT_RISK_MAX_OPEN_ORDERS: Type.Integer({ minimum: 0, maximum: 100_000, default: 50, description: 'open orders at once, all strategies' }),
  POLYBOT_RISK_MAX_MARKET_EXPOSURE: Shares('500', 'position cost plus open buys in one market, in pUSD'),
  POLYBOT_RISK_MAX_TOTAL_EXPOSURE: Shares('2000', 'position cost plus open buys over all markets, in pUSD'),
  POLYBOT_RISK_MAX_DAILY_LOSS: Shares('200', 'realized loss since 00:00 UTC after which trading is reduce-only, in pUSD (0 = off)'),
  POLYBOT_RISK_PRICE_BAND: Shares('0.2', 'a BUY above best ask + band or a SELL below best bid − band is refused (0 = off)'),
  /** Deadline of one POST /order; past it the order is 'unknown', never re-sent. Keep it under the 10 s stop budget. */
  POLYBOT_EXECUTOR_ORDER_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5000 }),
  /** The signer's rate-limit tier at the venue (per-signer order and cancel buckets); standard is the tightest. */
  POLYBOT_EXECUTOR_RATE_TIER: Type.Union(
    ['standard', 'copper', 'bronze', 'silver', 'gold', 'platinum', 'diamond', 'elite'].map((t) => Type.Literal(t)),
    { default: 'standard' },
  ),
  /** Share of the venue's published rate limits the executor allows itself. */
  POLYBOT_EXECUTOR_RATE_SHARE: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.8 }),
  /** REST refresh of open orders and trades, the fallback when the user stream misses something. */
  POLYBOT_EXECUTOR_POLL_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 30_000 }),
  /** Dead-man heartbeat interval while trading (0 = off: the venue then never cancels on silence). */
  POLYBOT_EXECUTOR_HEARTBEAT_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 5000 }),
  /** On a graceful stop: cancel every open order, or keep them (the next start reconciles them; the venue's dead-man switch cancels them if no heartbeat comes back in time). */
  POLYBOT_EXECUTOR_ON_STOP: Type.Union([Type.Literal('keep'), Type.Literal('cancel')], { default: 'keep' }),
});
export type ExecutorConfig = Static<typeof ExecutorConfig>;

/** Refuses modes that cannot run yet or were not confirmed; the message says what to set. */
export function checkExecutionMode(cfg: ExecutorConfig): void {
  const mode = cfg.POLYBOT_EXECUTION_MODE;
  // paper sends nothing anywhere: it is safe against any venue's market data.
  if (mode === 'paper') return;
  if (mode === 'live') {
    if (cfg.POLYBOT_LIVE_TRADING !== 'yes') {
      throw new PolybotError(
        'live_not_confirmed',
        'POLYBOT_EXECUTION_MODE=live sends real orders with real money: set POLYBOT_LIVE_TRADING=yes to confirm, or use POLYBOT_EXECUTION_MODE=sim',
        'fatal',
      );
    }
    if (!cfg.POLYBOT_PRIVATE_KEY && !cfg.POLYBOT_KEYSTORE) {
      throw new PolybotError('no_private_key', 'POLYBOT_EXECUTION_MODE=live needs a signing key: POLYBOT_KEYSTORE with POLYBOT_KEYSTORE_PASSWORD_FILE (or POLYBOT_PRIVATE_KEY)', 'fatal');
    }
    return;
  }
  if (cfg.POLYBOT_VENUE === 'polymarket') {
    // sim execution against the real venue's URLs would send unconfirmed real orders.
    throw new PolybotError(
      'sim_mode_real_venue',
      'POLYBOT_EXECUTION_MODE=sim sends orders to the simulator but POLYBOT_VENUE=polymarket points at the real exchange; use POLYBOT_VENUE=sim',
      'fatal',
    );
  }
}
