/**
 * Venue-grade checks of a `POST /order` body before it reaches the book (PROTOCOL.md §3, §5):
 * EIP-712 signature under the V2 exchange of the market, wrong-generation signatures reported as
 * `order_version_mismatch` (clients re-query `/version` on that text), signer = API key address,
 * GTD expiration, timestamp sanity, positive amounts. Pure and synchronous.
 */
import { NEG_RISK_EXCHANGE_V2, EXCHANGE_V2, ORDER_V2_TYPES, POLYGON_CHAIN_ID, orderMessage, type PostOrderBody } from '@polybot/polymarket';
import { SigningKey, TypedDataEncoder, computeAddress, concat, getAddress, getBytes, hexlify, keccak256, toUtf8String } from 'ethers';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

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

// ---------------------------------------------------------------- hashing
//
// ethers' keccak256 (@noble/hashes) costs ~20 µs a permutation here and its TypedDataEncoder adds
// checksum keccaks for both addresses: ~170 µs for an order's struct hash. Below: an unrolled
// Keccak-f[1600] over 32-bit halves and a direct ABI encoding of the Order struct for the canonical
// field forms the schema admits; anything else goes through ethers, so results are identical.

/** Keccak-f[1600] round constants as (low, high) 32-bit halves. */
/** keccak-256 (noble, audited); the struct is hashed from bytes to skip ethers' hex round trips. */
const keccak = (data: Uint8Array): Uint8Array => keccak_256(data);

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case `0x…` hex of bytes (as ethers' hexlify). */
function toHex(b: Uint8Array): string {
  let out = '0x';
  for (let i = 0; i < b.length; i++) out += HEX_BYTE[b[i]!];
  return out;
}

/** Writes `hex` (digits only, even length, already validated) into `buf` at `off`. */
function putHex(buf: Uint8Array, off: number, hex: string): void {
  for (let i = 0; i < hex.length; i += 2) buf[off + i / 2] = parseInt(hex.slice(i, i + 2), 16);
}

const digestBuf = new Uint8Array(66);
digestBuf[0] = 0x19;
digestBuf[1] = 0x01;

/** The EIP-712 digest keccak(0x1901 ‖ domainSeparator ‖ structHash), lower-case hex. */
function digest(separator: string, structHash: string): string {
  putHex(digestBuf, 2, separator.slice(2));
  putHex(digestBuf, 34, structHash.slice(2));
  return toHex(keccak(digestBuf));
}

const ORDER_TYPEHASH = keccak(new TextEncoder().encode(orderEncoder.encodeType('Order')));
const UINT_RE = /^[0-9]{1,78}$/;
const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const MIXED_CASE_RE = /([A-F].*[a-f])|([a-f].*[A-F])/;
const BYTES32_RE = /^0x[0-9a-fA-F]{64}$/;
const MAX_UINT256 = (1n << 256n) - 1n;
/** Mixed-case addresses whose EIP-55 checksum ethers accepted (bounded). */
const checksummed = new Set<string>();

function encUint(buf: Uint8Array, slot: number, dec: unknown): boolean {
  if (typeof dec !== 'string' || !UINT_RE.test(dec)) return false;
  const v = BigInt(dec);
  if (v > MAX_UINT256) return false;
  putHex(buf, slot * 32, v.toString(16).padStart(64, '0'));
  return true;
}

function encAddress(buf: Uint8Array, slot: number, a: unknown): boolean {
  if (typeof a !== 'string' || !ADDRESS_RE.test(a)) return false;
  if (MIXED_CASE_RE.test(a) && !checksummed.has(a)) {
    try {
      if (getAddress(a) !== a) return false;
    } catch {
      return false;
    }
    if (checksummed.size >= 10_000) checksummed.clear();
    checksummed.add(a);
  }
  buf.fill(0, slot * 32, slot * 32 + 12);
  putHex(buf, slot * 32 + 12, a.slice(2));
  return true;
}

function encUint8(buf: Uint8Array, slot: number, n: unknown): boolean {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 255) return false;
  buf.fill(0, slot * 32, slot * 32 + 31);
  buf[slot * 32 + 31] = n;
  return true;
}

function encBytes32(buf: Uint8Array, slot: number, h: unknown): boolean {
  if (typeof h !== 'string' || !BYTES32_RE.test(h)) return false;
  putHex(buf, slot * 32, h.slice(2));
  return true;
}

const structBuf = new Uint8Array(12 * 32);
structBuf.set(ORDER_TYPEHASH, 0);

/** hashStruct(Order) as `orderEncoder.hash(orderMessage(o))` computes it (and throws where it throws). */
function orderStructHash(o: PostOrderBody['order']): string {
  const b = structBuf;
  const fast =
    encUint(b, 1, BigInt(o.salt).toString()) &&
    encAddress(b, 2, o.maker) &&
    encAddress(b, 3, o.signer) &&
    encUint(b, 4, o.tokenId) &&
    encUint(b, 5, o.makerAmount) &&
    encUint(b, 6, o.takerAmount) &&
    encUint8(b, 7, o.side === 'BUY' ? 0 : 1) &&
    encUint8(b, 8, o.signatureType) &&
    encUint(b, 9, o.timestamp) &&
    encBytes32(b, 10, o.metadata) &&
    encBytes32(b, 11, o.builder);
  return fast ? toHex(keccak(b)) : orderEncoder.hash(orderMessage(o));
}

// ---------------------------------------------------------------- fast signature check
//
// ethers' ecrecover (@noble/curves, generic BigInt point arithmetic) costs ~2 ms an order here, which
// caps the simulator at a few hundred orders/s. Almost every order comes from a signer we have seen:
// for those we keep the public key (learnt from an earlier full recovery) with a table of its
// multiples, and check `recover(digest, r, s, v) == that key` directly, which is the same equation:
//   Q = r⁻¹(s·R_v − h·G) = P   ⇔   R_v = s⁻¹(h·G + r·P)   (r, s ∈ [1, n−1])
// i.e. the point s⁻¹h·G + s⁻¹r·P must have x = r and y of parity v − 27. Both scalar multiplications
// use fixed-base comb tables (signed 8-bit windows: 33 mixed additions each, no doublings). Anything
// else — an unknown signer, a check that fails — takes the full ethers recovery, so results are identical.

const { Point } = secp256k1;
const Fn = Point.Fn;
/** G's window: wider than noble's default, built once (lazily: a sim that never sees a repeat signer never pays). */
const G_WINDOW_BITS = 12;
let gReady = false;

/**
 * Does ecrecover(h, r, s, parity) give `key`? The recovered point is R = (h·s⁻¹)·G + (r·s⁻¹)·P,
 * which must be (r, y) with y of the given parity. Both products run on noble's precomputed
 * windows (G's always, the signer's once it is known), which is what makes a repeat signer cheap.
 */
function recoversTo(key: KnownKey, h: bigint, r: bigint, s: bigint, parity: number): boolean {
  if (!gReady) {
    Point.BASE.precompute(G_WINDOW_BITS);
    gReady = true;
  }
  const sInv = Fn.inv(s);
  const R = Point.BASE.multiplyUnsafe(Fn.mul(Fn.create(h), sInv)).add(key.point.multiplyUnsafe(Fn.mul(r, sInv)));
  if (R.is0()) return false;
  const { x, y } = R.toAffine();
  return x === r && Number(y & 1n) === parity;
}

interface KnownKey {
  /** Uncompressed public key, `0x04…`. */
  pub: string;
  point: InstanceType<typeof Point>;
  /** Orders verified the slow way so far; the point's table is built on the second. */
  seen: number;
  fast: boolean;
}

/** Signer address (lower case) → public key, learnt from full recoveries that matched the order's signer. */
const knownKeys = new Map<string, KnownKey>();
/** Bounds memory (noble keeps a window table per precomputed point): the oldest entries go first. */
const MAX_KNOWN_KEYS = 64;
/** Window of a signer's precomputed table (noble's wNAF): with G's, a repeat signer's check costs a fraction of a recovery. */
const KEY_WINDOW_BITS = 10;

function learnKey(address: string, pub: string): void {
  let k = knownKeys.get(address);
  if (!k || k.pub !== pub) {
    if (knownKeys.size >= MAX_KNOWN_KEYS) {
      const oldest = knownKeys.keys().next().value;
      if (oldest !== undefined) knownKeys.delete(oldest);
    }
    k = { pub, point: Point.fromHex(pub.slice(2)), seen: 0, fast: false };
    knownKeys.set(address, k);
  }
  // A one-off signer never pays for a table; a returning one does, once.
  if (++k.seen >= 2 && !k.fast) {
    k.point.precompute(KEY_WINDOW_BITS);
    k.fast = true;
  }
}

/**
 * ecrecover with the exchange's rules: exactly 65 bytes, v ∈ {27, 28}, low s. Lower-case address or
 * undefined. `expected` (lower case) is the address the caller hopes for: a known key is checked fast.
 */
function recoverEoa(hash: string, sig: Uint8Array, expected?: string): string | undefined {
  if (sig.length !== 65) return undefined;
  const v = sig[64];
  if (v !== 27 && v !== 28) return undefined;
  const s = BigInt(toHex(sig.subarray(32, 64)));
  if (s > HALF_N) return undefined;
  if (expected !== undefined) {
    const key = knownKeys.get(expected);
    if (key?.fast) {
      const r = BigInt(toHex(sig.subarray(0, 32)));
      if (r > 0n && r < Fn.ORDER && s > 0n && recoversTo(key, BigInt(hash), r, s, v - 27)) return expected;
    }
  }
  try {
    const pub = SigningKey.recoverPublicKey(hash, hexlify(sig));
    const address = computeAddress(pub).toLowerCase();
    if (address === expected) learnKey(address, pub);
    return address;
  } catch {
    return undefined;
  }
}

/**
 * POLY_1271 (deposit wallet): ERC-7739 `innerSig ‖ appDomainSeparator ‖ contentsHash ‖ typeString ‖ uint16 len`
 * (PROTOCOL.md §5.2). The wallet's owner is on-chain state the simulator does not have, so a well-formed
 * wrapper for this domain and order whose inner signature recovers is accepted; returns that owner EOA.
 */
function recover1271(d: Domain, chainId: number, wallet: string, structHash: string, sig: Uint8Array, expected?: string): string | undefined {
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
  return recoverEoa(digest(d.separator, signStruct), sig.subarray(0, 65), expected);
}

/** Who signed the order under domain `d`, if the signature is valid there (lower case). */
function signerUnder(d: Domain, chainId: number, order: PostOrderBody['order'], structHash: string, sig: Uint8Array, expected?: string): string | undefined {
  if (order.signatureType === 3) return recover1271(d, chainId, order.signer, structHash, sig, expected);
  return recoverEoa(digest(d.separator, structHash), sig, expected);
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
    structHash = orderStructHash(o);
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
  // The EOA we expect to recover: the signer, or for POLY_1271 the wallet owner holding the API key.
  const expected = o.signatureType === 3 ? ctx.callerAddress?.toLowerCase() : signer;
  const recovered = signerUnder(v2, chainId, o, structHash, sig, expected);
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
