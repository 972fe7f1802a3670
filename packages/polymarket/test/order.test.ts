import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Wallet, verifyTypedData } from 'ethers';
import Compile from 'typebox/compile';
import {
  buildSignedOrder,
  EXCHANGE_V2,
  limitOrderAmounts,
  marketOrderAmounts,
  NEG_RISK_EXCHANGE_V2,
  OrderBuildError,
  orderAmounts,
  orderHash,
  orderTypedData,
  priceValid,
  ROUNDING_CONFIG,
  signOrder,
  SignedOrderV2,
  type UnsignedOrderV2,
} from '../src/index.js';

// Publicly known Hardhat/Anvil account #0, used by Polymarket's own test suites. Never fund it.
const TEST_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const TEST_ADDRESS = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';

/**
 * Every case of shared/polymarket/vectors/order_amounts.json (49 limit + 35 market, copied from
 * Polymarket's official client test suites): [kind, tick, side, price, size|amount, makerAmount, takerAmount].
 */
const AMOUNT_CASES: Array<['limit' | 'market', string, 'BUY' | 'SELL', string, string, string, string]> = [
  ['limit', '0.1', 'BUY', '0.5', '21.04', '10520000', '21040000'],
  ['limit', '0.01', 'BUY', '0.56', '21.04', '11782400', '21040000'],
  ['limit', '0.001', 'BUY', '0.056', '21.04', '1178240', '21040000'],
  ['limit', '0.0001', 'BUY', '0.0056', '21.04', '117824', '21040000'],
  ['limit', '0.1', 'SELL', '0.5', '21.04', '21040000', '10520000'],
  ['limit', '0.01', 'SELL', '0.56', '21.04', '21040000', '11782400'],
  ['limit', '0.001', 'SELL', '0.056', '21.04', '21040000', '1178240'],
  ['limit', '0.0001', 'SELL', '0.0056', '21.04', '21040000', '117824'],
  ['limit', '0.1', 'BUY', '0.7', '170', '119000000', '170000000'],
  ['limit', '0.1', 'BUY', '0.8', '101', '80800000', '101000000'],
  ['limit', '0.1', 'BUY', '0.7', '12.8205', '8974000', '12820000'],
  ['limit', '0.1', 'BUY', '0.3', '2435.89', '730767000', '2435890000'],
  ['limit', '0.1', 'SELL', '0.7', '170', '170000000', '119000000'],
  ['limit', '0.1', 'SELL', '0.8', '101', '101000000', '80800000'],
  ['limit', '0.1', 'SELL', '0.7', '12.8205', '12820000', '8974000'],
  ['limit', '0.1', 'SELL', '0.3', '2435.89', '2435890000', '730767000'],
  ['limit', '0.01', 'BUY', '0.7', '170', '119000000', '170000000'],
  ['limit', '0.01', 'BUY', '0.82', '101', '82820000', '101000000'],
  ['limit', '0.01', 'BUY', '0.78', '12.8205', '9999600', '12820000'],
  ['limit', '0.01', 'BUY', '0.39', '2435.89', '949997100', '2435890000'],
  ['limit', '0.01', 'SELL', '0.7', '170', '170000000', '119000000'],
  ['limit', '0.01', 'SELL', '0.82', '101', '101000000', '82820000'],
  ['limit', '0.01', 'SELL', '0.78', '12.8205', '12820000', '9999600'],
  ['limit', '0.01', 'SELL', '0.39', '2435.89', '2435890000', '949997100'],
  ['limit', '0.001', 'BUY', '0.007', '170', '1190000', '170000000'],
  ['limit', '0.001', 'BUY', '0.082', '101', '8282000', '101000000'],
  ['limit', '0.001', 'BUY', '0.078', '12.8205', '999960', '12820000'],
  ['limit', '0.001', 'BUY', '0.039', '2435.89', '94999710', '2435890000'],
  ['limit', '0.001', 'SELL', '0.007', '170', '170000000', '1190000'],
  ['limit', '0.001', 'SELL', '0.082', '101', '101000000', '8282000'],
  ['limit', '0.001', 'SELL', '0.078', '12.8205', '12820000', '999960'],
  ['limit', '0.001', 'SELL', '0.039', '2435.89', '2435890000', '94999710'],
  ['limit', '0.0001', 'BUY', '0.0007', '170', '119000', '170000000'],
  ['limit', '0.0001', 'BUY', '0.0082', '101', '828200', '101000000'],
  ['limit', '0.0001', 'BUY', '0.0078', '12.8205', '99996', '12820000'],
  ['limit', '0.0001', 'BUY', '0.0039', '2435.89', '9499971', '2435890000'],
  ['limit', '0.0001', 'SELL', '0.0007', '170', '170000000', '119000'],
  ['limit', '0.0001', 'SELL', '0.0082', '101', '101000000', '828200'],
  ['limit', '0.0001', 'SELL', '0.0078', '12.8205', '12820000', '99996'],
  ['limit', '0.0001', 'SELL', '0.0039', '2435.89', '2435890000', '9499971'],
  ['limit', '0.01', 'BUY', '0.5', '21.04', '10520000', '21040000'],
  ['limit', '0.01', 'BUY', '0.82', '20.0', '16400000', '20000000'],
  ['limit', '0.01', 'BUY', '0.24', '15', '3600000', '15000000'],
  ['limit', '0.01', 'BUY', '0.58', '18233.33', '10575331400', '18233330000'],
  ['limit', '0.01', 'SELL', '0.24', '15', '15000000', '3600000'],
  ['limit', '0.01', 'SELL', '0.43', '19.1', '19100000', '8213000'],
  ['limit', '0.001', 'BUY', '0.512', '100', '51200000', '100000000'],
  ['limit', '0.1', 'BUY', '0.5', '100', '50000000', '100000000'],
  ['limit', '0.1', 'SELL', '0.5', '100', '100000000', '50000000'],
  ['market', '0.1', 'BUY', '0.5', '100', '100000000', '200000000'],
  ['market', '0.01', 'BUY', '0.56', '100', '100000000', '178571400'],
  ['market', '0.001', 'BUY', '0.056', '100', '100000000', '1785714280'],
  ['market', '0.0001', 'BUY', '0.0056', '100', '100000000', '17857142857'],
  ['market', '0.1', 'SELL', '0.5', '100', '100000000', '50000000'],
  ['market', '0.01', 'SELL', '0.56', '100', '100000000', '56000000'],
  ['market', '0.001', 'SELL', '0.056', '100', '100000000', '5600000'],
  ['market', '0.0001', 'SELL', '0.0056', '100', '100000000', '560000'],
  ['market', '0.1', 'BUY', '0.7', '119', '119000000', '170000000'],
  ['market', '0.1', 'BUY', '0.8', '82.8', '82800000', '103500000'],
  ['market', '0.1', 'BUY', '0.7', '9.9996', '9990000', '14271000'],
  ['market', '0.1', 'BUY', '0.3', '949.9971', '949990000', '3166633000'],
  ['market', '0.1', 'BUY', '0.5', '1', '1000000', '2000000'],
  ['market', '0.01', 'BUY', '0.5', '1', '1000000', '2000000'],
  ['market', '0.01', 'BUY', '0.05', '100', '100000000', '2000000000'],
  ['market', '0.01', 'BUY', '0.07', '119', '119000000', '1700000000'],
  ['market', '0.01', 'BUY', '0.82', '82.82', '82820000', '101000000'],
  ['market', '0.01', 'BUY', '0.78', '9.9996', '9990000', '12807600'],
  ['market', '0.01', 'BUY', '0.39', '949.9971', '949990000', '2435871700'],
  ['market', '0.01', 'BUY', '0.56', '1', '1000000', '1785700'],
  ['market', '0.01', 'BUY', '0.57', '1', '1000000', '1754300'],
  ['market', '0.001', 'BUY', '0.005', '100', '100000000', '20000000000'],
  ['market', '0.001', 'BUY', '0.007', '119', '119000000', '17000000000'],
  ['market', '0.001', 'BUY', '0.082', '82.82', '82820000', '1010000000'],
  ['market', '0.001', 'BUY', '0.078', '9.9996', '9990000', '128076920'],
  ['market', '0.001', 'BUY', '0.039', '949.9971', '949990000', '24358717940'],
  ['market', '0.001', 'BUY', '0.056', '1', '1000000', '17857140'],
  ['market', '0.001', 'BUY', '0.057', '1', '1000000', '17543850'],
  ['market', '0.0001', 'BUY', '0.0005', '100', '100000000', '200000000000'],
  ['market', '0.0001', 'BUY', '0.0007', '119', '119000000', '170000000000'],
  ['market', '0.0001', 'BUY', '0.0082', '82.82', '82820000', '10100000000'],
  ['market', '0.0001', 'BUY', '0.0078', '9.9996', '9990000', '1280769230'],
  ['market', '0.0001', 'BUY', '0.0039', '949.9971', '949990000', '243587179487'],
  ['market', '0.0001', 'BUY', '0.0056', '1', '1000000', '178571428'],
  ['market', '0.0001', 'BUY', '0.0057', '1', '1000000', '175438596'],
];

describe('order amounts (PROTOCOL §5.3)', () => {
  it('has all 84 official cases', () => {
    expect(AMOUNT_CASES).toHaveLength(84);
  });

  it.each(AMOUNT_CASES)('%s tick %s %s price %s size %s → %s / %s', (kind, tick, side, price, size, maker, taker) => {
    const got = kind === 'limit' ? limitOrderAmounts(side, price, size, tick) : marketOrderAmounts(side, price, size, tick);
    expect(got).toEqual({ makerAmount: maker, takerAmount: taker });
  });

  it('handles the 0.005 and 0.0025 ticks', () => {
    expect(limitOrderAmounts('BUY', '0.505', '10', '0.005')).toEqual({ makerAmount: '5050000', takerAmount: '10000000' });
    expect(limitOrderAmounts('SELL', '0.0025', '33.33', '0.0025')).toEqual({ makerAmount: '33330000', takerAmount: '83325' });
    // 1 / 0.0075 = 133.333…: ceil at 10 decimals, then down to 6.
    expect(marketOrderAmounts('BUY', '0.0075', '1', '0.0025')).toEqual({ makerAmount: '1000000', takerAmount: '133333333' });
  });

  it('accepts numbers by their shortest repr and equivalent tick spellings', () => {
    expect(limitOrderAmounts('BUY', 0.56, 21.04, 0.01)).toEqual({ makerAmount: '11782400', takerAmount: '21040000' });
    expect(limitOrderAmounts('BUY', '0.560', '21.040', '0.010')).toEqual({ makerAmount: '11782400', takerAmount: '21040000' });
  });

  it('maps signal-style orders: FOK/FAK BUY spends size × price, SELL sells size shares', () => {
    expect(orderAmounts('FOK', 'BUY', '0.5', '10', '0.01')).toEqual({ makerAmount: '5000000', takerAmount: '10000000' });
    expect(orderAmounts('FAK', 'SELL', '0.5', '10', '0.01')).toEqual({ makerAmount: '10000000', takerAmount: '5000000' });
    expect(orderAmounts('GTC', 'BUY', '0.5', '10', '0.01')).toEqual(limitOrderAmounts('BUY', '0.5', '10', '0.01'));
  });

  it('is exact: a limit order on the grid pays exactly size × price', () => {
    const ticks = Object.keys(ROUNDING_CONFIG);
    fc.assert(
      fc.property(fc.constantFrom(...ticks), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 10_000_000 }), fc.boolean(), (tick, k, centi, buy) => {
        const tickUnits = BigInt(Math.round(Number(tick) * 10_000)); // tick in 1e-4 units, exact for every tick above
        const priceE4 = (BigInt(k) % (10_000n / tickUnits - 1n) + 1n) * tickUnits; // tick ≤ price ≤ 1 − tick
        const price = `0.${priceE4.toString().padStart(4, '0')}`;
        const size = `${Math.floor(centi / 100)}.${String(centi % 100).padStart(2, '0')}`;
        const side = buy ? 'BUY' : 'SELL';
        const a = limitOrderAmounts(side, price, size, tick);
        const shares = BigInt(centi) * 10_000n; // base units
        const usdc = BigInt(centi) * priceE4; // centi × 1e-2 × priceE4 × 1e-4 = 1e-6 units
        expect(a).toEqual(buy ? { makerAmount: usdc.toString(), takerAmount: shares.toString() } : { makerAmount: shares.toString(), takerAmount: usdc.toString() });
      }),
      { numRuns: 500 },
    );
  });

  it('rejects unknown ticks and amounts that round to zero', () => {
    expect(() => limitOrderAmounts('BUY', '0.5', '10', '0.02')).toThrow(OrderBuildError);
    expect(() => limitOrderAmounts('BUY', '0.5', '0.001', '0.01')).toThrow(/greater than zero/);
    expect(() => limitOrderAmounts('BUY', '-0.5', '10', '0.01')).toThrow(OrderBuildError);
    expect(() => limitOrderAmounts('BUY', '1e-3', '10', '0.01')).toThrow(OrderBuildError);
  });

  it('validates prices on the tick grid', () => {
    expect(priceValid('0.01', '0.01')).toBe(true);
    expect(priceValid('0.99', '0.01')).toBe(true);
    expect(priceValid('0.5', '0.1')).toBe(true);
    expect(priceValid('0.995', '0.005')).toBe(true);
    expect(priceValid('0.005', '0.01')).toBe(false);
    expect(priceValid('0.555', '0.01')).toBe(false);
    expect(priceValid('1', '0.01')).toBe(false);
    expect(priceValid('0', '0.01')).toBe(false);
    expect(priceValid('0.0025', '0.0025')).toBe(true);
    expect(priceValid('0.003', '0.0025')).toBe(false);
  });
});

describe('V2 EIP-712 orders (PROTOCOL §5.1–5.2)', () => {
  const wallet = new Wallet(TEST_KEY);
  const vectorOrder: UnsignedOrderV2 = {
    salt: 479249096354,
    maker: TEST_ADDRESS,
    signer: TEST_ADDRESS,
    tokenId: '1234',
    makerAmount: '100000000',
    takerAmount: '50000000',
    side: 'BUY',
    signatureType: 0,
    timestamp: '1710000000000',
    expiration: '0',
    metadata: `0x${'0'.repeat(64)}`,
    builder: `0x${'0'.repeat(64)}`,
  };

  // vectors/eip712_order_v2_v3.json derivedCases: the V2 ones (V3 and POLY_1271 do not apply to this signer).
  it.each([
    ['V2 CTF exchange, Polygon', false, 137, '0x10124949f84e9f7438c88d02bfd546ceb27ed6eb1fdb0175137af535b6e2513d', '0x42c7b4857d51e344045fcfde17b37cf1290d784471ffe618c22aa56ea5ddcf0009015b87ffb299813f5597e86d4ad56f40d634558d915edb719e6fc71dbc0d891c'],
    ['V2 Neg Risk exchange, Polygon', true, 137, '0x9c2976657c4b229cc8e467a32ce9e3281ef40a70aee31cdc4619ebf51e4a7274', '0x79d82a92bd020329c6b9afad40b742c8cfaebdd992219b57e4282b6cfd53a66f2c97471d3297fa001f3eac2ead5f709c6e266893f19cef37633511420542a63b1b'],
    ['V2 CTF exchange, Amoy', false, 80002, '0x962c97b18bea292cc94b9479272aa74fb59a905e84a621a40eb339131e9fb6ba', '0x518472f1b081f6bd713d638bb11d1bf0720ed577e93c52eb00ec9f5f325f7d510c65cbfdfe9130de2602185f4a500863d777d8b838cb28abc75ecc1b5330315d1c'],
  ] as const)('%s: order hash and signature match the vector', (_name, negRisk, chainId, hash, sig) => {
    expect(orderHash(vectorOrder, negRisk, { chainId })).toBe(hash);
    const signed = signOrder(wallet, vectorOrder, negRisk, { chainId });
    expect(signed.signature).toBe(sig);
  });

  it('builds a signed order whose signature recovers the signer', () => {
    const order = buildSignedOrder({ wallet, tokenId: '71321045679252212594626385532706912750332728571942532289631379312455583992563', side: 'BUY', price: 0.56, size: 21.04, orderType: 'GTC', tickSize: '0.01', negRisk: false, salt: 42, timestampMs: 1713398400000 });
    expect(Compile(SignedOrderV2).Check(order)).toBe(true);
    expect(order).toMatchObject({ salt: 42, maker: TEST_ADDRESS, signer: TEST_ADDRESS, makerAmount: '11782400', takerAmount: '21040000', side: 'BUY', signatureType: 0, timestamp: '1713398400000', expiration: '0' });
    const td = orderTypedData(order, false);
    expect(td.domain).toEqual({ name: 'Polymarket CTF Exchange', version: '2', chainId: 137, verifyingContract: EXCHANGE_V2 });
    expect(verifyTypedData(td.domain, td.types, td.message, order.signature)).toBe(TEST_ADDRESS);
  });

  it('picks the neg-risk exchange by the market flag, and the hash depends on it', () => {
    const args = { wallet, tokenId: '1234', side: 'SELL' as const, price: '0.3', size: '10', orderType: 'FOK' as const, tickSize: '0.1', negRisk: true, salt: 7, timestampMs: 1 };
    const order = buildSignedOrder(args);
    const td = orderTypedData(order, true);
    expect(td.domain.verifyingContract).toBe(NEG_RISK_EXCHANGE_V2);
    expect(td.message.side).toBe(1);
    expect(verifyTypedData(td.domain, td.types, td.message, order.signature)).toBe(TEST_ADDRESS);
    // Signed for the neg-risk exchange: it does not verify against the standard one.
    const other = orderTypedData(order, false);
    expect(verifyTypedData(other.domain, other.types, other.message, order.signature)).not.toBe(TEST_ADDRESS);
    expect(orderHash(order, true)).not.toBe(orderHash(order, false));
  });

  it('draws a random salt below 2^53 and stamps the time', () => {
    const before = Date.now();
    const a = buildSignedOrder({ wallet, tokenId: '1', side: 'BUY', price: '0.5', size: '10', orderType: 'GTC', tickSize: '0.01', negRisk: false });
    const b = buildSignedOrder({ wallet, tokenId: '1', side: 'BUY', price: '0.5', size: '10', orderType: 'GTC', tickSize: '0.01', negRisk: false });
    expect(Number.isSafeInteger(a.salt)).toBe(true);
    expect(a.salt).not.toBe(b.salt);
    expect(Number(a.timestamp)).toBeGreaterThanOrEqual(before);
    expect(orderHash(a, false)).not.toBe(orderHash(b, false));
  });

  it('refuses invalid orders with a code', () => {
    const base = { wallet, tokenId: '1', side: 'BUY' as const, price: '0.5', size: '10', orderType: 'GTC' as const, tickSize: '0.01', negRisk: false };
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as OrderBuildError).code;
      }
      return undefined;
    };
    expect(code(() => buildSignedOrder({ ...base, price: '0.555' }))).toBe('invalid_price');
    expect(code(() => buildSignedOrder({ ...base, price: '1' }))).toBe('invalid_price');
    expect(code(() => buildSignedOrder({ ...base, tokenId: '0xabc' }))).toBe('invalid_token');
    expect(code(() => buildSignedOrder({ ...base, orderType: 'GTD' }))).toBe('invalid_expiration');
    expect(code(() => buildSignedOrder({ ...base, expiration: 1_900_000_000 }))).toBe('invalid_expiration');
    expect(buildSignedOrder({ ...base, orderType: 'GTD', expiration: 1_900_000_000 }).expiration).toBe('1900000000');
  });
});
