import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDataDir } from '@polybot/testkit';
import { DEV_WALLET_FILE, loadWallet, WalletError } from '../src/index.js';

const TEST_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

describe('loadWallet', () => {
  it('creates the development wallet once, private to the user, and reuses it', () => {
    const tmp = tempDataDir();
    cleanups.push(tmp.cleanup);
    const keysDir = join(tmp.dir, 'keys');
    const first = loadWallet({ venue: 'sim', keysDir });
    expect(first.source).toBe('dev-generated');
    expect(statSync(keysDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(keysDir, DEV_WALLET_FILE)).mode & 0o777).toBe(0o600);
    const second = loadWallet({ venue: 'sim', keysDir });
    expect(second.source).toBe('dev-file');
    expect(second.wallet.address).toBe(first.wallet.address);
    expect(readFileSync(join(keysDir, DEV_WALLET_FILE), 'utf8').trim()).toBe(first.wallet.privateKey);
  });

  it('prefers a configured key and refuses to invent one for the real venue', () => {
    const tmp = tempDataDir();
    cleanups.push(tmp.cleanup);
    const keysDir = join(tmp.dir, 'keys');
    expect(loadWallet({ venue: 'polymarket', keysDir, privateKey: TEST_KEY }).wallet.address).toBe('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
    expect(() => loadWallet({ venue: 'polymarket', keysDir })).toThrow(WalletError);
  });

  it('rejects a malformed key without echoing it', () => {
    const bad = '0xnot-a-key-but-secret-looking-material';
    let err: unknown;
    try {
      loadWallet({ venue: 'sim', keysDir: '/nonexistent', privateKey: bad });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WalletError);
    expect((err as WalletError).code).toBe('bad_private_key');
    expect((err as Error).message).not.toContain('secret-looking');
  });
});
