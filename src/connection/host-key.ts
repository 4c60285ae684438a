// The bastion's host key, pinned by its fingerprint as OpenSSH prints it
// (docs/connecting.md, "Pinning the host key").
import { createHash } from 'node:crypto';

/** The OpenSSH fingerprint of a host key blob: SHA256: and unpadded base64, as `ssh-keygen -lf` prints it. */
export function fingerprintOf(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** Whether two fingerprints are the same, with or without base64 padding. */
export function sameFingerprint(a: string, b: string): boolean {
  const norm = (s: string): string =>
    s
      .trim()
      .replace(/^SHA256:/, '')
      .replace(/=+$/, '');
  return norm(a) === norm(b);
}

/** Host key algorithms by family, asked for in turn when the first key offered is not the pinned one. */
export const HOST_KEY_FAMILIES = [
  { types: ['ssh-ed25519'], algorithms: ['ssh-ed25519'] },
  {
    types: ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'],
    algorithms: ['ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'],
  },
  { types: ['ssh-rsa'], algorithms: ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] },
];

/** The key type named at the start of a host key blob (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa…). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}
