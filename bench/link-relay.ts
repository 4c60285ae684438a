import { createServer, connect, type Socket } from 'node:net';
import { childParams } from './child.js';

/**
 * A network link with a round-trip time, as a TCP relay in its own process:
 * every byte is held for half the RTT in each direction before it is passed
 * on. `tc netem` would do this in the kernel, but the kernels this benchmark
 * runs on (Firecracker VMs) are built without sch_netem (and without fq, for
 * a BPF departure-time delay), so the link is emulated in user space.
 *
 * At most `windowBytes` are in flight in each direction (the relay stops
 * reading when more are held): a TCP sender can have no more than its window
 * unacknowledged, so a bulk COPY over a long link is bounded by window / RTT,
 * as on a real link. TCP's slow start is not modelled: a real link is slower
 * than this one for the first few round trips of each connection.
 *
 * Params (JSON argument): { target: { host, port }, rttMs, windowBytes }.
 * Prints {"port": n} once listening on 127.0.0.1; exits when stdin closes
 * (its parent died or ended it), so it never outlives the benchmark.
 */
export interface LinkParams {
  target: { host: string; port: number };
  rttMs: number;
  windowBytes: number;
}

interface Held {
  due: number;
  chunk: Buffer;
}

/** One direction of a connection: from `src` to `dst`, each chunk delayed by `delayMs`. */
function delayed(src: Socket, dst: Socket, delayMs: number, windowBytes: number): void {
  const queue: Held[] = [];
  let held = 0;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  // The receiver's own backpressure counts too: bytes the relay has passed on
  // but the receiver has not read are still unacknowledged for the sender.
  const resume = (): void => {
    if (src.isPaused() && held + dst.writableLength < windowBytes) src.resume();
  };
  dst.on('drain', resume);
  const pump = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.due <= now) {
      const { chunk } = queue.shift()!;
      held -= chunk.length;
      dst.write(chunk);
    }
    resume();
    if (queue.length > 0) timer = setTimeout(pump, Math.max(0, queue[0]!.due - now));
    else if (ended) dst.end();
  };
  src.on('data', (chunk: Buffer) => {
    queue.push({ due: performance.now() + delayMs, chunk });
    held += chunk.length;
    if (held + dst.writableLength >= windowBytes) src.pause();
    timer ??= setTimeout(pump, delayMs);
  });
  src.on('end', () => {
    ended = true;
    if (queue.length === 0) dst.end();
  });
}

function main(): void {
  const p = childParams<LinkParams>();
  const oneWay = p.rttMs / 2;
  const server = createServer((a) => {
    const b = connect(p.target.port, p.target.host);
    a.setNoDelay(true);
    b.setNoDelay(true);
    const drop = (): void => {
      a.destroy();
      b.destroy();
    };
    a.on('error', drop).on('close', drop);
    b.on('error', drop).on('close', drop);
    delayed(a, b, oneWay, p.windowBytes);
    delayed(b, a, oneWay, p.windowBytes);
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + '\n');
  });
  process.stdin.resume();
  process.stdin.on('close', () => process.exit(0));
  process.stdin.on('end', () => process.exit(0));
}

main();
