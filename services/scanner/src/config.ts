import { serviceConfig } from '@polybot/core';
import Type, { type Static } from 'typebox';

const Csv = (description: string) => Type.String({ default: '', maxLength: 10_000, description });

export const ScannerConfig = serviceConfig({
  // Discovery
  POLYBOT_SCANNER_MAX_MARKETS: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  POLYBOT_SCANNER_DISCOVERY_INTERVAL_MS: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 60_000 }),
  POLYBOT_SCANNER_WATCH: Csv('market slugs or condition ids to follow'),
  POLYBOT_SCANNER_TAGS: Csv('Gamma tag slugs whose events to follow'),
  POLYBOT_SCANNER_SERIES: Csv('Gamma series slugs whose events to follow'),
  POLYBOT_SCANNER_MIN_VOLUME: Type.Number({ minimum: 0, default: 0 }),
  POLYBOT_SCANNER_MIN_LIQUIDITY: Type.Number({ minimum: 0, default: 0 }),
  POLYBOT_SCANNER_END_WITHIN_HOURS: Type.Number({ minimum: 0, default: 0 }),
  // Market channel
  POLYBOT_SCANNER_SHARD_SIZE: Type.Integer({ minimum: 1, maximum: 500, default: 200 }),
  POLYBOT_SCANNER_STALE_MS: Type.Integer({ minimum: 200, maximum: 600_000, default: 30_000 }),
  POLYBOT_SCANNER_PING_MS: Type.Integer({ minimum: 50, maximum: 60_000, default: 10_000 }),
  /** First reconnect delay; doubles per failed attempt (with jitter) up to 30 s. */
  POLYBOT_SCANNER_RECONNECT_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 500 }),
  /** A followed asset without any event for this long is checked against REST. */
  POLYBOT_SCANNER_ASSET_STALE_MS: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 300_000 }),
  POLYBOT_SCANNER_BOOK_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 100 }),
  POLYBOT_SCANNER_BOOK_DEPTH: Type.Integer({ minimum: 1, maximum: 1000, default: 20 }),
  // Reference prices and rounds
  POLYBOT_SCANNER_RTDS: Type.Boolean({ default: true }),
  POLYBOT_SCANNER_RTDS_SYMBOLS: Type.String({ default: 'btc/usd,eth/usd,sol/usd,xrp/usd', maxLength: 1000 }),
  POLYBOT_SCANNER_ROUND_ASSETS: Type.String({ default: 'BTC,ETH,SOL,XRP', maxLength: 200, pattern: '^(none|[A-Za-z0-9]+(,\\s*[A-Za-z0-9]+)*)?$' }),
  POLYBOT_SCANNER_ROUND_SECONDS: Type.Integer({ minimum: 10, maximum: 86_400, default: 900 }),
  POLYBOT_SCANNER_ROUND_PREFETCH_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 60_000 }),
  POLYBOT_SCANNER_ROUND_ENDING_LEAD_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 30_000 }),
  // Recording
  POLYBOT_SCANNER_RECORD: Type.Boolean({ default: false }),
  POLYBOT_RECORDING_SEGMENT_MB: Type.Integer({ minimum: 1, maximum: 10_000, default: 64 }),
  POLYBOT_RECORDING_SEGMENT_MINUTES: Type.Integer({ minimum: 1, maximum: 10_080, default: 60 }),
  POLYBOT_RECORDING_RETENTION_DAYS: Type.Number({ minimum: 0, default: 14 }),
  POLYBOT_RECORDING_MAX_GB: Type.Number({ minimum: 0, default: 20 }),
  /** `live` follows the venue; `replay` starts idle and only plays recordings (backtests, `polybot replay --standalone`). */
  POLYBOT_SCANNER_SOURCE: Type.Union([Type.Literal('live'), Type.Literal('replay')], { default: 'live' }),
});
export type ScannerConfig = Static<typeof ScannerConfig>;
