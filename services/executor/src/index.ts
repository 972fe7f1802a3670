export { ExecutorConfig, checkExecutionMode } from './config.js';
export { createExecutorService } from './service.js';
export { EXECUTOR_MIGRATIONS, ExecutorStore, type MarketInfo, type OrderRow, type PositionRow, type TradeRow } from './db.js';
export { applyFill, avgPrice, type PositionState } from './positions.js';
export { checkRisk, type RiskCode, type RiskDecision, type RiskLimits } from './risk.js';
export { DEV_WALLET_FILE, loadWallet } from './wallet.js';
