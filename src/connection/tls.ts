import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import { isPem } from '../config/files.js';
import { PglandError } from '../errors.js';
import type { DestinationConfig } from '../config/resolve.js';

/**
 * PEM text, which loadConfigFiles has read from a file when the config gave a
 * path: nothing here reads files (a synchronous read of a FIFO would freeze
 * the process). The content is never echoed.
 */
export function pemText(key: string, value: string): string {
  if (isPem(value)) return value;
  throw new PglandError('config_invalid', `${key}: not PEM text (a path given here must be read first, by loadConfigFiles)`, {
    hint: 'give the PEM text itself or the path of a file holding it',
  });
}

/** The name the server's certificate must carry under verify-full, and the SNI name sent. */
export function tlsServerName(cfg: Pick<DestinationConfig, 'host' | 'sslservername'>): string {
  return cfg.sslservername ?? cfg.host;
}

/**
 * TLS options with libpq's meanings of sslmode (node-postgres on its own reads
 * sslmode=require in a URL as verify-full):
 * - disable: no TLS;
 * - prefer: TLS when the server offers it, else plain (the caller falls back); verifies nothing;
 * - require: encrypt, verify nothing;
 * - verify-ca: the chain must lead to sslrootcert (or the public CAs), any host name;
 * - verify-full: the chain and the host name (or sslservername).
 * As in libpq, giving a root certificate to prefer or require verifies the
 * chain (what libpq does when ~/.postgresql/root.crt exists).
 * "sslrootcert": "system" trusts the public CAs Node.js ships, as libpq 16's
 * sslrootcert=system does; so does verify-ca/verify-full with no sslrootcert.
 */
export function tlsOptions(cfg: DestinationConfig): false | ConnectionOptions {
  if (cfg.sslmode === 'disable') return false;
  const opts: ConnectionOptions = {};
  const customCa = cfg.sslrootcert !== undefined && cfg.sslrootcert !== 'system';
  if (customCa) opts.ca = pemText('sslrootcert', cfg.sslrootcert!);
  if (cfg.sslcert) opts.cert = pemText('sslcert', cfg.sslcert);
  if (cfg.sslkey) opts.key = pemText('sslkey', cfg.sslkey);
  if (cfg.sslcert && !cfg.sslkey) {
    throw new PglandError('config_invalid', 'sslcert is given without sslkey', { hint: 'give the client key that goes with the certificate as sslkey' });
  }
  const verifyChain = cfg.sslmode === 'verify-ca' || cfg.sslmode === 'verify-full' || customCa;
  opts.rejectUnauthorized = verifyChain;
  const name = tlsServerName(cfg);
  // SNI must not be an IP address (RFC 6066); managed services route on it.
  if (isIP(name) === 0 && !name.startsWith('/')) opts.servername = name;
  // The identity is checked against the configured name, never against the
  // address the socket happens to reach (a tunnel's 127.0.0.1, say).
  opts.checkServerIdentity = cfg.sslmode === 'verify-full' ? (_host, cert) => checkServerIdentity(name, cert) : () => undefined;
  return opts;
}
