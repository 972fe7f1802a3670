import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSignedOrder, ORDER_V2_TYPES, orderHash, orderMessage, signOrder, type BuildOrderArgs, type PostOrderBody, type SignedOrderV2, type UnsignedOrderV2 } from '@polybot/polymarket';
import { TypedDataEncoder, Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import { ERR_INVALID_EXPIRATION, ERR_INVALID_SIGNATURE, ERR_ORDER_VERSION_MISMATCH, ERR_SIGNER_NOT_API_KEY, verifyOrder } from '../src/verify-order.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
interface VectorCase {
  name: string;
  domain: { version: string; chainId: number; verifyingContract: string };
  expectedOrderHash: string;
  expectedSignature: string;
}
const V2V3 = JSON.parse(readFileSync(resolve(repoRoot, '../shared/polymarket/vectors/eip712_order_v2_v3.json'), 'utf8'));
const DERIVED = V2V3.derivedCases.cases as VectorCase[];
const byVersion = (v: string) => DERIVED.filter((c) => c.domain.version === v).map((c) => [c.name, c] as [string, VectorCase]);

// Publicly known Hardhat/Anvil account #0 used by Polymarket's test suites (vectors/README.md). Never fund it.
const wallet = new Wallet(V2V3.derivedCases.privateKey as string);
const ADDRESS = wallet.address.toLowerCase();
const NOW = 1_713_398_400_000;
const TOKEN = '71321045679252212594626385532706912750332728571942532289631379312455583992563';

function build(over: Partial<BuildOrderArgs> = {}): SignedOrderV2 {
  return buildSignedOrder({ wallet, tokenId: TOKEN, side: 'BUY', price: '0.56', size: '21.04', orderType: 'GTC', tickSize: '0.01', negRisk: false, salt: 42, timestampMs: NOW - 1000, ...over });
}
const body = (order: SignedOrderV2, orderType: PostOrderBody['orderType'] = 'GTC'): PostOrderBody => ({ order, owner: 'key', orderType });
const ctx = (over: Partial<Parameters<typeof verifyOrder>[1]> = {}) => ({ negRisk: false, now: NOW, ...over });
const err = (errorMsg: string) => ({ ok: false, errorMsg, httpStatus: 400 });

/** The order fields of vectors/eip712_order_v2_v3.json in POST-body form. */
function vectorOrder(m: Record<string, string | number>, signature: string): SignedOrderV2 {
  return { ...(m as unknown as UnsignedOrderV2), salt: Number(m.salt), side: m.side === 0 ? 'BUY' : 'SELL', expiration: '0', signature };
}

describe('verifyOrder: signatures', () => {
  it('accepts an order built by buildSignedOrder; orderId is its EIP-712 hash', () => {
    const o = build();
    const r = verifyOrder(body(o), ctx({ callerAddress: wallet.address }));
    expect(r).toEqual({ ok: true, orderId: orderHash(o, false), signer: ADDRESS });
  });

  it('accepts a neg-risk order on a neg-risk market and refuses it on a standard one (and vice versa)', () => {
    const nr = build({ negRisk: true, side: 'SELL' });
    expect(verifyOrder(body(nr), ctx({ negRisk: true }))).toEqual({ ok: true, orderId: orderHash(nr, true), signer: ADDRESS });
    expect(verifyOrder(body(nr), ctx({ negRisk: false }))).toEqual(err(ERR_INVALID_SIGNATURE));
    expect(verifyOrder(body(build()), ctx({ negRisk: true }))).toEqual(err(ERR_INVALID_SIGNATURE));
  });

  it.each(byVersion('2'))(
    'vector %s verifies with the expected orderId',
    (_name, c) => {
      const o = vectorOrder(V2V3.derivedCases.message, c.expectedSignature);
      const negRisk = c.domain.verifyingContract.toLowerCase() === '0xe2222d279d744050d28e00520010520000310f59';
      const r = verifyOrder(body(o), { negRisk, now: 1_710_000_000_000, chainId: c.domain.chainId });
      expect(r).toEqual({ ok: true, orderId: c.expectedOrderHash, signer: ADDRESS });
    },
  );

  it.each(byVersion('3'))(
    'vector %s (V3 domain) is an order_version_mismatch',
    (_name, c) => {
      const o = vectorOrder(V2V3.derivedCases.message, c.expectedSignature);
      const r = verifyOrder(body(o), { negRisk: false, now: 1_710_000_000_000, chainId: c.domain.chainId });
      expect(r).toEqual(err(ERR_ORDER_VERSION_MISMATCH));
    },
  );

  it('reports a V3- or V1-domain signature of our own as order_version_mismatch', () => {
    const o = build();
    const { signature: _s, ...unsigned } = o;
    for (const [version, verifyingContract] of [
      ['3', '0xe3333700cA9d93003F00f0F71f8515005F6c00Aa'],
      ['1', '0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E'],
    ] as const) {
      // signOrder always uses domain version "2": sign the other generation's digest directly.
      const domain = { name: 'Polymarket CTF Exchange', version, chainId: 137, verifyingContract };
      const signature = wallet.signingKey.sign(TypedDataEncoder.hash(domain, ORDER_V2_TYPES, orderMessage(unsigned))).serialized;
      expect(verifyOrder(body({ ...o, signature }), ctx())).toEqual(err(ERR_ORDER_VERSION_MISMATCH));
    }
    // The V3 exchange signed for the right version "2" is just a wrong exchange.
    const wrong = signOrder(wallet, unsigned, false, { verifyingContract: '0xe3333700cA9d93003F00f0F71f8515005F6c00Aa' });
    expect(verifyOrder(body(wrong), ctx())).toEqual(err(ERR_INVALID_SIGNATURE));
  });

  it.each([
    ['makerAmount', (o: SignedOrderV2) => ({ ...o, makerAmount: String(BigInt(o.makerAmount) + 1n) })],
    ['takerAmount', (o: SignedOrderV2) => ({ ...o, takerAmount: String(BigInt(o.takerAmount) - 1n) })],
    ['side', (o: SignedOrderV2) => ({ ...o, side: 'SELL' as const })],
    ['tokenId', (o: SignedOrderV2) => ({ ...o, tokenId: `${o.tokenId.slice(0, -1)}4` })],
    ['salt', (o: SignedOrderV2) => ({ ...o, salt: o.salt + 1 })],
    ['timestamp', (o: SignedOrderV2) => ({ ...o, timestamp: String(Number(o.timestamp) + 1) })],
    ['signature byte', (o: SignedOrderV2) => ({ ...o, signature: `${o.signature.slice(0, 10)}${o.signature[10] === 'a' ? 'b' : 'a'}${o.signature.slice(11)}` })],
    ['signature v', (o: SignedOrderV2) => ({ ...o, signature: `${o.signature.slice(0, -2)}${o.signature.endsWith('1b') ? '1c' : '1b'}` })],
    ['signature length', (o: SignedOrderV2) => ({ ...o, signature: o.signature.slice(0, -2) })],
    ['signature empty', (o: SignedOrderV2) => ({ ...o, signature: '0x' })],
    ['signature odd hex', (o: SignedOrderV2) => ({ ...o, signature: `${o.signature}0` })],
    ['signer', (o: SignedOrderV2) => ({ ...o, signer: '0x1111111111111111111111111111111111111111' })],
  ])('refuses a tampered %s', (_what, tamper) => {
    expect(verifyOrder(body(tamper(build())), ctx())).toEqual(err(ERR_INVALID_SIGNATURE));
  });

  it('refuses the malleable high-s twin of a valid signature, as the exchange contract does', () => {
    const o = build();
    const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const s = BigInt(`0x${o.signature.slice(66, 130)}`);
    const v = o.signature.endsWith('1b') ? '1c' : '1b';
    const twin = `${o.signature.slice(0, 66)}${(N - s).toString(16).padStart(64, '0')}${v}`;
    expect(verifyOrder(body({ ...o, signature: twin }), ctx())).toEqual(err(ERR_INVALID_SIGNATURE));
  });

  it('refuses an EOA order whose maker is not the signer, even when correctly signed', () => {
    const { signature: _s, ...unsigned } = build();
    const o = signOrder(wallet, { ...unsigned, maker: '0x2222222222222222222222222222222222222222' }, false);
    expect(verifyOrder(body(o), ctx())).toEqual(err(ERR_INVALID_SIGNATURE));
    // A proxy-wallet order (type 1) may have a different maker.
    const proxy = signOrder(wallet, { ...unsigned, maker: '0x2222222222222222222222222222222222222222', signatureType: 1 }, false);
    expect(verifyOrder(body(proxy), ctx()).ok).toBe(true);
  });

  it('requires the signer to be the API key address when one is given', () => {
    expect(verifyOrder(body(build()), ctx({ callerAddress: '0x3333333333333333333333333333333333333333' }))).toEqual(err(ERR_SIGNER_NOT_API_KEY));
    expect(verifyOrder(body(build()), ctx({ callerAddress: ADDRESS })).ok).toBe(true);
  });

  it('verifies the official POLY_1271 deposit-wallet vector and rejects it when tampered', () => {
    const c = V2V3.officialCases[0];
    const o = vectorOrder(c.message, c.expectedSignature);
    const r = verifyOrder(body(o), { negRisk: false, now: 1_710_000_000_000, chainId: c.domain.chainId });
    expect(r).toEqual({ ok: true, orderId: orderHash(o, false, { chainId: 80002 }), signer: c.message.signer.toLowerCase() });
    // The wallet's owning EOA holds the API key.
    expect(verifyOrder(body(o), { negRisk: false, now: 1_710_000_000_000, chainId: 80002, callerAddress: c.eoaSignerAddress }).ok).toBe(true);
    expect(verifyOrder(body({ ...o, makerAmount: '100000001' }), { negRisk: false, now: 1_710_000_000_000, chainId: 80002 })).toEqual(err(ERR_INVALID_SIGNATURE));
    expect(verifyOrder(body(o), { negRisk: true, now: 1_710_000_000_000, chainId: 80002 })).toEqual(err(ERR_INVALID_SIGNATURE));
  });
});

describe('verifyOrder: fields', () => {
  it('GTD expiration must be more than 60 s after now', () => {
    const s = NOW / 1000;
    expect(verifyOrder(body(build({ orderType: 'GTD', expiration: s + 61 }), 'GTD'), ctx()).ok).toBe(true);
    expect(verifyOrder(body(build({ orderType: 'GTD', expiration: s + 60 }), 'GTD'), ctx())).toEqual(err(ERR_INVALID_EXPIRATION));
    expect(verifyOrder(body(build({ orderType: 'GTD', expiration: s - 1 }), 'GTD'), ctx())).toEqual(err(ERR_INVALID_EXPIRATION));
    // The server clock is in ms: 60.001 s left passes, exactly 60 s does not.
    expect(verifyOrder(body(build({ orderType: 'GTD', expiration: s + 61 }), 'GTD'), ctx({ now: NOW + 999 })).ok).toBe(true);
    expect(verifyOrder(body(build({ orderType: 'GTD', expiration: s + 61 }), 'GTD'), ctx({ now: NOW + 1000 }))).toEqual(err(ERR_INVALID_EXPIRATION));
    // GTD body with no expiration.
    expect(verifyOrder(body(build(), 'GTD'), ctx())).toEqual(err(ERR_INVALID_EXPIRATION));
  });

  it('non-GTD orders need expiration "0"', () => {
    const gtd = build({ orderType: 'GTD', expiration: NOW / 1000 + 3600 });
    for (const t of ['GTC', 'FOK', 'FAK'] as const) expect(verifyOrder(body(gtd, t), ctx())).toEqual(err(ERR_INVALID_EXPIRATION));
    expect(verifyOrder(body(build({ orderType: 'FOK' }), 'FOK'), ctx()).ok).toBe(true);
  });

  it('refuses a timestamp more than 5 minutes in the future', () => {
    expect(verifyOrder(body(build({ timestampMs: NOW + 300_000 })), ctx()).ok).toBe(true);
    const o = build({ timestampMs: NOW + 300_001 });
    expect(verifyOrder(body(o), ctx())).toEqual(err(`order ${orderHash(o, false)} is invalid. Timestamp (${NOW + 300_001}) is too far in the future.`));
  });

  it('refuses zero amounts', () => {
    const { signature: _s, ...unsigned } = build();
    const o = signOrder(wallet, { ...unsigned, takerAmount: '0' }, false);
    expect(verifyOrder(body(o), ctx())).toEqual(err(`order ${orderHash(o, false)} is invalid. Amounts must be positive.`));
  });

  it('costs one ecrecover per valid order (a few ms at most)', () => {
    const orders = Array.from({ length: 200 }, (_, i) => build({ salt: i + 1 }));
    verifyOrder(body(orders[0]!), ctx());
    const t0 = performance.now();
    for (const o of orders) expect(verifyOrder(body(o), ctx()).ok).toBe(true);
    const per = (performance.now() - t0) / orders.length;
    // ~2 ms on a laptop core with ethers' pure-JS secp256k1; the bound is loose for loaded CI machines.
    expect(per).toBeLessThan(20);
  });
});
