import type { PostOrderBody } from '@polybot/polymarket';

const ZERO32 = `0x${'0'.repeat(64)}`;
let salt = 1;

/** Restarts the salt sequence, so a test can replay the very same orders. */
export function resetSalt(to = 1): void {
  salt = to;
}

/**
 * An order for tests that drive the exchange directly: the engine does not check signatures (the
 * HTTP route does), so a placeholder signature is enough. Price and shares are micro units.
 */
export function engineOrder(o: {
  who: string;
  tokenId: string;
  side: 'BUY' | 'SELL';
  price: bigint;
  shares: bigint;
  timestampMs: number;
  type?: 'GTC' | 'GTD' | 'FOK' | 'FAK';
  expiration?: string;
  owner?: string;
}): PostOrderBody {
  const usdc = (o.price * o.shares) / 1_000_000n;
  return {
    order: {
      salt: salt++,
      maker: o.who,
      signer: o.who,
      tokenId: o.tokenId,
      makerAmount: String(o.side === 'BUY' ? usdc : o.shares),
      takerAmount: String(o.side === 'BUY' ? o.shares : usdc),
      side: o.side,
      signatureType: 0,
      timestamp: String(o.timestampMs),
      expiration: o.expiration ?? '0',
      metadata: ZERO32,
      builder: ZERO32,
      signature: `0x${'ab'.repeat(65)}`,
    },
    owner: o.owner ?? 'test-owner',
    orderType: o.type ?? 'GTC',
  };
}
