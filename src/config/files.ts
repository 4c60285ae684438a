import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { PglandError } from '../errors.js';
import type { DestinationConfig, SshTunnelConfig } from './resolve.js';

/**
 * Files a destination config names (password_file, certificates and keys
 * given as paths), read when connecting. Reading is asynchronous and refuses
 * anything but a regular file of at most MAX_CONFIG_FILE_BYTES: a FIFO would
 * block the read until someone writes to it, a device (/dev/zero) never ends,
 * and a directory is a mistake. Errors name the key and the path, never the
 * content.
 */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The text of a regular file of at most MAX_CONFIG_FILE_BYTES; `key` names the config key in errors. */
export async function readConfigFile(key: string, path: string): Promise<string> {
  const refuse = (why: string): PglandError =>
    new PglandError('config_invalid', `${key}: cannot read ${path}: ${why}`, {
      hint: `give the path of a regular file of at most ${MAX_CONFIG_FILE_BYTES / 1024} KiB, readable by pgland`,
    });
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw refuse(err.code ?? 'error');
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw refuse(`${kindOf(st)}, not a regular file`);
    if (st.size > MAX_CONFIG_FILE_BYTES) throw refuse(`larger than ${MAX_CONFIG_FILE_BYTES / 1024} KiB`);
    // Read one byte past the cap: a file that grew since stat is refused too.
    const buf = Buffer.alloc(MAX_CONFIG_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_CONFIG_FILE_BYTES) throw refuse(`larger than ${MAX_CONFIG_FILE_BYTES / 1024} KiB`);
    }
    return buf.subarray(0, length).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** A secret read from a file: a trailing newline is not part of it. */
async function readSecretFile(key: string, path: string): Promise<string> {
  return (await readConfigFile(key, path)).replace(/\r?\n$/, '');
}

/** PEM text is used as is; anything else is a path, and the file it names must hold PEM text. */
export function isPem(value: string): boolean {
  return value.includes('-----BEGIN');
}

/** A PuTTY key is text without PEM armour. */
export function isPuttyKey(value: string): boolean {
  return /^PuTTY-User-Key-File-/.test(value);
}

async function pemFromFile(key: string, value: string, isText: (v: string) => boolean = isPem): Promise<string> {
  if (isText(value)) return value;
  const text = await readConfigFile(key, value);
  if (!isText(text))
    throw new PglandError('config_invalid', `${key}: ${value} does not hold PEM text (-----BEGIN …)`, {
      hint: `give the PEM text itself or the path of a file holding it`,
    });
  return text;
}

async function loadTunnelFiles(t: SshTunnelConfig): Promise<SshTunnelConfig> {
  const { passphrase_file, password_file, ...rest } = t;
  const out: SshTunnelConfig = { ...rest };
  if (t.private_key !== undefined) out.private_key = await pemFromFile('ssh_tunnel.private_key', t.private_key, isKeyText);
  if (passphrase_file !== undefined) out.passphrase = await readSecretFile('ssh_tunnel.passphrase_file', passphrase_file);
  if (password_file !== undefined) out.password = await readSecretFile('ssh_tunnel.password_file', password_file);
  return out;
}

/** A public key line (ssh-ed25519 AAAA…): loadPrivateKey says it is the wrong half, which is more useful than "not PEM". */
export function isPublicKeyLine(value: string): boolean {
  return /^\s*(ssh-(ed25519|rsa|dss)|ecdsa-sha2-\S+|sk-\S+) [A-Za-z0-9+/=]+/.test(value);
}

/** An ssh_tunnel.private_key given as text (any other value is a path). */
export function isKeyText(value: string): boolean {
  return isPem(value) || isPuttyKey(value) || isPublicKeyLine(value);
}

/**
 * The config with every file it names read: password_file into password,
 * certificate and key paths into their PEM text, the bastion's key,
 * passphrase and password files into their values. A config with nothing to
 * read comes back unchanged, so calling this twice is harmless.
 */
export async function loadConfigFiles(cfg: DestinationConfig): Promise<DestinationConfig> {
  const { password_file, ...out } = cfg;
  if (password_file !== undefined) out.password = await readSecretFile('password_file', password_file);
  if (cfg.sslrootcert !== undefined && cfg.sslrootcert !== 'system') out.sslrootcert = await pemFromFile('sslrootcert', cfg.sslrootcert);
  if (cfg.sslcert !== undefined) out.sslcert = await pemFromFile('sslcert', cfg.sslcert);
  if (cfg.sslkey !== undefined) out.sslkey = await pemFromFile('sslkey', cfg.sslkey);
  if (cfg.ssh_tunnel) out.ssh_tunnel = await loadTunnelFiles(cfg.ssh_tunnel);
  return out;
}
