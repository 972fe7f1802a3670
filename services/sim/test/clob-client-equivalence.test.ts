/**
 * Our V2 order signing (`buildSignedOrder`, ethers v6) against the official
 * `@polymarket/clob-client-v2` order builder (`OrderBuilder.buildOrder` / `buildMarketOrder`, ethers v5
 * Wallet), same key, same fields, same salt and timestamp: every field and the signature must be
 * identical, both must recover to the signer, and the POST bodies must agree (PROTOCOL.md §9: there is
 * no official EOA vector for V2, so this is the check). The official salt is round(Math.random() ×
 * Date.now()) and the timestamp Date.now(): both are held fixed for the one call, then restored.
 */
import { Wallet as WalletV5 } from '@ethersproject/wallet';
import { OrderBuilder, OrderType, Side, SignatureTypeV2, orderToJsonV2, type TickSize } from '@polymarket/clob-client-v2';
import { buildSignedOrder, orderHash, orderTypedData, type PostOrderBody, type SignedOrderV2 } from '@polybot/polymarket';
import { Wallet, verifyTypedData } from 'ethers';
import { describe, expect, it } from 'vitest';

// The publicly known Hardhat/Anvil account #0 of the shared vectors (vectors/README.md); never funded anywhere.
const TEST_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const TEST_ADDRESS = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const TOKEN = '71321045679252212594626385532706912750332728571942532289631379312455583992563';
const TOKEN_NR = '104173557214744537570424345347209544585775842950109756851652855913015295701992';

interface Spec {
  orderType: 'GTC' | 'GTD' | 'FOK' | 'FAK';
  side: 'BUY' | 'SELL';
  tick: TickSize;
  negRisk: boolean;
  price: string;
  /** Shares (ours); for a market BUY the official `amount` is size × price pUSD. */
  size: string;
  tokenId?: string;
  expiration?: number;
}

const SPECS: Spec[] = [
  { orderType: 'GTC', side: 'BUY', tick: '0.01', negRisk: false, price: '0.56', size: '21.04' },
  { orderType: 'GTC', side: 'SELL', tick: '0.01', negRisk: false, price: '0.39', size: '2435.89' },
  { orderType: 'GTC', side: 'BUY', tick: '0.01', negRisk: true, price: '0.78', size: '12.8205', tokenId: TOKEN_NR },
  { orderType: 'GTC', side: 'SELL', tick: '0.01', negRisk: true, price: '0.99', size: '5', tokenId: TOKEN_NR },
  { orderType: 'GTC', side: 'BUY', tick: '0.1', negRisk: false, price: '0.3', size: '170' },
  { orderType: 'GTC', side: 'SELL', tick: '0.1', negRisk: true, price: '0.9', size: '101.5', tokenId: TOKEN_NR },
  { orderType: 'GTC', side: 'BUY', tick: '0.001', negRisk: false, price: '0.056', size: '1000' },
  { orderType: 'GTC', side: 'SELL', tick: '0.001', negRisk: true, price: '0.999', size: '7.77', tokenId: TOKEN_NR },
  { orderType: 'GTC', side: 'BUY', tick: '0.0001', negRisk: false, price: '0.0056', size: '18233.33' },
  { orderType: 'GTC', side: 'SELL', tick: '0.0001', negRisk: false, price: '0.0001', size: '50' },
  { orderType: 'GTD', side: 'BUY', tick: '0.01', negRisk: false, price: '0.24', size: '15', expiration: 1_767_229_200 },
  { orderType: 'GTD', side: 'SELL', tick: '0.001', negRisk: true, price: '0.512', size: '100', tokenId: TOKEN_NR, expiration: 1_767_232_800 },
  { orderType: 'FOK', side: 'BUY', tick: '0.01', negRisk: false, price: '0.5', size: '200' },
  { orderType: 'FOK', side: 'SELL', tick: '0.01', negRisk: false, price: '0.43', size: '19.1' },
  { orderType: 'FOK', side: 'BUY', tick: '0.1', negRisk: true, price: '0.7', size: '170', tokenId: TOKEN_NR },
  { orderType: 'FOK', side: 'SELL', tick: '0.001', negRisk: true, price: '0.078', size: '12.82', tokenId: TOKEN_NR },
  { orderType: 'FAK', side: 'BUY', tick: '0.001', negRisk: false, price: '0.082', size: '1010' },
  { orderType: 'FAK', side: 'SELL', tick: '0.1', negRisk: false, price: '0.5', size: '100' },
  { orderType: 'FAK', side: 'BUY', tick: '0.0001', negRisk: true, price: '0.0039', size: '243587', tokenId: TOKEN_NR },
  { orderType: 'FAK', side: 'SELL', tick: '0.0001', negRisk: false, price: '0.0082', size: '101' },
  { orderType: 'FOK', side: 'BUY', tick: '0.01', negRisk: false, price: '0.57', size: '1.75' },
  { orderType: 'GTC', side: 'BUY', tick: '0.01', negRisk: false, price: '0.01', size: '0.5' },
];

/** Exact size × price as a decimal string (for the official market BUY `amount`). */
function notional(size: string, price: string): string {
  const dec = (x: string) => {
    const [i, f = ''] = x.split('.');
    return { v: BigInt(`${i}${f}`), s: f.length };
  };
  const a = dec(size);
  const b = dec(price);
  const s = a.s + b.s;
  const digits = (a.v * b.v).toString().padStart(s + 1, '0');
  return s === 0 ? digits : `${digits.slice(0, -s)}.${digits.slice(-s)}`;
}

const FIELDS = ['salt', 'maker', 'signer', 'tokenId', 'makerAmount', 'takerAmount', 'side', 'signatureType', 'timestamp', 'expiration', 'metadata', 'builder', 'signature'] as const;

const ours = new Wallet(TEST_KEY);
const theirsWallet = new WalletV5(TEST_KEY);
const builder = new OrderBuilder(theirsWallet, 137, SignatureTypeV2.EOA);

/** Runs the official builder with Date.now / Math.random held at T / R for exactly that call. */
async function official(spec: Spec, T: number, R: number) {
  const realNow = Date.now;
  const realRandom = Math.random;
  Date.now = () => T;
  Math.random = () => R;
  try {
    const side = spec.side === 'BUY' ? Side.BUY : Side.SELL;
    const tokenID = spec.tokenId ?? TOKEN;
    const options = { tickSize: spec.tick, negRisk: spec.negRisk };
    if (spec.orderType === 'FOK' || spec.orderType === 'FAK') {
      const amount = Number(spec.side === 'BUY' ? notional(spec.size, spec.price) : spec.size);
      const orderType = spec.orderType === 'FOK' ? OrderType.FOK : OrderType.FAK;
      return await builder.buildMarketOrder({ tokenID, price: Number(spec.price), amount, side, orderType }, options, 2);
    }
    return await builder.buildOrder({ tokenID, price: Number(spec.price), size: Number(spec.size), side, ...(spec.expiration === undefined ? {} : { expiration: spec.expiration }) }, options, 2);
  } finally {
    Date.now = realNow;
    Math.random = realRandom;
  }
}

describe('buildSignedOrder ≡ @polymarket/clob-client-v2 OrderBuilder (V2, EOA)', () => {
  it('uses the same key on both sides', async () => {
    expect(ours.address).toBe(TEST_ADDRESS);
    expect(await theirsWallet.getAddress()).toBe(TEST_ADDRESS);
    expect(SPECS.length).toBeGreaterThanOrEqual(20);
  });

  it.each(SPECS.map((s, i) => [i, s] as const))('#%i %o', async (i, spec) => {
    const T = 1_767_225_600_000 + i * 1_003;
    const R = 0.123456789 + i / 997;
    const theirs = (await official(spec, T, R)) as unknown as Record<string, unknown>;
    expect(String(theirs.salt)).toBe(String(Math.round(R * T)));
    expect(theirs.timestamp).toBe(String(T));

    const mine: SignedOrderV2 = buildSignedOrder({
      wallet: ours,
      tokenId: spec.tokenId ?? TOKEN,
      side: spec.side,
      price: spec.price,
      size: spec.size,
      orderType: spec.orderType,
      tickSize: spec.tick,
      negRisk: spec.negRisk,
      salt: Number(theirs.salt),
      timestampMs: T,
      ...(spec.expiration === undefined ? {} : { expiration: spec.expiration }),
    });

    // Every field and the signature; the salt is a decimal string in their object and a number in ours
    // (both are the same JSON number on the wire, see the body check below).
    const pick = (o: Record<string, unknown>) => Object.fromEntries(FIELDS.map((f) => [f, f === 'salt' ? String(o[f]) : o[f]]));
    expect(pick(mine as unknown as Record<string, unknown>)).toEqual(pick(theirs));
    expect(Object.keys(theirs).sort()).toEqual([...FIELDS].sort());

    // Both recover to the signer, on the exchange the neg-risk flag selects.
    const td = orderTypedData(mine, spec.negRisk);
    expect(verifyTypedData(td.domain, td.types, td.message, mine.signature)).toBe(TEST_ADDRESS);
    expect(verifyTypedData(td.domain, td.types, td.message, theirs.signature as string)).toBe(TEST_ADDRESS);
    expect(orderHash(mine, !spec.negRisk)).not.toBe(orderHash(mine, spec.negRisk));

    // The POST bodies (the official orderToJsonV2 vs the PostOrderBody the executor sends) are the same JSON.
    const owner = 'aaaa-bbbb-cccc-dddd';
    const ourBody: PostOrderBody = { order: mine, owner, orderType: spec.orderType, deferExec: false, postOnly: false };
    const theirBody = orderToJsonV2(theirs as unknown as Parameters<typeof orderToJsonV2>[0], owner, spec.orderType as OrderType);
    expect(JSON.parse(JSON.stringify(ourBody))).toEqual(JSON.parse(JSON.stringify(theirBody)));
  });
});
