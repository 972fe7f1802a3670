export * from './schemas.js';
export * from './gamma.js';
export * from './clob-public.js';
export * from './market-ws.js';
export * from './order.js';
export * from './clob-trading.js';
export * from './auth.js';
export * from './wallet.js';
