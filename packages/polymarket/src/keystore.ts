/**
 * The executor's signing key at rest: an ethers v6 encrypted JSON keystore (scrypt + AES-128-CTR)
 * unlocked by a password kept in a 0600 file (or, less safely, an env value — pm2 shows env to
 * any shell of the user); for development only, a raw hex key. Nothing in here ever puts a key or
 * a password into an error, a log line or a return value other than the wallet itself.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { encryptKeystoreJson, isKeystoreJson, Wallet } from 'ethers';

export type KeystoreErrorCode =
  | 'no_key_source'
  | 'ambiguous_key_source'
  | 'raw_key_not_allowed'
  | 'bad_private_key'
  | 'keystore_not_found'
  | 'keystore_unreadable'
  | 'keystore_invalid'
  | 'wrong_password'
  | 'no_password'
  | 'ambiguous_password'
  | 'password_file_not_found'
  | 'password_file_unreadable'
  | 'password_file_permissions'
  | 'empty_password'
  | 'weak_password'
  | 'keystore_exists'
  | 'bad_scrypt_n';

/** A key that cannot be loaded or stored. `code` is stable; the message names files, never secrets. */
export class KeystoreError extends Error {
  constructor(
    readonly code: KeystoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeystoreError';
  }
}

export interface KeystoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Ethers' (and geth's) default scrypt cost: about a second per unlock, on purpose. */
export const DEFAULT_SCRYPT_N = 131_072;
/** Largest keystore file read; real ones are under 1 KiB (more with a mnemonic). */
const MAX_KEYSTORE_BYTES = 64 * 1024;
const MAX_PASSWORD_FILE_BYTES = 4096;
export const MIN_KEYSTORE_PASSWORD_LENGTH = 8;
const KEY_RE = /^(0x)?[0-9a-fA-F]{64}$/;

const errno = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/**
 * Reads a keystore password file: trailing newlines trimmed (what `echo pw > file` adds), nothing
 * else touched. Refuses a file that its group or others could read, the way ssh treats keys.
 */
export function readPasswordFile(path: string): string {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if (errno(err) === 'ENOENT') throw new KeystoreError('password_file_not_found', `keystore password file ${path} does not exist`);
    throw new KeystoreError('password_file_unreadable', `cannot read keystore password file ${path} (${errno(err) ?? 'error'})`);
  }
  if (!st.isFile()) throw new KeystoreError('password_file_unreadable', `keystore password file ${path} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new KeystoreError(
      'password_file_permissions',
      `keystore password file ${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${path}`,
    );
  }
  if (st.size > MAX_PASSWORD_FILE_BYTES) throw new KeystoreError('password_file_unreadable', `keystore password file ${path} is larger than ${MAX_PASSWORD_FILE_BYTES} bytes`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KeystoreError('password_file_unreadable', `cannot read keystore password file ${path} (${errno(err) ?? 'error'})`);
  }
  const password = text.replace(/[\r\n]+$/, '');
  if (password === '') throw new KeystoreError('empty_password', `keystore password file ${path} is empty`);
  return password;
}

export interface PasswordSource {
  /** Path of a 0600 file holding the password (`POLYBOT_KEYSTORE_PASSWORD_FILE`). Preferred. */
  passwordFile?: string;
  /** The password itself (`POLYBOT_KEYSTORE_PASSWORD`). */
  password?: string;
}

/** The keystore password from exactly one of a file or a value. */
export function resolveKeystorePassword(src: PasswordSource): string {
  const hasFile = !!src.passwordFile;
  const hasValue = src.password !== undefined && src.password !== '';
  if (hasFile && hasValue) {
    throw new KeystoreError('ambiguous_password', 'both a keystore password file and a keystore password are set; set only one (the file is safer)');
  }
  if (hasFile) return readPasswordFile(src.passwordFile!);
  if (hasValue) return src.password!;
  throw new KeystoreError('no_password', 'a keystore needs a password: set a password file (mode 0600) or a password value');
}

/** Decrypts an ethers v6 / geth JSON keystore. Slow by design (scrypt); async so the loop keeps running. */
export async function loadKeystore(path: string, password: string, opts: { log?: KeystoreLogger; progress?: (fraction: number) => void } = {}): Promise<Wallet> {
  if (!password) throw new KeystoreError('empty_password', `no password given for keystore ${path}`);
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if (errno(err) === 'ENOENT') throw new KeystoreError('keystore_not_found', `keystore ${path} does not exist`);
    throw new KeystoreError('keystore_unreadable', `cannot read keystore ${path} (${errno(err) ?? 'error'})`);
  }
  if (!st.isFile() || st.size > MAX_KEYSTORE_BYTES) throw new KeystoreError('keystore_invalid', `${path} is not a keystore file`);
  if ((st.mode & 0o077) !== 0) {
    // Encrypted, so not refused; but nobody else has any business reading it.
    opts.log?.warn({ path, mode: (st.mode & 0o777).toString(8) }, `keystore is accessible by group or others; run: chmod 600 ${path}`);
  }
  let json: string;
  try {
    json = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KeystoreError('keystore_unreadable', `cannot read keystore ${path} (${errno(err) ?? 'error'})`);
  }
  if (!isKeystoreJson(json)) throw new KeystoreError('keystore_invalid', `${path} is not an encrypted JSON keystore (version 3, scrypt or pbkdf2)`);
  let unlocked: Awaited<ReturnType<typeof Wallet.fromEncryptedJson>>;
  try {
    unlocked = await Wallet.fromEncryptedJson(json, password, opts.progress);
  } catch (err) {
    // Ethers says "incorrect password" for a MAC mismatch; anything else is a damaged file. Its
    // own message is dropped either way: we do not vouch for what it may quote.
    const msg = (err as Error | undefined)?.message ?? '';
    if (/incorrect password/i.test(msg)) throw new KeystoreError('wrong_password', `cannot unlock keystore ${path}: wrong password`);
    throw new KeystoreError('keystore_invalid', `cannot unlock keystore ${path}: the file is damaged or of an unsupported kind`);
  }
  // A plain Wallet whatever the file held (an HD keystore would carry its mnemonic along).
  const wallet = new Wallet(unlocked.privateKey);
  opts.log?.info({ path, address: wallet.address }, 'signing key loaded from keystore');
  return wallet;
}

/** A raw 32-byte hex private key (development only). Messages never echo the input. */
export function walletFromHexKey(key: string, where = 'private key'): Wallet {
  const k = key.trim();
  if (!KEY_RE.test(k)) throw new KeystoreError('bad_private_key', `${where} is not a 32-byte hex private key`);
  try {
    return new Wallet(k.startsWith('0x') ? k : `0x${k}`);
  } catch {
    throw new KeystoreError('bad_private_key', `${where} is not a valid secp256k1 private key`);
  }
}

export interface SigningKeySource extends PasswordSource {
  /** Path of the encrypted JSON keystore (`POLYBOT_KEYSTORE`). */
  keystorePath?: string;
  /** A raw hex private key: development only, refused unless `allowRawKey`. */
  privateKey?: string;
  /** Accept `privateKey` (the caller decides, e.g. never for live trading). Default false. */
  allowRawKey?: boolean;
}

export interface LoadedSigningKey {
  wallet: Wallet;
  source: 'keystore' | 'raw-key';
  address: string;
}

/**
 * The executor's signing key from exactly one source: a keystore (with its password) or, when the
 * caller allows it, a raw hex key. Two sources at once are refused rather than silently ranked.
 */
export async function loadSigningKey(src: SigningKeySource, opts: { log?: KeystoreLogger } = {}): Promise<LoadedSigningKey> {
  const hasKeystore = !!src.keystorePath;
  const hasRaw = src.privateKey !== undefined && src.privateKey !== '';
  if (hasKeystore && hasRaw) {
    throw new KeystoreError('ambiguous_key_source', 'both a keystore and a raw private key are configured; set only one (the keystore)');
  }
  if (hasKeystore) {
    const wallet = await loadKeystore(src.keystorePath!, resolveKeystorePassword(src), opts.log ? { log: opts.log } : {});
    return { wallet, source: 'keystore', address: wallet.address };
  }
  if (hasRaw) {
    if (!src.allowRawKey) {
      throw new KeystoreError('raw_key_not_allowed', 'a raw private key is for development only here; use an encrypted keystore with a password file');
    }
    const wallet = walletFromHexKey(src.privateKey!);
    opts.log?.warn({ address: wallet.address }, 'signing key loaded from a raw hex key (development only; use a keystore)');
    return { wallet, source: 'raw-key', address: wallet.address };
  }
  throw new KeystoreError('no_key_source', 'no signing key configured: set a keystore and its password file');
}

export interface CreateKeystoreOptions {
  path: string;
  password: string;
  /** The key to store; a fresh random one when absent (only its address is returned). */
  privateKey?: string;
  /** scrypt cost, a power of two; default `DEFAULT_SCRYPT_N`. Lower it only for tests. */
  scryptN?: number;
  progress?: (fraction: number) => void;
}

/**
 * Encrypts a key into a new keystore file, mode 0600, all or nothing: written to a temporary file
 * in the same directory, fsynced, then linked into place — `link` fails if the target exists, so
 * even a concurrent writer cannot be overwritten (a plain rename would replace it silently).
 */
export async function createKeystore(opts: CreateKeystoreOptions): Promise<{ address: string; path: string }> {
  const { path, password } = opts;
  if (!password) throw new KeystoreError('empty_password', 'a keystore password must not be empty');
  if (password.length < MIN_KEYSTORE_PASSWORD_LENGTH) {
    throw new KeystoreError('weak_password', `a keystore password needs at least ${MIN_KEYSTORE_PASSWORD_LENGTH} characters`);
  }
  const n = opts.scryptN ?? DEFAULT_SCRYPT_N;
  if (!Number.isSafeInteger(n) || n < 2 || n > 2 ** 22 || (n & (n - 1)) !== 0) {
    throw new KeystoreError('bad_scrypt_n', 'scryptN must be a power of two between 2 and 2^22');
  }
  if (exists(path)) throw new KeystoreError('keystore_exists', `${path} already exists; refusing to overwrite a keystore`);
  const wallet = opts.privateKey !== undefined ? walletFromHexKey(opts.privateKey) : new Wallet(Wallet.createRandom().privateKey);
  const json = await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, password, {
    scrypt: { N: n },
    ...(opts.progress ? { progressCallback: opts.progress } : {}),
  });

  const dir = dirname(path);
  // A new keys directory is private; an existing one is the user's and is left as it is.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeSync(fd, json);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
    } catch (err) {
      if (errno(err) === 'EEXIST') throw new KeystoreError('keystore_exists', `${path} already exists; refusing to overwrite a keystore`);
      // Filesystems without hard links: the existence check above is the best left.
      if (exists(path)) throw new KeystoreError('keystore_exists', `${path} already exists; refusing to overwrite a keystore`);
      renameSync(tmp, path);
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // Already renamed into place, or never linked: nothing to clean.
    }
  }
  syncDir(dir);
  return { address: wallet.address, path };
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (err) {
    if (errno(err) === 'ENOENT') return false;
    throw new KeystoreError('keystore_unreadable', `cannot check ${path} (${errno(err) ?? 'error'})`);
  }
}

/** Makes the new directory entry durable; not every platform can open a directory, which is fine. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort only.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
