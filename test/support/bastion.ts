import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { fingerprintOf } from '../../src/connection/host-key.js';

const { Server, utils } = ssh2;

/** A key pair in OpenSSH format (what ssh-keygen writes), and its public blob's fingerprint. */
export interface KeyPair {
  private: string;
  public: string;
  fingerprint: string;
}

export function keyPair(type: 'ed25519' | 'rsa' | 'ecdsa', opts: { passphrase?: string } = {}): KeyPair {
  const gen = utils.generateKeyPairSync as unknown as (t: string, o: Record<string, unknown>) => { private: string; public: string };
  // ssh2's generator strips every leading zero byte of an ed25519 public key,
  // so about 1 key in 256 comes out malformed and unparseable (mscdex/ssh2
  // issues 1390, 1513; it failed a CI run): such a pair is drawn again.
  for (let attempt = 1; ; attempt++) {
    const pair = gen(type, {
      ...(type === 'rsa' ? { bits: 2048 } : type === 'ecdsa' ? { bits: 256 } : {}),
      ...(opts.passphrase ? { passphrase: opts.passphrase, cipher: 'aes256-ctr', rounds: 4 } : {}),
    });
    const parsed = utils.parseKey(pair.public);
    const privateOk = !(utils.parseKey(pair.private, opts.passphrase) instanceof Error);
    if (!(parsed instanceof Error) && privateOk) {
      return { private: pair.private, public: pair.public, fingerprint: fingerprintOf((parsed as ParsedKey).getPublicSSH()) };
    }
    if (attempt === 10) throw new Error(`ssh2 generated ${attempt} unparseable ${type} key pairs in a row`);
  }
}

/**
 * A TCP relay in front of a bastion: kill() destroys every relayed connection
 * at once (a network failure, not a polite SSH disconnect) and freeze() stops
 * every byte without closing anything (a silent network: only keepalives
 * notice). New connections go through as usual.
 */
export class Relay {
  private readonly pairs = new Set<[Socket, Socket]>();
  private server: NetServer | undefined;
  port = 0;
  connections = 0;

  constructor(
    private readonly to: { host: string; port: number },
    private readonly listenHost = '127.0.0.1',
  ) {}

  async start(): Promise<this> {
    this.server = createServer((a) => {
      this.connections++;
      const b = netConnect(this.to.port, this.to.host);
      a.setNoDelay(true);
      b.setNoDelay(true);
      const pair: [Socket, Socket] = [a, b];
      this.pairs.add(pair);
      a.pipe(b).pipe(a);
      const drop = (): void => {
        a.destroy();
        b.destroy();
        this.pairs.delete(pair);
      };
      a.on('error', drop).on('close', drop);
      b.on('error', drop).on('close', drop);
    });
    this.server.listen(0, this.listenHost);
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get live(): number {
    return this.pairs.size;
  }

  kill(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  freeze(): void {
    for (const [a, b] of this.pairs) {
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
    }
  }

  async close(): Promise<void> {
    this.kill();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

export interface BastionUser {
  name: string;
  password?: string;
  /** Public keys (OpenSSH one-line format) accepted for this user. */
  keys?: string[];
}

/**
 * An SSH bastion in this process (ssh2's Server): public key and password
 * authentication, and direct-tcpip forwarding (what `ssh -L` and pgland use).
 */
export class InProcessBastion {
  sshConnections = 0;
  channels = 0;
  openChannels = 0;
  forwardAllowed = true;
  private readonly server: InstanceType<typeof Server>;
  readonly hostKeys: KeyPair[];
  port = 0;

  constructor(
    private readonly users: BastionUser[],
    hostKeyTypes: ('ed25519' | 'rsa' | 'ecdsa')[] = ['ed25519'],
  ) {
    this.hostKeys = hostKeyTypes.map((t) => keyPair(t));
    this.server = new Server({ hostKeys: this.hostKeys.map((k) => k.private) }, (client) => {
      this.sshConnections++;
      // ssh2 has Connection#setNoDelay; its types (@types/ssh2) do not declare it.
      (client as typeof client & { setNoDelay(noDelay: boolean): unknown }).setNoDelay(true);
      let user: BastionUser | undefined;
      client.on('authentication', (ctx) => {
        user = this.users.find((u) => u.name === ctx.username);
        if (user && ctx.method === 'password' && user.password !== undefined && ctx.password === user.password) return ctx.accept();
        if (user && ctx.method === 'publickey') {
          for (const line of user.keys ?? []) {
            const allowed = utils.parseKey(line) as ParsedKey;
            if (!allowed.getPublicSSH().equals(ctx.key.data)) continue;
            if (!ctx.signature) return ctx.accept(); // the client asks whether the key would do
            if (allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
          }
        }
        ctx.reject(['publickey', 'password']);
      });
      client.on('tcpip', (accept, reject, info) => {
        if (!this.forwardAllowed) return reject();
        const sock = netConnect(info.destPort, info.destIP);
        sock.setNoDelay(true);
        sock.once('error', () => reject());
        sock.once('connect', () => {
          const ch = accept();
          this.channels++;
          this.openChannels++;
          ch.once('close', () => {
            this.openChannels--;
            sock.destroy();
          });
          sock.once('close', () => ch.close());
          ch.on('error', () => sock.destroy());
          sock.on('error', () => ch.close());
          ch.pipe(sock).pipe(ch);
        });
      });
      client.on('error', () => undefined);
    });
  }

  async start(host = '127.0.0.1'): Promise<this> {
    this.server.listen(0, host);
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Whether OpenSSH's sshd can be started here: installed, and we are root (it must switch users). */
export function sshdProbe(): { ok: true; path: string } | { ok: false; why: string } {
  const path = ['/usr/sbin/sshd', '/usr/local/sbin/sshd', '/usr/bin/sshd'].find((p) => existsSync(p));
  if (!path) return { ok: false, why: 'OpenSSH sshd is not installed (apt-get install openssh-server)' };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { ok: false, why: 'sshd needs root to run (the tests are not running as root)' };
  if (spawnSync('ssh-keygen', ['-?']).error) return { ok: false, why: 'ssh-keygen is not installed' };
  return { ok: true, path };
}

/**
 * OpenSSH's sshd on a free port with a temporary host key and config, letting
 * root in with the given public keys only. The host key's fingerprint comes
 * from ssh-keygen -lf, exactly as a bastion's admin would read it.
 */
export class Sshd {
  port = 0;
  fingerprint = '';
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'pgland-sshd-'));
  log = '';

  constructor(
    private readonly sshdPath: string,
    private readonly authorizedKeys: string[],
  ) {}

  async start(): Promise<this> {
    const hostKey = join(this.dir, 'ssh_host_ed25519_key');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey], { stdio: 'ignore' });
    const fp = spawnSync('ssh-keygen', ['-lf', hostKey + '.pub'], { encoding: 'utf8' }).stdout;
    this.fingerprint = /SHA256:[A-Za-z0-9+/]+/.exec(fp)![0];
    writeFileSync(join(this.dir, 'authorized_keys'), this.authorizedKeys.join('\n') + '\n');
    chmodSync(join(this.dir, 'authorized_keys'), 0o600);
    // sshd's privilege separation directory; a system without a running sshd may lack it.
    if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755, recursive: true });
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    this.port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const config = [
      `Port ${this.port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(this.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'AllowTcpForwarding yes',
      'AllowUsers root',
      'LogLevel VERBOSE',
      '',
    ].join('\n');
    writeFileSync(join(this.dir, 'sshd_config'), config);
    this.child = spawn(this.sshdPath, ['-D', '-e', '-f', join(this.dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`sshd exited: ${this.log}`);
      if (/Server listening/.test(this.log)) return this;
      if (Date.now() > deadline) throw new Error(`sshd did not start: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The listening sshd's pid (its per-connection processes are its children): for the benchmark's CPU figures. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      const exited = once(this.child, 'exit');
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
