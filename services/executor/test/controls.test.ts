import { describe, expect, it } from 'vitest';
import { checkPortfolio, effectiveState, limitsToWire, mergeLimits, utcDay, type PortfolioLimits, type PortfolioView } from '../src/controls.js';

const M = 1_000_000n;
const limits: PortfolioLimits = { maxOpenOrders: 3, maxMarketExposure: 100n * M, maxTotalExposure: 300n * M, maxDailyLoss: 50n * M, priceBand: 100_000n };
const view = (over: Partial<PortfolioView> = {}): PortfolioView => ({ openOrders: 0, marketExposure: 0n, totalExposure: 0n, realizedToday: 0n, ...over });
const buy = (price: bigint, size: bigint) => ({ side: 'BUY' as const, price, size, freeToSell: 0n });
const sell = (price: bigint, size: bigint, free: bigint) => ({ side: 'SELL' as const, price, size, freeToSell: free });

describe('portfolio controls', () => {
  it('halted takes nothing, reduce-only takes sells of held shares only', () => {
    expect(checkPortfolio(sell(500_000n, M, 10n * M), 'HALTED', view(), limits)).toMatchObject({ ok: false, code: 'trading_halted' });
    expect(checkPortfolio(buy(500_000n, M), 'REDUCING', view(), limits)).toMatchObject({ ok: false, code: 'reducing_only' });
    expect(checkPortfolio(sell(500_000n, 11n * M, 10n * M), 'REDUCING', view(), limits)).toMatchObject({ ok: false, code: 'reducing_only' });
    expect(checkPortfolio(sell(500_000n, 10n * M, 10n * M), 'REDUCING', view(), limits)).toEqual({ ok: true });
  });

  it('a day lost past the limit turns ACTIVE into reduce-only', () => {
    expect(effectiveState('ACTIVE', { realizedToday: -49n * M }, limits)).toBe('ACTIVE');
    expect(effectiveState('ACTIVE', { realizedToday: -50n * M }, limits)).toBe('REDUCING');
    expect(effectiveState('ACTIVE', { realizedToday: -500n * M }, { ...limits, maxDailyLoss: 0n })).toBe('ACTIVE');
    expect(checkPortfolio(buy(500_000n, M), 'ACTIVE', view({ realizedToday: -60n * M }), limits)).toMatchObject({ ok: false, code: 'daily_loss_limit' });
    expect(checkPortfolio(sell(500_000n, M, M), 'ACTIVE', view({ realizedToday: -60n * M }), limits)).toEqual({ ok: true });
  });

  it('open orders, market and total exposure are counted exactly', () => {
    expect(checkPortfolio(buy(500_000n, M), 'ACTIVE', view({ openOrders: 3 }), limits)).toMatchObject({ code: 'max_open_orders' });
    // 0.5 × 20 = 10 pUSD on top of 90 is exactly the limit: allowed; one micro more is not.
    expect(checkPortfolio(buy(500_000n, 20n * M), 'ACTIVE', view({ marketExposure: 90n * M }), limits)).toEqual({ ok: true });
    expect(checkPortfolio(buy(500_000n, 20n * M), 'ACTIVE', view({ marketExposure: 90n * M + 1n }), limits)).toMatchObject({ code: 'max_market_exposure' });
    expect(checkPortfolio(buy(500_000n, 20n * M), 'ACTIVE', view({ totalExposure: 291n * M }), limits)).toMatchObject({ code: 'max_total_exposure' });
    // Sells add no exposure.
    expect(checkPortfolio(sell(500_000n, 20n * M, 20n * M), 'ACTIVE', view({ totalExposure: 300n * M, marketExposure: 100n * M }), limits)).toEqual({ ok: true });
  });

  it('refuses a limit far through the book (price band), and skips the check without a quote', () => {
    const q = { bid: 400_000n, ask: 420_000n };
    expect(checkPortfolio(buy(520_000n, M), 'ACTIVE', view({ quote: q }), limits)).toEqual({ ok: true });
    expect(checkPortfolio(buy(520_001n, M), 'ACTIVE', view({ quote: q }), limits)).toMatchObject({ code: 'price_band' });
    expect(checkPortfolio(sell(299_999n, M, M), 'ACTIVE', view({ quote: q }), limits)).toMatchObject({ code: 'price_band' });
    expect(checkPortfolio(buy(990_000n, M), 'ACTIVE', view(), limits)).toEqual({ ok: true });
    expect(checkPortfolio(buy(990_000n, M), 'ACTIVE', view({ quote: q }), { ...limits, priceBand: 0n })).toEqual({ ok: true });
  });

  it('merges limit updates exactly and refuses bad values without changing anything', () => {
    const next = mergeLimits(limits, { max_total_exposure: '1234.5', price_band: '0.05', max_open_orders: 7 });
    expect(typeof next).toBe('object');
    expect(limitsToWire(next as PortfolioLimits)).toEqual({ max_open_orders: 7, max_market_exposure: '100', max_total_exposure: '1234.5', max_daily_loss: '50', price_band: '0.05' });
    expect(mergeLimits(limits, { price_band: '1.5' })).toMatch(/price_band/);
    expect(mergeLimits(limits, { max_daily_loss: '-3' })).toMatch(/max_daily_loss/);
    expect(mergeLimits(limits, { max_open_orders: 1.5 })).toMatch(/max_open_orders/);
    expect(utcDay(Date.UTC(2026, 10, 22, 23, 59))).toBe(utcDay(Date.UTC(2026, 10, 22, 0, 0)));
  });
});
