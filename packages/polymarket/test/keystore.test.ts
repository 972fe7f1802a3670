import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet } from 'ethers';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDataDir } from '@polybot/testkit';
import {
  createKeystore,
  KeystoreError,
  loadKeystore,
  loadSigningKey,
  readPasswordFile,
  resolveKeystorePassword,
  walletFromHexKey,
  type KeystoreLogger,
} from '../src/keystore.js';

// The public Hardhat account #0 of the shared vectors; never funded anywhere.
const shared = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/polymarket');
const TEST_KEY = (JSON.parse(readFileSync(join(shared, 'vectors/l1_clob_auth.json'), 'utf8')) as { cases: Array<{ privateKey: string; address: string }> }).cases[0]!;
const KEY_HEX = TEST_KEY.privateKey.slice(2).toLowerCase();
const PASSWORD = 'correct horse battery staple';
// Tests only: the default (2^17) costs about a second per unlock on purpose.
const FAST = { scryptN: 1024 };

const tmps: Array<() => void> = [];
afterEach(() => {
  for (const c of tmps.splice(0)) c();
});
function dir(): string {
  const t = tempDataDir('pbks');
  tmps.push(t.cleanup);
  return t.dir;
}
function recordingLogger() {
  const lines: string[] = [];
  const log: KeystoreLogger = {
    info: (obj, msg) => void lines.push(JSON.stringify({ obj, msg })),
    warn: (obj, msg) => void lines.push(JSON.stringify({ obj, msg })),
  };
  return { lines, log };
}
async function caught(p: Promise<unknown> | (() => unknown)): Promise<KeystoreError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(KeystoreError);
    return err as KeystoreError;
  }
  throw new Error('expected a KeystoreError');
}
/** Everything an error could print: message, stack, JSON and inspect forms. */
const everything = (err: unknown) => [String(err), (err as Error).stack ?? '', JSON.stringify(err), JSON.stringify(Object.entries(err as object))].join('\n');
const noSecrets = (text: string, ...secrets: string[]) => {
  for (const s of [KEY_HEX, ...secrets]) expect(text.toLowerCase()).not.toContain(s.toLowerCase());
};
function passwordFile(d: string, content: string, mode = 0o600): string {
  const p = join(d, 'keystore.pass');
  writeFileSync(p, content, { mode });
  chmodSync(p, mode);
  return p;
}

describe('keystore', () => {
  it('round trip: creates a 0600 keystore and loads the same key from it with a password file', async () => {
    const d = dir();
    const path = join(d, 'keys', 'executor.json');
    const created = await createKeystore({ path, password: PASSWORD, privateKey: TEST_KEY.privateKey, ...FAST });
    expect(created).toEqual({ address: TEST_KEY.address, path });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(d, 'keys')).mode & 0o777).toBe(0o700);
    const text = readFileSync(path, 'utf8');
    noSecrets(text, PASSWORD);
    expect((JSON.parse(text) as { Crypto: { kdfparams: { n: number } } }).Crypto.kdfparams.n).toBe(1024);
    // Nothing left behind from the atomic write.
    expect(readdirSync(join(d, 'keys'))).toEqual(['executor.json']);

    const { lines, log } = recordingLogger();
    const loaded = await loadSigningKey({ keystorePath: path, passwordFile: passwordFile(d, `${PASSWORD}\n`) }, { log });
    expect(loaded.source).toBe('keystore');
    expect(loaded.address).toBe(TEST_KEY.address);
    expect(loaded.wallet).toBeInstanceOf(Wallet);
    expect(loaded.wallet.privateKey).toBe(TEST_KEY.privateKey);
    expect(lines.join('\n')).toContain(TEST_KEY.address);
    noSecrets(lines.join('\n'), PASSWORD);
  });

  it('also takes the password as a value, and a fresh random key when none is given', async () => {
    const d = dir();
    const path = join(d, 'random.json');
    const { address } = await createKeystore({ path, password: PASSWORD, ...FAST });
    expect(address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(address).not.toBe(TEST_KEY.address);
    const loaded = await loadSigningKey({ keystorePath: path, password: PASSWORD });
    expect(loaded.address).toBe(address);
  });

  it('a wrong password fails with a stable code and a message naming neither key nor password', async () => {
    const d = dir();
    const path = join(d, 'k.json');
    await createKeystore({ path, password: PASSWORD, privateKey: KEY_HEX, ...FAST });
    const wrong = 'not the password at all';
    const err = await caught(loadKeystore(path, wrong));
    expect(err.code).toBe('wrong_password');
    expect(err.message).toBe(`cannot unlock keystore ${path}: wrong password`);
    noSecrets(everything(err), PASSWORD, wrong);
  });

  it('refuses a password file readable by group or others, telling how to fix it', async () => {
    const d = dir();
    const path = join(d, 'k.json');
    await createKeystore({ path, password: PASSWORD, privateKey: KEY_HEX, ...FAST });
    for (const mode of [0o644, 0o640, 0o604]) {
      const pf = passwordFile(d, PASSWORD, mode);
      const err = await caught(loadSigningKey({ keystorePath: path, passwordFile: pf }));
      expect(err.code).toBe('password_file_permissions');
      expect(err.message).toContain(`chmod 600 ${pf}`);
      noSecrets(everything(err), PASSWORD);
    }
    // 0400 is fine: owner-only.
    expect(readPasswordFile(passwordFile(d, `${PASSWORD}\r\n`, 0o400))).toBe(PASSWORD);
  });

  it('password sources: trailing newline only trimmed, empty/missing/ambiguous refused', async () => {
    const d = dir();
    expect(readPasswordFile(passwordFile(d, ' spaced pass \n\n'))).toBe(' spaced pass ');
    expect((await caught(() => readPasswordFile(passwordFile(d, '\n')))).code).toBe('empty_password');
    expect((await caught(() => readPasswordFile(join(d, 'missing')))).code).toBe('password_file_not_found');
    expect((await caught(() => resolveKeystorePassword({}))).code).toBe('no_password');
    const pf = passwordFile(d, PASSWORD);
    expect((await caught(() => resolveKeystorePassword({ passwordFile: pf, password: 'x' }))).code).toBe('ambiguous_password');
    expect(resolveKeystorePassword({ password: PASSWORD })).toBe(PASSWORD);
  });

  it('never overwrites an existing file, and leaves it untouched', async () => {
    const d = dir();
    const path = join(d, 'k.json');
    await createKeystore({ path, password: PASSWORD, privateKey: KEY_HEX, ...FAST });
    const before = readFileSync(path, 'utf8');
    const err = await caught(createKeystore({ path, password: 'another password', ...FAST }));
    expect(err.code).toBe('keystore_exists');
    expect(readFileSync(path, 'utf8')).toBe(before);
    expect(readdirSync(d)).toEqual(['k.json']);
    writeFileSync(join(d, 'other'), 'not a keystore');
    expect((await caught(createKeystore({ path: join(d, 'other'), password: PASSWORD, ...FAST }))).code).toBe('keystore_exists');
  });

  it('validates what it is asked to create', async () => {
    const d = dir();
    expect((await caught(createKeystore({ path: join(d, 'a'), password: 'short', ...FAST }))).code).toBe('weak_password');
    expect((await caught(createKeystore({ path: join(d, 'a'), password: PASSWORD, scryptN: 1000 }))).code).toBe('bad_scrypt_n');
    const bad = `0x${'zz'.repeat(32)}`;
    const err = await caught(createKeystore({ path: join(d, 'a'), password: PASSWORD, privateKey: bad, ...FAST }));
    expect(err.code).toBe('bad_private_key');
    expect(everything(err)).not.toContain('zz'.repeat(32));
    expect(readdirSync(d)).toEqual([]);
  });

  it('dev raw hex key: only when allowed, with or without 0x, never echoed', async () => {
    const { lines, log } = recordingLogger();
    const loaded = await loadSigningKey({ privateKey: KEY_HEX, allowRawKey: true }, { log });
    expect(loaded).toMatchObject({ source: 'raw-key', address: TEST_KEY.address });
    expect(walletFromHexKey(TEST_KEY.privateKey).address).toBe(TEST_KEY.address);
    expect(lines.join('\n')).toContain('development only');
    noSecrets(lines.join('\n'));

    const refused = await caught(loadSigningKey({ privateKey: KEY_HEX }));
    expect(refused.code).toBe('raw_key_not_allowed');
    noSecrets(everything(refused));

    // One hex digit short, and a value off the curve (zero): rejected without quoting them.
    for (const k of [KEY_HEX.slice(1), '0'.repeat(64)]) {
      const err = await caught(loadSigningKey({ privateKey: k, allowRawKey: true }));
      expect(err.code).toBe('bad_private_key');
      expect(everything(err)).not.toContain(k);
    }
    const both = await caught(loadSigningKey({ privateKey: KEY_HEX, keystorePath: '/x', allowRawKey: true }));
    expect(both.code).toBe('ambiguous_key_source');
    noSecrets(everything(both));
    expect((await caught(loadSigningKey({}))).code).toBe('no_key_source');
  });

  it('reports a missing, foreign or damaged keystore by code', async () => {
    const d = dir();
    expect((await caught(loadKeystore(join(d, 'nope.json'), PASSWORD))).code).toBe('keystore_not_found');
    const foreign = join(d, 'foreign.json');
    writeFileSync(foreign, JSON.stringify({ hello: 'world' }), { mode: 0o600 });
    expect((await caught(loadKeystore(foreign, PASSWORD))).code).toBe('keystore_invalid');
    const path = join(d, 'k.json');
    await createKeystore({ path, password: PASSWORD, privateKey: KEY_HEX, ...FAST });
    const ks = JSON.parse(readFileSync(path, 'utf8')) as { Crypto: { ciphertext: string } };
    // Flipped ciphertext: the MAC no longer matches, which is indistinguishable from a wrong password.
    ks.Crypto.ciphertext = ks.Crypto.ciphertext.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const damaged = join(d, 'damaged.json');
    writeFileSync(damaged, JSON.stringify(ks), { mode: 0o600 });
    const err = await caught(loadKeystore(damaged, PASSWORD));
    expect(['wrong_password', 'keystore_invalid']).toContain(err.code);
    noSecrets(everything(err), PASSWORD);
  });

  it('warns (but loads) when the encrypted keystore itself is readable by others', async () => {
    const d = dir();
    const path = join(d, 'k.json');
    await createKeystore({ path, password: PASSWORD, privateKey: KEY_HEX, ...FAST });
    chmodSync(path, 0o644);
    const { lines, log } = recordingLogger();
    const w = await loadKeystore(path, PASSWORD, { log });
    expect(w.address).toBe(TEST_KEY.address);
    expect(lines.some((l) => l.includes(`chmod 600 ${path}`))).toBe(true);
    noSecrets(lines.join('\n'), PASSWORD);
  });
});
