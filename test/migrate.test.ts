import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestination, PglandError, type Destination } from '../src/index.js';
import { quoteIdent } from '../src/sql/ident.js';
import { silentLogger } from '../src/log.js';
import { CONTROL_SCHEMA, openControlDb } from '../src/service/control/control-db.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { contact, streamOf } from './support/records.js';

let db: TestDatabase;
// Roles are cluster-wide: names unique to this run, dropped at the end.
const suffix = randomBytes(4).toString('hex');
const roles: string[] = [];

beforeAll(async () => {
  db = await freshDatabase('migrate');
});
afterAll(async () => {
  for (const role of roles) {
    // Objects and grants the role holds in this database go first, else DROP ROLE refuses.
    await db.pool.query(`DROP OWNED BY ${quoteIdent(role)}`).catch(() => undefined);
    await db.pool.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`).catch(() => undefined);
  }
  await db?.drop();
});

async function createRole(label: string): Promise<{ user: string; password: string }> {
  const user = `pgland_${label}_${suffix}`;
  const password = randomBytes(12).toString('hex');
  roles.push(user);
  await db.pool.query(`CREATE ROLE ${quoteIdent(user)} LOGIN PASSWORD '${password}'`);
  return { user, password };
}

async function migrationsOf(schema: string): Promise<{ id: number; name: string }[]> {
  const { rows } = await db.pool.query<{ id: number; name: string }>(`SELECT id, name FROM ${quoteIdent(schema)}._pgland_migrations ORDER BY id`);
  return rows;
}

describe('schema creation and migrations (issue 2)', () => {
  it('lets four openDestination() calls race on the same fresh schema; each migration is recorded once', async () => {
    const schema = `race_${suffix}`;
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => openDestination(db.config({ schema }), { poolSize: 1 })));
    const opened = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    try {
      expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      expect(opened).toHaveLength(4);
      const applied = await migrationsOf(schema);
      const files = applied.map((m) => m.name);
      expect(files.length).toBeGreaterThan(0);
      expect(files[0]).toBe('0001_metadata.sql');
      expect(new Set(applied.map((m) => m.id)).size).toBe(applied.length);
      expect(applied.map((m) => m.id)).toEqual([...applied.map((m) => m.id)].sort((a, b) => a - b));
      // Every one of them can use what was created.
      for (const d of opened) expect(await d.runs()).toEqual([]);
    } finally {
      await Promise.all(opened.map((d) => d.close()));
    }
  });

  it('applies nothing again when a destination is opened on a migrated schema', async () => {
    const schema = `again_${suffix}`;
    const first = await openDestination(db.config({ schema }));
    await first.close();
    const before = await db.pool.query(`SELECT id, applied_at FROM ${quoteIdent(schema)}._pgland_migrations ORDER BY id`);
    const second = await openDestination(db.config({ schema }));
    await second.close();
    const after = await db.pool.query(`SELECT id, applied_at FROM ${quoteIdent(schema)}._pgland_migrations ORDER BY id`);
    expect(after.rows).toEqual(before.rows);
  });

  it('opens an up-to-date schema with two statements and no transaction (issue 20: each is a round trip across a link)', async () => {
    const schema = `uptodate_${suffix}`;
    await (await openDestination(db.config({ schema }))).close();
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const query = proto.query;
    const sent: string[] = [];
    proto.query = function (this: unknown, ...args: unknown[]) {
      const q = args[0] as string | { text?: string };
      sent.push(typeof q === 'string' ? q : (q.text ?? ''));
      return query.apply(this, args);
    };
    try {
      await (await openDestination(db.config({ schema }))).close();
    } finally {
      proto.query = query;
    }
    // (The pooler check's BEGIN is not the migrations': theirs carry the transaction settings, and take the schema's lock.)
    expect(sent.filter((t) => /^\s*BEGIN; SET LOCAL|pgland\.schema\./i.test(t))).toEqual([]);
    expect(sent.filter((t) => /_pgland_migrations|pg_namespace/i.test(t))).toHaveLength(2);
  });

  it('a schema missing one migration gets exactly that one', async () => {
    const schema = `missing_${suffix}`;
    await (await openDestination(db.config({ schema }))).close();
    const all = await migrationsOf(schema);
    const last = all.at(-1)!;
    // As if the schema had been migrated by the pgland before the last migration (its objects are created IF NOT EXISTS or replaced).
    await db.pool.query(`DELETE FROM ${quoteIdent(schema)}._pgland_migrations WHERE id = $1`, [last.id]);
    await (await openDestination(db.config({ schema }))).close();
    expect((await migrationsOf(schema)).map((m) => m.id)).toEqual(all.map((m) => m.id));
  });

  it('opens a pre-created schema for a role with ALL on it but no CREATE on the database', async () => {
    const { user, password } = await createRole('schema_only');
    const schema = `granted_${suffix}`;
    await db.pool.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    await db.pool.query(`GRANT ALL ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(user)}`);
    // The premise: the role may not create a schema itself.
    const can = await db.pool.query<{ ok: boolean }>(`SELECT has_database_privilege($1, current_database(), 'CREATE') AS ok`, [user]);
    expect(can.rows[0]!.ok).toBe(false);

    let dest: Destination | undefined;
    try {
      dest = await openDestination(db.config({ schema, user, password }));
      expect((await migrationsOf(schema)).length).toBeGreaterThan(0);
      const r = await dest.load({ kind: 'common', object: 'crm_contacts', provider: 'salesforce', customerId: 'acme', input: streamOf([contact(1)]) });
      expect(r.error?.message).toBeUndefined();
      expect(r.status).toBe('succeeded');
      const who = await db.pool.query<{ owner: string }>(`SELECT tableowner AS owner FROM pg_tables WHERE schemaname = $1 AND tablename = 'crm_contacts'`, [
        schema,
      ]);
      expect(who.rows[0]?.owner).toBe(user);
    } finally {
      await dest?.close();
    }
  });

  it('refuses a role with neither, with code schema_create_denied and a hint holding the GRANT', async () => {
    const { user, password } = await createRole('no_rights');
    const schema = `denied_${suffix}`;
    const err = await openDestination(db.config({ schema, user, password })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PglandError);
    const e = err as PglandError;
    expect(e.code).toBe('schema_create_denied');
    expect(e.message).toContain(user);
    expect(e.message).toContain(schema);
    const database = new URL(db.url).pathname.slice(1);
    expect(e.hint).toContain(`GRANT CREATE ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(user)}`);
    expect(e.hint).toContain(`GRANT ALL ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(user)}`);
    expect((e.cause as { code?: string }).code).toBe('42501');
    // Nothing was left behind, and the pool was closed (no connection of the role remains).
    const ns = await db.pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]);
    expect(ns.rowCount).toBe(0);
    const left = await db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE usename = $1`, [user]);
    expect(left.rowCount).toBe(0);
  });

  it('follows the hint: after the GRANT the same role opens the destination', async () => {
    const { user, password } = await createRole('after_grant');
    const schema = `hinted_${suffix}`;
    const database = new URL(db.url).pathname.slice(1);
    await expect(openDestination(db.config({ schema, user, password }))).rejects.toMatchObject({ code: 'schema_create_denied' });
    await db.pool.query(`GRANT CREATE ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(user)}`);
    const dest = await openDestination(db.config({ schema, user, password }));
    await dest.close();
    const owner = await db.pool.query<{ owner: string }>(`SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = $1`, [schema]);
    expect(owner.rows[0]?.owner).toBe(user);
  });
});

describe('a schema newer than the code (issue 16)', () => {
  const future = { id: 9999, name: '9999_from_a_newer_pgland.sql' };

  it('refuses a destination schema that records a migration this pgland does not have', async () => {
    const schema = `newer_${suffix}`;
    const first = await openDestination(db.config({ schema }));
    await first.close();
    await db.pool.query(`INSERT INTO ${quoteIdent(schema)}._pgland_migrations (id, name) VALUES ($1, $2)`, [future.id, future.name]);
    const before = await migrationsOf(schema);
    const err = await openDestination(db.config({ schema })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PglandError);
    expect(err).toMatchObject({ code: 'schema_newer_than_pgland', hint: expect.stringMatching(/upgrade pgland/) });
    expect((err as Error).message).toContain(future.name);
    expect(await migrationsOf(schema)).toEqual(before);
  });

  it('refuses a control database migrated by a newer pgland', async () => {
    const open = () => openControlDb({ url: db.url, dataDir: 'unused', log: silentLogger() });
    await (await open()).close();
    await db.pool.query(`INSERT INTO ${quoteIdent(CONTROL_SCHEMA)}._pgland_migrations (id, name) VALUES ($1, $2)`, [future.id, future.name]);
    await expect(open()).rejects.toMatchObject({ code: 'schema_newer_than_pgland', message: expect.stringContaining(future.name) });
  });
});
