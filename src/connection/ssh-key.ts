// Private keys for logging in to the bastion: read, checked, and converted
// when ssh2 cannot read their format.
import { createPrivateKey, randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { isPublicKeyLine, isPuttyKey } from '../config/files.js';
import { PglandError } from '../errors.js';
import { pemText } from './tls.js';

const { utils } = ssh2;

/** A string in SSH's wire format: a 32-bit length, then the bytes. */
function sshString(buf: Buffer | string): Buffer {
  const b = typeof buf === 'string' ? Buffer.from(buf) : buf;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** An unencrypted ed25519 key in OpenSSH's own format, which ssh2 reads (it reads no PKCS#8). */
function ed25519ToOpenSsh(seed: Buffer, pub: Buffer): string {
  const pubBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  let priv = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString('')]);
  const pad = (8 - (priv.length % 8)) % 8;
  priv = Buffer.concat([priv, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const nkeys = Buffer.alloc(4);
  nkeys.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    nkeys,
    sshString(pubBlob),
    sshString(priv),
  ]);
  const b64 = body.toString('base64').replace(/.{70}/g, '$&\n');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/**
 * ssh2 reads OpenSSH, PKCS#1/SEC1 PEM and PuTTY keys but not PKCS#8
 * ("BEGIN PRIVATE KEY", the format `openssl genpkey` and many key stores
 * write): convert RSA and ECDSA to PKCS#1/SEC1 and ed25519 to OpenSSH, in
 * memory only.
 */
function convertPkcs8(text: string, passphrase: string | undefined): string {
  let key;
  try {
    key = createPrivateKey({ key: text, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(text);
    throw new PglandError(
      'ssh_key_invalid',
      encrypted
        ? `ssh_tunnel.private_key: an encrypted PKCS#8 key that ${passphrase === undefined ? 'needs ssh_tunnel.passphrase' : 'ssh_tunnel.passphrase does not decrypt'}`
        : 'ssh_tunnel.private_key: a PKCS#8 key that cannot be read',
      { hint: 'or convert it to OpenSSH format: ssh-keygen -p -f <keyfile> (it rewrites the file in OpenSSH format)', cause: err },
    );
  }
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return key.export({ type: 'pkcs1', format: 'pem' }).toString();
    case 'ec':
      return key.export({ type: 'sec1', format: 'pem' }).toString();
    case 'ed25519': {
      const jwk = key.export({ format: 'jwk' });
      return ed25519ToOpenSsh(Buffer.from(jwk.d!, 'base64url'), Buffer.from(jwk.x!, 'base64url'));
    }
    default:
      throw new PglandError('ssh_key_invalid', `ssh_tunnel.private_key: a ${key.asymmetricKeyType ?? 'unknown'} key; pgland takes ed25519, ECDSA or RSA keys`, {
        hint: "create one with ssh-keygen -t ed25519 and add its .pub line to the bastion user's ~/.ssh/authorized_keys",
      });
  }
}

/**
 * Checks the private key (text: loadConfigFiles has read a path) before any network
 * traffic, so that a bad key or passphrase is a configuration error naming the
 * key, never a failed login. Nothing of the key or passphrase is echoed.
 */
export function loadPrivateKey(value: string, passphrase: string | undefined): { key: string; passphrase?: string } {
  if (isPublicKeyLine(value)) {
    throw new PglandError('ssh_key_invalid', 'ssh_tunnel.private_key holds a public key, not a private key', {
      hint: "give the private half (the key file without .pub); its .pub line goes in the bastion user's authorized_keys",
    });
  }
  // PuTTY keys carry no PEM armour but are text all the same.
  let text = isPuttyKey(value) ? value : pemText('ssh_tunnel.private_key', value);
  if (/-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/.test(text)) {
    text = convertPkcs8(text, passphrase);
    passphrase = undefined; // the converted key is not encrypted
  }
  let parsed: ParsedKey | ParsedKey[] | Error;
  try {
    parsed = utils.parseKey(text, passphrase) as ParsedKey | ParsedKey[] | Error;
  } catch (err) {
    parsed = err as Error;
  }
  if (parsed instanceof Error) {
    const m = parsed.message;
    if (/no passphrase given/i.test(m)) {
      throw new PglandError('ssh_key_invalid', 'ssh_tunnel.private_key is encrypted and no passphrase is given', {
        hint: 'give ssh_tunnel.passphrase (or PGLAND_SSH_PASSPHRASE, or ssh_tunnel.passphrase_file)',
      });
    }
    if (/decrypt|bad passphrase|integrity check/i.test(m)) {
      throw new PglandError('ssh_key_invalid', 'ssh_tunnel.passphrase does not decrypt ssh_tunnel.private_key', {
        hint: 'check the passphrase (ssh-keygen -y -f <keyfile> asks for it and prints the public key when it is right)',
      });
    }
    throw new PglandError('ssh_key_invalid', `ssh_tunnel.private_key: not a private key pgland can read (${m.slice(0, 120)})`, {
      hint: 'give an OpenSSH, PEM or PKCS#8 private key (ed25519, ECDSA or RSA), as text or a path',
    });
  }
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!first || !first.isPrivateKey()) {
    throw new PglandError('ssh_key_invalid', 'ssh_tunnel.private_key holds a public key, not a private key', {
      hint: 'give the private half (the file without .pub)',
    });
  }
  return { key: text, ...(passphrase !== undefined ? { passphrase } : {}) };
}
