// Wire shapes. Bus messages come from the protocol package (type-only import: erased at build time,
// so the dashboard bundle never pulls in typebox); REST shapes follow docs/interfaces.md.
import type { EventMessage, PositionEvent, PriceMessage, ServiceState, StatusMessage } from '@polybot/protocol/messages';

export type { EventMessage, PositionEvent, PriceMessage, ServiceState, StatusMessage };

export interface MarketToken {
  token_id: string;
  outcome: string;
  outcome_index: number;
}

export interface Market {
  condition_id: string;
  question: string;
  slug: string | null;
  active: boolean | number;
  closed: boolean | number;
  neg_risk: boolean | number;
  tick_size: string;
  min_order_size: string;
  end_date: string | null;
  tokens: MarketToken[];
}

export interface MarketsResponse {
  markets: Market[];
}

/** One row of the executor's `positions` table; money fields are exact decimal strings. */
export interface Position {
  strategy: string;
  token_id: string;
  market: string;
  size: string;
  avg_price: string;
  cost: string;
  realized_pnl: string;
  updated_at: number;
}

export interface PositionsResponse {
  positions: Position[];
}

export type OverallHealth = 'ok' | 'degraded' | 'down';

export interface ServiceHealth {
  state: ServiceState | 'down' | string;
  since: number;
  last_seen?: number;
  pid?: number;
  message?: string;
  metrics?: Record<string, number | string>;
}

export interface HealthResponse {
  status: OverallHealth;
  services: Record<string, ServiceHealth>;
}

/** Server → client frames on /ws. */
export type WsFrame =
  | { op: 'subscribed'; topics: string[] }
  | { op: 'error'; error: string }
  | { topic: string; data: unknown };
