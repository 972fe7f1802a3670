import { TypedDataEncoder, type BaseWallet, type TypedDataDomain, type TypedDataField } from 'ethers';

/**
 * LEGACY CTF Exchange V1 orders — for known-answer checks only (vectors/eip712_order_v1.json,
 * post_order_body_v1.json). Production code must never sign or send V1 orders: the venue takes V2
 * (order.ts), and the V1 client is archived as "no longer functional". Kept deliberately tiny.
 */

export const ORDER_V1_TYPES: Record<string, TypedDataField[]> = {
  Order: [
    { name: 'salt', type: 'uint256' },
    { name: 'maker', type: 'address' },
    { name: 'signer', type: 'address' },
    { name: 'taker', type: 'address' },
    { name: 'tokenId', type: 'uint256' },
    { name: 'makerAmount', type: 'uint256' },
    { name: 'takerAmount', type: 'uint256' },
    { name: 'expiration', type: 'uint256' },
    { name: 'nonce', type: 'uint256' },
    { name: 'feeRateBps', type: 'uint256' },
    { name: 'side', type: 'uint8' },
    { name: 'signatureType', type: 'uint8' },
  ],
};

/** V1 struct fields; integers as decimal strings, side 0 = BUY / 1 = SELL. */
export interface OrderV1 {
  salt: string;
  maker: string;
  signer: string;
  taker: string;
  tokenId: string;
  makerAmount: string;
  takerAmount: string;
  expiration: string;
  nonce: string;
  feeRateBps: string;
  side: 0 | 1;
  signatureType: number;
}

export const domainSeparatorV1 = (domain: TypedDataDomain): string => TypedDataEncoder.hashDomain(domain);
/** EIP-712 digest keccak256(0x1901 ‖ domainSeparator ‖ structHash) = the V1 orderID. */
export const orderHashV1 = (order: OrderV1, domain: TypedDataDomain): string => TypedDataEncoder.hash(domain, ORDER_V1_TYPES, { ...order });
export const signOrderV1 = (wallet: BaseWallet, order: OrderV1, domain: TypedDataDomain): string => wallet.signingKey.sign(orderHashV1(order, domain)).serialized;

/** The old TS client's `orderToJson` POST /order body (key order included); `postOnly` only when given. */
export function orderToJsonV1(order: OrderV1 & { signature: string }, owner: string, orderType: string, postOnly?: boolean, deferExec = false) {
  return {
    order: {
      salt: Number.parseInt(order.salt, 10),
      maker: order.maker,
      signer: order.signer,
      taker: order.taker,
      tokenId: order.tokenId,
      makerAmount: order.makerAmount,
      takerAmount: order.takerAmount,
      side: order.side === 0 ? 'BUY' : 'SELL',
      expiration: order.expiration,
      nonce: order.nonce,
      feeRateBps: order.feeRateBps,
      signatureType: order.signatureType,
      signature: order.signature,
    },
    owner,
    orderType,
    deferExec,
    ...(postOnly === undefined ? {} : { postOnly }),
  };
}
