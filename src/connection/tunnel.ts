import { once } from 'node:events';
import { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import type { SshTunnelConfig } from '../config/resolve.js';
import { PglandError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { backoff, isRetryable, sleep } from './retry.js';
import { fingerprintOf, HOST_KEY_FAMILIES, keyType, sameFingerprint } from './host-key.js';
import { loadPrivateKey } from './ssh-key.js';

const { Client } = ssh2;

export interface TunnelOptions {
  /** Where the bastion forwards to: the database's host and port, as the bastion resolves them. */
  target: { host: string; port: number };
  log?: Logger;
  /** Milliseconds for the bastion's TCP connect and SSH handshake. */
  connectTimeoutMs?: number;
  /** Retries of a lost or unreachable bastion per (re)connection; ssh_tunnel.reconnect_attempts by default. */
  reconnectAttempts?: number;
  /** pgland check: with no pin, still look at the bastion's host key to report it (and then refuse it). */
  reportUnpinned?: boolean;
}

/**
 * One SSH connection to a bastion, shared by every database connection of a
 * destination: each pg connection is one forwarded channel (direct-tcpip)
 * over it. When the bastion connection drops, every open channel closes (their
 * pg connections fail with a retryable error) and the next connection
 * re-establishes the tunnel, with bounded retries and jittered backoff.
 */
export class Tunnel {
  /** The bastion's host key fingerprint, once seen. */
  fingerprint: string | undefined;
  /** How many times the tunnel was re-established after a loss. */
  reconnects = 0;
  private conn: Promise<InstanceType<typeof Client>> | undefined;
  private current: InstanceType<typeof Client> | undefined;
  private closed = false;
  private everUp = false;
  private readonly key: { key: string; passphrase?: string } | undefined;
  private readonly log: Logger;
  readonly bastion: string;

  constructor(
    private readonly cfg: SshTunnelConfig,
    private readonly opts: TunnelOptions,
  ) {
    this.log = opts.log ?? silentLogger();
    this.bastion = `${cfg.user}@${cfg.host}:${cfg.port}`;
    this.key = cfg.private_key !== undefined ? loadPrivateKey(cfg.private_key, cfg.passphrase) : undefined;
  }

  /** Connects to the bastion now (tunnel first: a bad bastion fails before anything else). */
  async open(): Promise<this> {
    await this.client();
    return this;
  }

  private client(): Promise<InstanceType<typeof Client>> {
    if (this.closed) return Promise.reject(new PglandError('tunnel_shut', 'the SSH tunnel was closed by pgland'));
    if (!this.conn) {
      this.conn = this.connectWithRetries();
      this.conn.catch(() => (this.conn = undefined));
    }
    return this.conn;
  }

  private async connectWithRetries(): Promise<InstanceType<typeof Client>> {
    const attempts = 1 + (this.opts.reconnectAttempts ?? this.cfg.reconnect_attempts);
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await this.connectOnce();
        if (this.everUp) this.reconnects++;
        this.everUp = true;
        return c;
      } catch (err) {
        if (this.closed || attempt >= attempts || !isRetryable(err)) throw err;
        const wait = backoff(attempt);
        this.log.warn({ bastion: this.bastion, attempt, waitMs: wait, err: { message: (err as Error).message } }, 'bastion unreachable; retrying');
        await sleep(wait);
      }
    }
  }

  /**
   * One connection to the bastion. The pinned fingerprint may be of any of
   * the bastion's host keys (ssh-keygen -lf prints whichever file it is
   * given), but a handshake shows one key only: when the first key offered
   * is not the pinned one, the other key families are asked for in turn. A
   * key is accepted only when its fingerprint equals the pin.
   */
  private async connectOnce(): Promise<InstanceType<typeof Client>> {
    const { cfg } = this;
    if (!cfg.host_key_fingerprint && !this.opts.reportUnpinned) {
      throw new PglandError(
        'host_key_unpinned',
        `ssh_tunnel.host_key_fingerprint is not set: pgland does not trust the bastion ${cfg.host}'s host key blindly`,
        {
          hint: 'run pgland check --config <file>: it prints the bastion\'s fingerprint; compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the bastion, then set "host_key_fingerprint": "SHA256:…" under "ssh_tunnel"',
        },
      );
    }
    const seen: { type: string; fingerprint: string }[] = [];
    try {
      return await this.handshake(undefined, seen);
    } catch (err) {
      if (!(err instanceof PglandError && err.code === 'host_key_mismatch')) throw err;
      if (!cfg.host_key_fingerprint) throw this.unpinned(seen[0]!);
    }
    for (const family of HOST_KEY_FAMILIES) {
      if (seen.some((k) => family.types.includes(k.type))) continue;
      try {
        return await this.handshake(family.algorithms, seen);
      } catch (err) {
        // A family the bastion has no key of fails the handshake: try the next.
        if (err instanceof PglandError && err.code !== 'host_key_mismatch' && err.code !== 'bastion_unreachable') throw err;
      }
    }
    const offered = seen.map((k) => `${k.fingerprint} (${k.type})`).join(', ');
    throw new PglandError(
      'host_key_mismatch',
      `the bastion ${cfg.host}:${cfg.port} presented host key ${offered || '(none)'}, not the pinned ${cfg.host_key_fingerprint}`,
      {
        hint: "if the bastion's key was replaced on purpose, check the new fingerprint with `ssh-keygen -lf` on the bastion and update ssh_tunnel.host_key_fingerprint; otherwise something may be intercepting the connection: do not connect",
      },
    );
  }

  private unpinned(key: { type: string; fingerprint: string }): PglandError {
    return new PglandError(
      'host_key_unpinned',
      `the bastion ${this.cfg.host}:${this.cfg.port} presents host key ${key.fingerprint} (${key.type}), which is not pinned`,
      {
        hint:
          `check it on the bastion itself (ssh-keygen -lf /etc/ssh/ssh_host_${key.type.replace(/^ssh-|-sha2-nistp\d+$/g, '')}_key.pub), ` +
          `then add "host_key_fingerprint": "${key.fingerprint}" to "ssh_tunnel" in the config (or set PGLAND_SSH_HOST_KEY_FINGERPRINT)`,
      },
    );
  }

  private handshake(serverHostKey: string[] | undefined, seen: { type: string; fingerprint: string }[]): Promise<InstanceType<typeof Client>> {
    const { cfg } = this;
    return new Promise((resolve, reject) => {
      const c = new Client();
      let settled = false;
      const config: ConnectConfig = {
        host: cfg.host,
        port: cfg.port,
        username: cfg.user,
        readyTimeout: this.opts.connectTimeoutMs ?? 15_000,
        keepaliveInterval: cfg.keepalive_interval_ms,
        keepaliveCountMax: cfg.keepalive_count_max,
        ...(serverHostKey ? { algorithms: { serverHostKey: serverHostKey as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {}),
        hostVerifier: (key: Buffer) => {
          const fingerprint = fingerprintOf(key);
          seen.push({ type: keyType(key), fingerprint });
          this.fingerprint = fingerprint;
          return cfg.host_key_fingerprint !== undefined && sameFingerprint(fingerprint, cfg.host_key_fingerprint);
        },
        ...(this.key ? { privateKey: this.key.key, ...(this.key.passphrase !== undefined ? { passphrase: this.key.passphrase } : {}) } : {}),
        ...(cfg.password !== undefined ? { password: cfg.password, tryKeyboard: true } : {}),
      };
      if (cfg.password !== undefined) {
        // Bastions with PAM often ask for the password through keyboard-interactive.
        c.on('keyboard-interactive', (_name, _instr, _lang, prompts, finish) => finish(prompts.map(() => cfg.password!)));
      }
      c.on('ready', () => {
        settled = true;
        // The database protocol is request and response: Nagle's algorithm would
        // hold each small message back for the peer's delayed ACK.
        c.setNoDelay(true);
        this.current = c;
        this.log.info({ bastion: this.bastion, fingerprint: this.fingerprint }, 'SSH tunnel up');
        resolve(c);
      });
      c.on('error', (err: Error & { level?: string }) => {
        if (!settled) {
          settled = true;
          reject(this.explain(err));
          return;
        }
        // After the handshake: a lost bastion (reset, keepalive timeout). 'close' follows.
        this.log.warn({ bastion: this.bastion, err: { message: err.message } }, 'SSH tunnel error');
      });
      c.on('close', () => {
        if (!settled) {
          settled = true;
          reject(
            new PglandError('tunnel_closed', `the bastion ${cfg.host}:${cfg.port} closed the connection during the SSH handshake`, {
              hint: "check that the port is an SSH server and that it accepts pgland's address (AllowUsers, MaxStartups, fail2ban)",
            }),
          );
        }
        if (this.current === c) {
          this.current = undefined;
          this.conn = undefined;
          if (!this.closed) this.log.warn({ bastion: this.bastion }, 'SSH tunnel lost; the next connection re-establishes it');
        }
      });
      c.connect(config);
    });
  }

  private explain(err: Error & { level?: string; code?: string }): PglandError {
    const { cfg } = this;
    const where = `${cfg.host}:${cfg.port}`;
    if (/Host denied/i.test(err.message)) {
      // Replaced by the full story in connectOnce, once every key family has been asked for.
      return new PglandError('host_key_mismatch', `the bastion ${where} presented a host key that is not the pinned one`);
    }
    if (err.level === 'client-authentication') {
      const method = this.key && cfg.password !== undefined ? 'the key and the password were' : this.key ? 'the key was' : 'the password was';
      return new PglandError('bastion_auth_failed', `the bastion ${where} refused user ${cfg.user}: ${method} not accepted`, {
        hint: this.key
          ? `add the key's public half (ssh-keygen -y -f <keyfile>) to ~${cfg.user}/.ssh/authorized_keys on the bastion, and check ssh_tunnel.user`
          : 'check ssh_tunnel.user and ssh_tunnel.password, and that the bastion allows password logins (PasswordAuthentication yes)',
        cause: err,
      });
    }
    if (err.level === 'client-timeout') {
      return new PglandError('bastion_timeout', `no SSH handshake from the bastion ${where} within ${this.opts.connectTimeoutMs ?? 15_000} ms`, {
        hint: "check ssh_tunnel.host and port, and that the bastion's firewall lets pgland's address in on that port",
        cause: Object.assign(new Error(err.message), { code: 'ETIMEDOUT' }),
      });
    }
    if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') {
      return new PglandError('dns_failure', `the bastion's host name ${cfg.host} does not resolve (${err.code})`, {
        hint: 'check ssh_tunnel.host',
        cause: err,
      });
    }
    if (err.code === 'ECONNREFUSED') {
      return new PglandError('bastion_unreachable', `connection refused by the bastion ${where}`, {
        hint: 'check ssh_tunnel.host and ssh_tunnel.port (22 by default) and that sshd runs there',
        cause: err,
      });
    }
    return new PglandError('bastion_unreachable', `could not reach the bastion ${where}: ${err.message}`, {
      hint: 'check ssh_tunnel.host and port, and the network between pgland and the bastion',
      cause: err,
    });
  }

  /**
   * A channel to the database through the bastion. A connection found dead
   * on the way (it dropped a moment ago, before its 'close' event) is
   * replaced once, with the same bounded retries as any reconnection.
   */
  async forward(): Promise<ClientChannel> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.client();
      try {
        return await this.forwardOn(c);
      } catch (err) {
        if (!(err instanceof PglandError && err.code === 'tunnel_closed') || attempt >= 2 || this.closed) throw err;
        if (this.current === c) {
          this.current = undefined;
          this.conn = undefined;
        }
      }
    }
  }

  private forwardOn(c: InstanceType<typeof Client>): Promise<ClientChannel> {
    const { host, port } = this.opts.target;
    return new Promise((resolve, reject) => {
      try {
        c.forwardOut('127.0.0.1', 0, host, port, (err, channel) => {
          if (!err) return resolve(channel);
          const lost = this.current !== c || !(err as { reason?: unknown }).reason;
          reject(
            lost
              ? new PglandError('tunnel_closed', 'the SSH tunnel closed while opening a connection through it', { cause: err })
              : new PglandError('tunnel_forward_failed', `the bastion could not open a connection to ${host}:${port}: ${err.message}`, {
                  hint: /prohibited/i.test(err.message)
                    ? 'the bastion forbids port forwarding: set AllowTcpForwarding yes (for this user) in its sshd_config'
                    : `check host and port as the bastion sees them (it resolves "${host}"), and that the database accepts the bastion's address`,
                  cause: err,
                }),
          );
        });
      } catch (err) {
        // ssh2 throws "Not connected" synchronously when the connection just went away.
        reject(new PglandError('tunnel_closed', 'the SSH tunnel closed while opening a connection through it', { cause: err }));
      }
    });
  }

  /** A socket-like stream for node-postgres (its `stream` option): connect() opens a channel. */
  socket(): Duplex {
    return new TunnelSocket(this);
  }

  /** Closes the bastion connection; open channels close with it. */
  async close(): Promise<void> {
    this.closed = true;
    const c = this.current ?? (await this.conn?.catch(() => undefined));
    this.current = undefined;
    this.conn = undefined;
    if (!c) return;
    const closed = once(c, 'close').catch(() => undefined);
    c.end();
    const timer = setTimeout(() => c.destroy(), 2000);
    await closed;
    clearTimeout(timer);
  }
}

/**
 * What node-postgres needs of a socket: connect(port, host) (ignored: the
 * bastion decides), a 'connect' event, and no-op socket options. Data flows
 * to and from one SSH channel.
 */
class TunnelSocket extends Duplex {
  private channel: ClientChannel | undefined;
  private waiting: (() => void) | undefined;

  constructor(private readonly tunnel: Tunnel) {
    super();
  }

  connect(): this {
    this.tunnel.forward().then(
      (ch) => {
        if (this.destroyed) return void ch.close();
        this.channel = ch;
        ch.on('data', (d: Buffer) => {
          if (!this.push(d)) ch.pause();
        });
        ch.on('end', () => this.push(null));
        ch.on('close', () => this.destroy());
        ch.on('error', (e: Error) => this.destroy(e));
        this.waiting?.();
        this.emit('connect');
      },
      (err: unknown) => this.destroy(err as Error),
    );
    return this;
  }

  override _read(): void {
    this.channel?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const go = (): void => void this.channel!.write(chunk, cb);
    if (this.channel) go();
    else this.waiting = go;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.channel?.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.channel?.close();
    // 'close' a turn later: a TLS layer on top reports its own error (a
    // certificate it refused) before the connection counts as merely lost.
    setImmediate(() => cb(err));
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}

/** Opens the tunnel of a destination config (first thing opened, last closed). */
export async function openTunnel(cfg: SshTunnelConfig, opts: TunnelOptions): Promise<Tunnel> {
  return new Tunnel(cfg, opts).open();
}
