import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wallet } from 'ethers';

export const DEV_WALLET_FILE = 'dev-wallet.key';

/** A key that cannot be used; `code` is stable, the message never contains key material. */
export class WalletError extends Error {
  constructor(
    readonly code: 'bad_private_key' | 'no_private_key',
    message: string,
  ) {
    super(message);
    this.name = 'WalletError';
  }
}
const KEY_RE = /^(0x)?[0-9a-fA-F]{64}$/;

export interface LoadedWallet {
  wallet: Wallet;
  source: 'config' | 'dev-file' | 'dev-generated' | 'keystore';
  /** Path of the dev key file, when one is used. */
  path?: string;
}

function fromKey(key: string, where: string): Wallet {
  const k = key.trim();
  if (!KEY_RE.test(k)) throw new WalletError('bad_private_key', `${where} is not a 32-byte hex private key`);
  try {
    return new Wallet(k.startsWith('0x') ? k : `0x${k}`);
  } catch {
    // Never echo the key or the library's message about it.
    throw new WalletError('bad_private_key', `${where} is not a valid secp256k1 private key`);
  }
}

/**
 * The signing key (shared by the executor, which signs with it, and the simulator, which creates it
 * on first start and says how to use it): POLYBOT_PRIVATE_KEY when given; otherwise (simulator venue only) a development
 * key generated once into `<keys dir>/dev-wallet.key` (dir 0700, file 0600) and reused after.
 */
export function loadWallet(opts: { privateKey?: string; venue: 'sim' | 'polymarket'; keysDir: string }): LoadedWallet {
  if (opts.privateKey) return { wallet: fromKey(opts.privateKey, 'POLYBOT_PRIVATE_KEY'), source: 'config' };
  if (opts.venue !== 'sim') {
    throw new WalletError('no_private_key', 'POLYBOT_PRIVATE_KEY is required when POLYBOT_VENUE=polymarket (a dev key is only made for the simulator)');
  }
  mkdirSync(opts.keysDir, { recursive: true, mode: 0o700 });
  chmodSync(opts.keysDir, 0o700);
  const path = join(opts.keysDir, DEV_WALLET_FILE);
  if (!existsSync(path)) {
    try {
      writeFileSync(path, `${Wallet.createRandom().privateKey}\n`, { mode: 0o600, flag: 'wx' });
      return { wallet: fromKey(readFileSync(path, 'utf8'), path), source: 'dev-generated', path };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another process created it first: use theirs.
    }
  }
  chmodSync(path, 0o600);
  return { wallet: fromKey(readFileSync(path, 'utf8'), path), source: 'dev-file', path };
}
