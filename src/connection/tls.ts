import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { PglandError } from '../errors.js';
import type { DestinationConfig } from '../config/resolve.js';

/** PEM text given inline, or read from the path given. */
export function pemOrFile(key: string, value: string): string {
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    throw new PglandError('config_invalid', `${key}: not PEM text and not a readable file (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
      hint: `give the PEM text itself or a path to a file holding it`,
    });
  }
}

/**
 * TLS options with libpq's meanings of sslmode (node-postgres on its own reads
 * sslmode=require as verify-full):
 * - require: encrypt, verify nothing (unless a root cert is given, as libpq does: then verify-ca);
 * - verify-ca: the chain must lead to sslrootcert, any host name;
 * - verify-full: the chain and the host name.
 * `prefer` is tried with TLS first by the caller, then without.
 */
export function tlsOptions(cfg: DestinationConfig): false | ConnectionOptions {
  if (cfg.sslmode === 'disable') return false;
  const opts: ConnectionOptions = {};
  if (cfg.sslrootcert) opts.ca = pemOrFile('sslrootcert', cfg.sslrootcert);
  if (cfg.sslcert) opts.cert = pemOrFile('sslcert', cfg.sslcert);
  if (cfg.sslkey) opts.key = pemOrFile('sslkey', cfg.sslkey);
  const verifyChain = cfg.sslmode === 'verify-ca' || cfg.sslmode === 'verify-full' || (cfg.sslmode === 'require' && !!opts.ca);
  opts.rejectUnauthorized = verifyChain;
  if (cfg.sslmode !== 'verify-full') opts.checkServerIdentity = () => undefined;
  return opts;
}
