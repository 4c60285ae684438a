import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * A TCP relay on loopback in front of the test's PostgreSQL that can turn
 * away the new connections of one application_name (read from the startup
 * message) while every other connection passes: a test keeps one kind of
 * connection down for as long as it needs, and counts its attempts, where
 * a backend that was terminated would otherwise be back before the test
 * could look.
 */
export class PgGate {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** The gate's connections to PostgreSQL, whose local ports are their backends' client_port. */
  private readonly upstreams = new Set<Socket>();
  private refusing: string | undefined;
  /** Connections turned away so far. */
  refused = 0;
  port = 0;

  constructor(private readonly upstream: { host: string; port: number }) {
    this.server = createServer((sock) => this.serve(sock));
  }

  /** A gate in front of the server of `url`, listening. */
  static async before(url: string): Promise<PgGate> {
    const u = new URL(url);
    const gate = new PgGate({ host: u.hostname, port: Number(u.port || 5432) });
    gate.server.listen(0, '127.0.0.1');
    await once(gate.server, 'listening');
    gate.port = (gate.server.address() as AddressInfo).port;
    return gate;
  }

  /** `url` through the gate, with this password (which a trusting server never asks for). */
  url(url: string, password?: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    if (password !== undefined) u.password = password;
    return u.toString();
  }

  /** The client_port, in pg_stat_activity, of each backend reached through the gate. */
  upstreamPorts(): number[] {
    return [...this.upstreams].map((s) => s.localPort).filter((p): p is number => p !== undefined);
  }

  /** Turns away new connections of `app` until open(). */
  close(app: string): void {
    this.refusing = app;
  }

  open(): void {
    this.refusing = undefined;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
  }

  private serve(sock: Socket): void {
    this.track(sock);
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      for (;;) {
        if (got.length < 8) return;
        const len = got.readInt32BE(0);
        if (got.length < len) return;
        const code = got.readInt32BE(4);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          sock.write('N'); // no TLS through the gate
          got = got.subarray(8);
          continue;
        }
        sock.off('data', onData);
        if (this.refusing !== undefined && startupParam(got.subarray(8, len), 'application_name') === this.refusing) {
          this.refused++;
          sock.destroy();
          return;
        }
        const up = connect(this.upstream.port, this.upstream.host);
        this.track(up);
        this.upstreams.add(up);
        up.on('close', () => this.upstreams.delete(up));
        up.on('close', () => sock.destroy());
        sock.on('close', () => up.destroy());
        up.write(got);
        sock.pipe(up);
        up.pipe(sock);
        return;
      }
    };
    sock.on('data', onData);
  }
}

/** A parameter of a startup message's body: key\0value\0 pairs, ending in \0. */
function startupParam(body: Buffer, name: string): string | undefined {
  const parts = body.toString('utf8').split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i] === name) return parts[i + 1];
  return undefined;
}
