/**
 * Venue-grade checks of a `POST /order` body before it reaches the book (PROTOCOL.md §3, §5):
 * EIP-712 signature under the V2 exchange of the market, wrong-generation signatures reported as
 * `order_version_mismatch` (clients re-query `/version` on that text), signer = API key address,
 * GTD expiration, timestamp sanity, positive amounts. Pure and synchronous.
 */
import { NEG_RISK_EXCHANGE_V2, EXCHANGE_V2, ORDER_V2_TYPES, POLYGON_CHAIN_ID, orderMessage, type PostOrderBody } from '@polybot/polymarket';
import { TypedDataEncoder, concat, getBytes, hexlify, keccak256, recoverAddress, toUtf8String } from 'ethers';

export interface VerifyOrderContext {
  /** The market's neg-risk flag: selects the neg-risk exchange as verifying contract. */
  negRisk: boolean;
  /** Server clock, ms. */
  now: number;
  /** Address of the authenticated API key; when given, the order's signer must be it. */
  callerAddress?: string;
  /** Default 137 (Polygon). */
  chainId?: number;
}

export type VerifyOrderResult =
  | { ok: true; orderId: string; signer: string }
  | { ok: false; errorMsg: string; httpStatus: number };

export const ERR_INVALID_SIGNATURE = 'invalid signature';
export const ERR_ORDER_VERSION_MISMATCH = 'order_version_mismatch';
export const ERR_INVALID_EXPIRATION = 'invalid expiration';
/** The venue's answer when the signer is not the API key's address (HTTP 400, seen in py-clob-client-v2 issues). */
export const ERR_SIGNER_NOT_API_KEY = 'the order signer address has to be the address of the API KEY';

/** The venue rejects GTD orders expiring within its 1-minute security threshold. */
export const GTD_MIN_LIFETIME_MS = 60_000;
/** Order timestamps (ms) further ahead of the server clock than this are refused. */
export const MAX_TIMESTAMP_SKEW_MS = 5 * 60_000;

const EXCHANGE_NAME = 'Polymarket CTF Exchange';
const AMOY_CHAIN_ID = 80002;
const V1_EXCHANGE = '0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E';
const V1_EXCHANGE_AMOY = '0xdFE02Eb6733538f8Ea35D585af8DE5958AD99E40';
const V1_NEG_RISK_EXCHANGE = '0xC5d563A36AE78145C45a50134d48A1215220f80a';
const V3_EXCHANGE = '0xe3333700cA9d93003F00f0F71f8515005F6c00Aa';
const V3_EXCHANGE_AMOY = '0x9fE6e61422AdB6F610d8597F9684b16912D50C3D';

/** secp256k1 n / 2: the exchange (OpenZeppelin ECDSA) refuses high-s signatures. */
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

const ORDER_TYPE_STRING =
  'Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)';
const ZERO32 = `0x${'0'.repeat(64)}`;

// Encoders resolve the type graph once; building them per order would dominate the cost.
const orderEncoder = TypedDataEncoder.from(ORDER_V2_TYPES);
const typedDataSignEncoder = TypedDataEncoder.from({
  TypedDataSign: [
    { name: 'contents', type: 'Order' },
    { name: 'name', type: 'string' },
    { name: 'version', type: 'string' },
    { name: 'chainId', type: 'uint256' },
    { name: 'verifyingContract', type: 'address' },
    { name: 'salt', type: 'bytes32' },
  ],
  Order: ORDER_V2_TYPES.Order ?? [],
});
const TYPED_DATA_SIGN_TYPEHASH = keccak256(new TextEncoder().encode(typedDataSignEncoder.encodeType('TypedDataSign')));

interface Domain {
  version: '1' | '2' | '3';
  contract: string;
  /** Cached EIP-712 domain separator. */
  separator: string;
}

const domainCache = new Map<string, Domain>();

function domain(chainId: number, version: Domain['version'], contract: string): Domain {
  const key = `${chainId}:${version}:${contract}`;
  let d = domainCache.get(key);
  if (!d) {
    const separator = TypedDataEncoder.hashDomain({ name: EXCHANGE_NAME, version, chainId, verifyingContract: contract });
    d = { version, contract, separator };
    domainCache.set(key, d);
  }
  return d;
}

/** The V2 domain the order must be signed under, then the other generations that identify a version mismatch. */
function domainsFor(chainId: number, negRisk: boolean): { v2: Domain; others: Domain[] } {
  const amoy = chainId === AMOY_CHAIN_ID;
  return {
    v2: domain(chainId, '2', negRisk ? NEG_RISK_EXCHANGE_V2 : EXCHANGE_V2),
    others: [
      domain(chainId, '3', amoy ? V3_EXCHANGE_AMOY : V3_EXCHANGE),
      domain(chainId, '1', negRisk ? V1_NEG_RISK_EXCHANGE : amoy ? V1_EXCHANGE_AMOY : V1_EXCHANGE),
    ],
  };
}

const digest = (separator: string, structHash: string) => keccak256(concat(['0x1901', separator, structHash]));

/** ecrecover with the exchange's rules: exactly 65 bytes, v ∈ {27, 28}, low s. Lower-case address or undefined. */
function recoverEoa(hash: string, sig: Uint8Array): string | undefined {
  if (sig.length !== 65) return undefined;
  const v = sig[64];
  if (v !== 27 && v !== 28) return undefined;
  if (BigInt(hexlify(sig.subarray(32, 64))) > HALF_N) return undefined;
  try {
    return recoverAddress(hash, hexlify(sig)).toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * POLY_1271 (deposit wallet): ERC-7739 `innerSig ‖ appDomainSeparator ‖ contentsHash ‖ typeString ‖ uint16 len`
 * (PROTOCOL.md §5.2). The wallet's owner is on-chain state the simulator does not have, so a well-formed
 * wrapper for this domain and order whose inner signature recovers is accepted; returns that owner EOA.
 */
function recover1271(d: Domain, chainId: number, wallet: string, structHash: string, sig: Uint8Array): string | undefined {
  if (sig.length < 65 + 64 + 2) return undefined;
  const len = ((sig[sig.length - 2] ?? 0) << 8) | (sig[sig.length - 1] ?? 0);
  if (sig.length !== 65 + 64 + len + 2) return undefined;
  const appSeparator = hexlify(sig.subarray(65, 97));
  const contentsHash = hexlify(sig.subarray(97, 129));
  let typeString: string;
  try {
    typeString = toUtf8String(sig.subarray(129, 129 + len));
  } catch {
    return undefined;
  }
  if (appSeparator !== d.separator || contentsHash !== structHash || typeString !== ORDER_TYPE_STRING) return undefined;
  const abi = (x: bigint) => x.toString(16).padStart(64, '0');
  const signStruct = keccak256(
    concat([
      TYPED_DATA_SIGN_TYPEHASH,
      contentsHash,
      keccak256(new TextEncoder().encode('DepositWallet')),
      keccak256(new TextEncoder().encode('1')),
      `0x${abi(BigInt(chainId))}`,
      `0x${abi(BigInt(wallet))}`,
      ZERO32,
    ]),
  );
  return recoverEoa(digest(d.separator, signStruct), sig.subarray(0, 65));
}

/** Who signed the order under domain `d`, if the signature is valid there (lower case). */
function signerUnder(d: Domain, chainId: number, order: PostOrderBody['order'], structHash: string, sig: Uint8Array): string | undefined {
  if (order.signatureType === 3) return recover1271(d, chainId, order.signer, structHash, sig);
  return recoverEoa(digest(d.separator, structHash), sig);
}

const fail = (errorMsg: string, httpStatus = 400): VerifyOrderResult => ({ ok: false, errorMsg, httpStatus });

/**
 * Validates a schema-checked `POST /order` body. On success `orderId` is the V2 EIP-712 digest
 * (the venue's orderID, = `orderHash(order, negRisk, { chainId })`) and `signer` the order's
 * signer in lower case. Errors carry the venue's text and HTTP status (all 400).
 */
export function verifyOrder(body: PostOrderBody, ctx: VerifyOrderContext): VerifyOrderResult {
  const o = body.order;
  const chainId = ctx.chainId ?? POLYGON_CHAIN_ID;
  let structHash: string;
  let makerAmount: bigint, takerAmount: bigint, expiration: bigint, timestamp: bigint;
  try {
    structHash = orderEncoder.hash(orderMessage(o));
    makerAmount = BigInt(o.makerAmount);
    takerAmount = BigInt(o.takerAmount);
    expiration = BigInt(o.expiration);
    timestamp = BigInt(o.timestamp);
  } catch {
    // Unencodable fields (only possible when the schema check was skipped).
    return fail('Invalid order payload');
  }
  const { v2, others } = domainsFor(chainId, ctx.negRisk);
  const orderId = digest(v2.separator, structHash);

  // Cheap field checks first, so junk never costs an ecrecover.
  if (makerAmount <= 0n || takerAmount <= 0n) return fail(`order ${orderId} is invalid. Amounts must be positive.`);
  const now = BigInt(Math.floor(ctx.now));
  if (body.orderType === 'GTD') {
    if (expiration * 1000n <= now + BigInt(GTD_MIN_LIFETIME_MS)) return fail(ERR_INVALID_EXPIRATION);
  } else if (expiration !== 0n) {
    return fail(ERR_INVALID_EXPIRATION);
  }
  if (timestamp > now + BigInt(MAX_TIMESTAMP_SKEW_MS)) {
    return fail(`order ${orderId} is invalid. Timestamp (${o.timestamp}) is too far in the future.`);
  }

  let sig: Uint8Array;
  try {
    sig = getBytes(o.signature);
  } catch {
    return fail(ERR_INVALID_SIGNATURE); // odd-length hex
  }
  const signer = o.signer.toLowerCase();
  const recovered = signerUnder(v2, chainId, o, structHash, sig);
  const valid = o.signatureType === 3 ? recovered !== undefined : recovered === signer;
  if (!valid) {
    // Signed for another exchange generation: the text clients key their `/version` refresh on.
    for (const d of others) {
      const r = signerUnder(d, chainId, o, structHash, sig);
      if (r !== undefined && (o.signatureType === 3 || r === signer)) return fail(ERR_ORDER_VERSION_MISMATCH);
    }
    return fail(ERR_INVALID_SIGNATURE);
  }
  // The exchange contract's EOA rule: the funds owner is the key that signed.
  if (o.signatureType === 0 && o.maker.toLowerCase() !== signer) return fail(ERR_INVALID_SIGNATURE);
  if (ctx.callerAddress !== undefined) {
    const caller = ctx.callerAddress.toLowerCase();
    // POLY_1271: the signer is the wallet contract; its owning EOA may hold the API key instead.
    if (caller !== signer && !(o.signatureType === 3 && caller === recovered)) return fail(ERR_SIGNER_NOT_API_KEY);
  }
  return { ok: true, orderId, signer };
}
