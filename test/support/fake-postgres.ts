import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A PostgreSQL impostor on loopback: it declines TLS ('N' to SSLRequest),
 * answers the startup message with AuthenticationCleartextPassword, and
 * keeps every byte any client sends it, so that a test can assert a
 * password never reached it. A PasswordMessage is answered with an
 * authentication error, as a server would answer a wrong password.
 */
export class FakePostgres {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Every byte received, per connection. */
  readonly received: Buffer[] = [];
  /** The passwords clients sent in PasswordMessages. */
  readonly passwords: string[] = [];
  port = 0;

  constructor() {
    this.server = createServer((sock) => this.serve(sock));
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Whether `text` arrived in any connection's bytes. */
  saw(text: string): boolean {
    return this.received.some((b) => b.includes(Buffer.from(text)));
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    const index = this.received.push(Buffer.alloc(0)) - 1;
    let pending = Buffer.alloc(0);
    let started = false;
    sock.on('error', () => undefined);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('data', (chunk: Buffer) => {
      this.received[index] = Buffer.concat([this.received[index]!, chunk]);
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (!started) {
          // Untyped messages: SSLRequest / GSSENCRequest / StartupMessage (int32 length first).
          if (pending.length < 8) return;
          const len = pending.readInt32BE(0);
          if (pending.length < len) return;
          const code = pending.readInt32BE(4);
          pending = pending.subarray(len);
          if (code === 80877103 || code === 80877104) {
            sock.write('N');
            continue;
          }
          started = true;
          sock.write(authRequest(3)); // AuthenticationCleartextPassword
          continue;
        }
        if (pending.length < 5) return;
        const len = pending.readInt32BE(1);
        if (pending.length < 1 + len) return;
        const type = String.fromCharCode(pending[0]!);
        const body = pending.subarray(5, 1 + len);
        pending = pending.subarray(1 + len);
        if (type === 'p') {
          this.passwords.push(body.subarray(0, body.indexOf(0)).toString('utf8'));
          sock.end(errorResponse('28P01', 'password authentication failed'));
          return;
        }
        if (type === 'X') {
          sock.end();
          return;
        }
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function authRequest(kind: number): Buffer {
  const b = Buffer.alloc(9);
  b.write('R', 0);
  b.writeInt32BE(8, 1);
  b.writeInt32BE(kind, 5);
  return b;
}

function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.concat([Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0`), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([head, fields]);
}
