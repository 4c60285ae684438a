import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSource, runExec, runQuery, type SourceConnection } from '../src/index.js';
import { DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS } from '../src/query/actions.js';
import { pgbouncerBinary, startPgbouncer } from '../bench/pgbouncer.js';
import { runCli } from './support/cli.js';
import { freshDatabase, type TestDatabase } from './support/db.js';

// Issue 17: query actions (the flow-automation seed's Query Rows / Execute
// Query), their limits, and its list of errors, each with its fix.

let db: TestDatabase;
let conn: SourceConnection;
let dir: string;
let configFile: string;
const reader = `reader_${Math.random().toString(36).slice(2, 8)}`;
const full = `full_${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  db = await freshDatabase('query_actions');
  dir = mkdtempSync(join(tmpdir(), 'pgland-query-'));
  configFile = join(dir, 'db.json');
  writeFileSync(configFile, JSON.stringify(db.config()));
  await db.pool.query(`
    CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE, name text, status text, created_at timestamptz DEFAULT '2026-01-15 10:30:00.123456+00');
    INSERT INTO users (email, name, status) VALUES ('ada@example.com', 'Ada', 'active'), ('bob@example.com', 'O''Brien', 'inactive');
    CREATE TABLE secrets (id int);
    CREATE ROLE ${reader} LOGIN PASSWORD 'pw-reader';
    CREATE ROLE ${full} LOGIN PASSWORD 'pw-full' CONNECTION LIMIT 0;`);
  conn = await connectSource(db.config());
});
afterAll(async () => {
  await conn?.close();
  await db?.drop();
  const admin = await freshDatabase('query_actions_cleanup');
  await admin.pool.query(`DROP ROLE IF EXISTS ${reader}; DROP ROLE IF EXISTS ${full}`).catch(() => undefined);
  await admin.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const asRole = (user: string, password: string): Record<string, unknown> => {
  const u = new URL(db.url);
  u.username = user;
  u.password = password;
  return { url: u.toString(), sslmode: 'disable' };
};

describe('query actions (issue 17)', () => {
  it('pgland query prints {rows, rowCount, fields}; parameters with quotes and injection strings are data', async () => {
    const r = await runCli([
      'query',
      '--config',
      configFile,
      '--sql',
      'SELECT id, name, created_at FROM users WHERE status = $1 ORDER BY id',
      '--param',
      'active',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      rows: [{ id: 1, name: 'Ada', created_at: '2026-01-15T10:30:00.123456Z' }],
      rowCount: 1,
      fields: [
        { name: 'id', dataTypeID: 23, type: 'integer' },
        { name: 'name', dataTypeID: 25, type: 'text' },
        { name: 'created_at', dataTypeID: 1184, type: 'timestamp with time zone' },
      ],
    });
    for (const evil of ["' OR '1'='1", "x'; DROP TABLE users; --", 'O\'Brien"; \\', '$1']) {
      const q = await runQuery(conn, 'SELECT $1::text AS echoed, (SELECT count(*)::int FROM users WHERE name = $1) AS matches', [evil]);
      expect(q.rows).toEqual([{ echoed: evil, matches: 0 }]);
    }
    expect((await runQuery(conn, 'SELECT id FROM users WHERE name = $1', ["O'Brien"])).rows).toEqual([{ id: 2 }]);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM users')).rows[0].n).toBe(2);
  });

  it('pgland exec runs statements: rowCount, and insertedId from INSERT … RETURNING', async () => {
    const ins = await runCli([
      'exec',
      '--config',
      configFile,
      '--sql',
      'INSERT INTO users (email, name) VALUES ($1, $2) RETURNING id',
      '--param',
      "eve'@example.com",
      '--param',
      'Eve',
    ]);
    expect(ins.code, ins.stderr).toBe(0);
    expect(JSON.parse(ins.stdout)).toMatchObject({ rowCount: 1, command: 'INSERT', insertedId: 3 });
    const upd = await runExec(conn, 'UPDATE users SET status = $1 WHERE email = $2', ['inactive', "eve'@example.com"]);
    expect(upd).toEqual({ rowCount: 1, command: 'UPDATE' });
    const del = await runExec(conn, 'DELETE FROM users WHERE id = $1', [3]);
    expect(del.rowCount).toBe(1);
    expect(await runExec(conn, 'CREATE INDEX IF NOT EXISTS users_status ON users (status)')).toEqual({ rowCount: 0, command: 'CREATE' });
  });

  it('a read-only query refuses an UPDATE and says to use exec', async () => {
    await expect(runQuery(conn, "UPDATE users SET name = 'x'")).rejects.toMatchObject({ code: 'read_only_query', hint: expect.stringMatching(/pgland exec/) });
    const r = await runCli(['query', '--config', configFile, '--sql', "UPDATE users SET name = 'x' RETURNING id"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/read-only[\s\S]*fix: run statements that change data with pgland exec/);
    expect((await db.pool.query("SELECT count(*)::int AS n FROM users WHERE name = 'x'")).rows[0].n).toBe(0);
  });

  it('a statement past the timeout is cancelled with the timeout error and what to try (default 60 s)', async () => {
    expect(DEFAULT_TIMEOUT_MS).toBe(60_000);
    expect((await runQuery(conn, "SELECT current_setting('statement_timeout') AS t")).rows[0]).toEqual({ t: '1min' });
    await expect(runQuery(conn, 'SELECT pg_sleep(30)', [], { timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'query_timeout',
      message: expect.stringMatching(/longer than 2 s/),
      hint: expect.stringMatching(/index[\s\S]*LIMIT[\s\S]*pg_locks[\s\S]*off-peak[\s\S]*timeout/),
    });
    await expect(runExec(conn, 'SELECT pg_sleep(30)', [], { timeoutMs: 2000 })).rejects.toMatchObject({ code: 'query_timeout' });
  });

  it('a 50 MB result stops at the default 10 MB cap with an error that says to add a LIMIT', async () => {
    expect(DEFAULT_MAX_BYTES).toBe(10 * 1024 * 1024);
    const err = await runQuery(conn, "SELECT g, repeat('x', 10000) AS pad FROM generate_series(1, 5000) g").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'result_too_large', hint: expect.stringMatching(/add a LIMIT/) });
    const rows = Number(/after (\d+) rows/.exec((err as Error).message)?.[1]);
    expect(rows).toBeGreaterThan(1000);
    expect(rows).toBeLessThan(1100);
    // The connection pool is still usable after the cancel.
    expect((await runQuery(conn, 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    const cli = await runCli(['query', '--config', configFile, '--sql', "SELECT repeat('y', 1000) FROM generate_series(1, 1000)", '--max-bytes', '100000']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/the result passed[\s\S]*fix: add a LIMIT/);
  });

  it('a syntax error names the line and column, with a caret under it', async () => {
    const err = await runQuery(conn, 'SELECT id,\n  name\nFROM users WHERE status = = $1', ['active']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'syntax_error', context: { line: 3, column: 27 }, hint: expect.stringMatching(/psql/) });
    expect((err as Error).message).toContain('FROM users WHERE status = = $1\n                          ^');
  });

  it('permission denied for a table gives the GRANT to run', async () => {
    const c = await connectSource(asRole(reader, 'pw-reader'));
    try {
      await expect(runQuery(c, 'SELECT * FROM secrets')).rejects.toMatchObject({
        code: 'permission_denied',
        hint: expect.stringContaining(`GRANT SELECT ON TABLE "secrets" TO "${reader}";`),
      });
      await expect(runExec(c, 'DELETE FROM secrets')).rejects.toMatchObject({
        code: 'permission_denied',
        hint: expect.stringContaining(`GRANT SELECT, DELETE ON TABLE "secrets" TO "${reader}";`),
      });
    } finally {
      await c.close();
    }
  });

  it('too many connections says how to see and free them', async () => {
    const r = await runCli(['query', '--sql', 'SELECT 1'], { env: { PGLAND_DATABASE_URL: asRole(full, 'pw-full').url as string, PGLAND_SSLMODE: 'disable' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/too many connections[\s\S]*fix: see who holds them \(SELECT usename, state, count\(\*\) FROM pg_stat_activity/);
  });

  it('the parameter count must match the SQL', async () => {
    await expect(runQuery(conn, 'SELECT $1::int + $2::int AS s', ['1'])).rejects.toMatchObject({
      code: 'parameter_mismatch',
      hint: expect.stringMatching(/one --param for each/),
    });
  });

  it('exec runs in its own transaction, and a statement that refuses one runs alone', async () => {
    await expect(runExec(conn, 'SELECT pg_sleep(30)', [], { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'query_timeout' });
    expect(await runExec(conn, "INSERT INTO users (email) VALUES ('tx@example.com') RETURNING id")).toMatchObject({ rowCount: 1 });
    expect((await db.pool.query("SELECT count(*)::int AS n FROM users WHERE email = 'tx@example.com'")).rows[0]).toEqual({ n: 1 });
    expect(await runExec(conn, 'CREATE INDEX CONCURRENTLY users_name ON users (name)')).toMatchObject({ command: 'CREATE' });
    expect(await runExec(conn, 'VACUUM users')).toMatchObject({ command: 'VACUUM' });
    expect(await runExec(conn, 'DROP INDEX CONCURRENTLY users_name')).toMatchObject({ command: 'DROP' });
  });
});

const bouncerBinary = pgbouncerBinary();

describe.skipIf(!bouncerBinary)('query actions through PgBouncer in transaction mode (issues 17, 21)', () => {
  /** Runs `fn` with a source through a new PgBouncer of `poolSize` server connections. */
  async function throughBouncer(poolSize: number, fn: (pooled: SourceConnection) => Promise<void>): Promise<void> {
    const bouncer = await startPgbouncer(bouncerBinary!, db.url, { poolMode: 'transaction', poolSize });
    const pooled = await connectSource({ url: bouncer.through(db.url), sslmode: 'disable' });
    try {
      await fn(pooled);
    } finally {
      await pooled.close();
      await bouncer.stop();
    }
  }

  it('the timeout applies to the statement and is not left on the server connection', async () => {
    const before = (await db.pool.query("SELECT current_setting('statement_timeout') AS t")).rows[0];
    // One server connection: whatever an action leaves on it, the next client gets.
    await throughBouncer(1, async (pooled) => {
      /** What the next transaction on the one server connection runs with. */
      const nextTimeout = async (): Promise<unknown> => {
        const client = await pooled.pool.connect();
        try {
          return (await client.query("SELECT current_setting('statement_timeout') AS t")).rows[0];
        } finally {
          client.release(true);
        }
      };
      await expect(runExec(pooled, 'SELECT pg_sleep(30)', [], { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'query_timeout' });
      await expect(runQuery(pooled, 'SELECT pg_sleep(30)', [], { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'query_timeout' });
      expect(await runExec(pooled, 'UPDATE users SET name = name WHERE email = $1', ['ada@example.com'], { timeoutMs: 1234 })).toMatchObject({ rowCount: 1 });
      expect(await nextTimeout()).toEqual(before);
      expect(await runExec(pooled, 'VACUUM users', [], { timeoutMs: 1234 })).toMatchObject({ command: 'VACUUM' });
      expect(await nextTimeout()).toEqual(before);
    });
  }, 60_000);

  it('past the result cap, the statement cancelled is the one of the action', async () => {
    // Two server connections: one runs the query, the other sends the cancel.
    await throughBouncer(2, async (pooled) => {
      // Rows arrive slowly (10 ms each): cancelled after a few, not read for 30 s.
      const started = Date.now();
      await expect(
        runQuery(pooled, "SELECT repeat('x', 4000) AS pad, pg_sleep(0.01) FROM generate_series(1, 3000)", [], { maxBytes: 40_000 }),
      ).rejects.toMatchObject({
        code: 'result_too_large',
      });
      expect(Date.now() - started).toBeLessThan(10_000);
    });
  }, 60_000);
});
