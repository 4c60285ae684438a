import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { PglandError } from '../../errors.js';

/**
 * Secrets at rest in the control database (destination passwords and keys,
 * webhook signing secrets, source credentials) are sealed with AES-256-GCM
 * under a key from the environment (PGLAND_SECRET_KEY). The envelope is
 * `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url parts): the key id (8 hex
 * digits of the key's SHA-256) tells a wrong key from tampering, and the
 * associated data binds a sealed value to the row it belongs to, so that it
 * cannot be copied into another row.
 */
export interface SecretBox {
  /** The first 8 hex digits of SHA-256 of the key: safe to log. */
  readonly keyId: string;
  seal(plain: string, context: string): string;
  open(envelope: string, context: string): string;
}

const VERSION = 'v1';

/** Reads a 32-byte key written as 64 hex digits or as base64 (padded or not, standard or URL alphabet). */
export function parseSecretKey(text: string | undefined): Buffer {
  const hint = 'generate one with: openssl rand -base64 32   and set it in PGLAND_SECRET_KEY (keep it: sealed secrets need it)';
  const value = text?.trim() ?? '';
  if (value === '') throw new PglandError('config_invalid', 'PGLAND_SECRET_KEY is not set: service mode encrypts secrets at rest with it', { hint });
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(value)) key = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(value)) key = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== 32) {
    // Never repeat the value: it is (meant to be) the key.
    throw new PglandError('config_invalid', `PGLAND_SECRET_KEY must be 32 bytes, as 64 hex digits or 44 base64 characters (got ${value.length} characters)`, {
      hint,
    });
  }
  return key;
}

export function secretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new Error('an AES-256 key is 32 bytes');
  const keyId = createHash('sha256').update(key).digest('hex').slice(0, 8);
  return {
    keyId,
    seal(plain, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return [VERSION, keyId, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
    },
    open(envelope, context) {
      const parts = envelope.split('.');
      if (parts.length !== 5 || parts[0] !== VERSION) {
        throw new PglandError('secret_unreadable', 'a stored secret is not in a format this pgland reads', { context: { context } });
      }
      const [, kid, iv, tag, body] = parts as [string, string, string, string, string];
      if (kid !== keyId) {
        throw new PglandError('secret_key_mismatch', `a stored secret was sealed with another key (key id ${kid}; PGLAND_SECRET_KEY has key id ${keyId})`, {
          hint: 'start pgland with the PGLAND_SECRET_KEY the secrets were stored with',
          context: { context },
        });
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
      } catch (err) {
        throw new PglandError('secret_unreadable', 'a stored secret failed its integrity check (altered, or moved from another row)', {
          context: { context },
          cause: err,
        });
      }
    },
  };
}

/** The marker the API returns in place of a secret that is set. */
export const SECRET_SET = '[set]';
