import { keyPair, Sshd, sshdProbe } from '../test/support/bastion.js';

/** A local OpenSSH sshd letting root in with a fresh key: the bastion of pgland-ssh. */
export interface BenchBastion {
  port: number;
  pid: number;
  privateKey: string;
  fingerprint: string;
  stop(): Promise<void>;
}

export async function startBastion(): Promise<BenchBastion> {
  const probe = sshdProbe();
  if (!probe.ok) throw new Error(`pgland-ssh cannot run here: ${probe.why}`);
  const key = keyPair('ed25519');
  const sshd = await new Sshd(probe.path, [key.public]).start();
  return { port: sshd.port, pid: sshd.pid!, privateKey: key.private, fingerprint: sshd.fingerprint, stop: () => sshd.stop() };
}
