import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/service/service.js';
import { spawnCli } from './support/cli.js';
import { freshDatabase, terminateBackends, type TestDatabase } from './support/db.js';
import { PgGate } from './support/pg-gate.js';
import { contact, ndjson } from './support/records.js';
import { call, logLines, startTestService, testLogger } from './support/service.js';
import { until } from './support/until.js';

// The connection on which a serve process LISTENs for commits carried
// between processes (src/service/runs/commit-relay.ts) comes back after it
// is lost. Its backend is terminated as a control database restart or a
// network cut would end it; a gate in front of PostgreSQL keeps it from
// coming back for as long as a test needs it down.

const RELAY = 'pgland-commit-relay';
/**
 * The password in the control URL given through the gate, which must appear
 * in no log: the server's own when it asks for one (the embedded server's is
 * random), else a made-up one a trusting server never asks for.
 */
let SECRET: string;

let db: TestDatabase;
let gate: PgGate;
/** Holds runs; its control connections reach PostgreSQL directly, so its relay comes back at once. */
let a: Service;
/** Reaches the control database through the gate: its relay stays down while the gate is closed. */
let c: Service;
/** Holds runs, its control connections through the gate. */
let h: Service;
let destId: string;

const object = { provider: 'salesforce', object: 'crm_contacts' };

beforeAll(async () => {
  db = await freshDatabase('service_relay_reconnect');
  gate = await PgGate.before(db.url);
  SECRET = decodeURIComponent(new URL(db.url).password) || 'relay-secret-' + randomBytes(6).toString('hex');
  const gated = gate.url(db.url, SECRET);
  a = await startTestService(db, { log: testLogger.child({ svc: 'a' }) });
  c = await startTestService(db, { controlUrl: gated, holdRuns: false, log: testLogger.child({ svc: 'c' }) });
  h = await startTestService(db, { controlUrl: gated, log: testLogger.child({ svc: 'h' }) });
  const created = await call(a, 'POST', '/destinations', { json: { name: 'main', config: db.config({ schema: 'landing' }) } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  destId = created.body.id;
});
afterAll(async () => {
  await h?.stop();
  await c?.stop();
  await a?.stop();
  await gate?.stop();
  await db?.drop();
});

/** Lines a service's relay logged with this message, from line `from` on. */
function relayLines(svc: string, msg: 'lost' | 're-established', from = 0): string[] {
  return logLines.slice(from).filter((l) => l.includes(`"svc":"${svc}"`) && l.includes(`commit relay: connection to the control database ${msg}`));
}

/**
 * The relays' backends in this database (every serve process's; with `ports`,
 * those reached from these client ports only), terminated: found first, then
 * terminated by pid (a filter's conditions are evaluated in any order).
 */
async function terminateRelays(ports?: number[]): Promise<number> {
  const { rows } = await db.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() AND ($2::int[] IS NULL OR client_port = ANY($2::int[]))`,
    [RELAY, ports ?? null],
  );
  const pids = rows.map((r) => r.pid);
  await terminateBackends(db.pool, pids);
  return pids.length;
}

async function openRun(customer: string, svc: Service): Promise<string> {
  const r = await call(svc, 'POST', '/runs', { json: { destination_id: destId, ...object, customer_id: customer, mode: 'incremental' } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

async function put(svc: Service, run: string, n: number, records: readonly unknown[]): Promise<void> {
  const r = await call(svc, 'PUT', `/runs/${run}/batches/${n}`, { body: ndjson(records), headers: { 'content-type': 'application/x-ndjson' } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

/** The backend holding the lease of the tenant's object: a held run's. */
async function leaseHolder(customer: string): Promise<number | undefined> {
  const { rows } = await db.pool.query<{ pid: number }>(
    `SELECT holder_pid AS pid FROM landing._pgland_leases WHERE provider = $1 AND customer_id = $2 AND object = $3`,
    [object.provider, customer, object.object],
  );
  return rows[0]?.pid;
}

async function countOf(customer: string): Promise<number> {
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM landing.crm_contacts WHERE _pgland_customer_id = $1`, [customer]);
  return rows[0].n as number;
}

describe('the commit relay reconnects', () => {
  it('while its relay is down a process answers 503 for a run held elsewhere at once; back, it carries the commit to the holder', async () => {
    const customer = 'relay-down';
    const run = await openRun(customer, a);
    await put(a, run, 1, [contact(1), contact(2)]); // a holds the run
    expect(await leaseHolder(customer)).toBeGreaterThan(0);
    const from = logLines.length;
    const refusedBefore = gate.refused;
    gate.close(RELAY);
    expect(await terminateRelays()).toBe(3);
    // a's relay reaches PostgreSQL directly: it is back, listening. c's is turned away at the gate, and tries again.
    await until('a to listen again', () => relayLines('a', 're-established', from).length === 1, 30_000);
    await until('c to lose its relay, and fail to reconnect', () => relayLines('c', 'lost', from).length === 1 && gate.refused > refusedBefore, 30_000);

    // c does not carry the commit (a, listening, would have answered it): 503 at once, and nothing changes.
    const refused = await call(c, 'POST', `/runs/${run}/commit`, { json: { batches: 1 } });
    expect(refused.status, JSON.stringify(refused.body)).toBe(503);
    expect(refused.body.error.code).toBe('run_held_elsewhere');
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await call(c, 'GET', `/runs/${run}`)).body.status).toBe('open');
    expect(await countOf(customer)).toBe(0);
    expect(await leaseHolder(customer)).toBeGreaterThan(0); // still held by a

    gate.open();
    await until('c to listen again', () => relayLines('c', 're-established', from).length === 1, 30_000);
    const done = await call(c, 'POST', `/runs/${run}/commit`, { json: { batches: 1 } });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({ status: 'succeeded', counts: { batches: 1, inserted: 2 } });
    expect(await countOf(customer)).toBe(2);
    expect(await leaseHolder(customer)).toBeUndefined();

    // One line when lost, one when back, whatever the attempts in between; never the password or the gate's address.
    expect(relayLines('c', 'lost', from)).toHaveLength(1);
    expect(relayLines('c', 're-established', from)).toHaveLength(1);
    expect(relayLines('h', 'lost', from)).toHaveLength(1);
    await until('h to listen again', () => relayLines('h', 're-established', from).length === 1, 30_000);
    const seen = logLines.slice(from).join('');
    expect(seen).not.toContain(SECRET);
    expect(seen).not.toContain(`:${gate.port}`);
  });

  it('a holder whose relay was down when an abort was NOTIFYed lets the run go once it listens again', async () => {
    const customer = 'abort-missed';
    const run = await openRun(customer, h);
    await put(h, run, 1, [contact(1)]); // h holds the run
    const holder = await leaseHolder(customer);
    expect(holder).toBeGreaterThan(0);
    const from = logLines.length;
    gate.close(RELAY);
    await terminateRelays();
    await until('h to lose its relay', () => relayLines('h', 'lost', from).length === 1, 30_000);
    await until('a to listen again', () => relayLines('a', 're-established', from).length === 1, 30_000);
    // a aborts the run: the NOTIFY telling h to let go reaches nobody.
    const aborted = call(a, 'POST', `/runs/${run}/abort`);
    await until(
      'the run to be cancelled',
      async () => (await db.pool.query(`SELECT status FROM pgland_control.runs WHERE id = $1`, [run])).rows[0]?.status === 'cancelled',
      30_000,
    );
    // Its abort waits for h's open transaction, which holds the run's stage.
    await until(
      'the abort to wait for a lock h holds',
      async () => (await db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rowCount! > 0,
      30_000,
    );
    expect(relayLines('h', 're-established', from)).toHaveLength(0);
    expect(await leaseHolder(customer)).toBe(holder); // h still holds it (its idle timeout is 10 minutes)
    gate.open();
    await until('h to let the run go', async () => (await leaseHolder(customer)) === undefined, 30_000);
    const answer = await aborted;
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.status).toBe('cancelled');
    expect(await countOf(customer)).toBe(0);
    await until('c to listen again', () => relayLines('c', 're-established', from).length === 1, 30_000);
  });

  it('a serve process stopped while its relay waits to reconnect exits: no timer or connection is left', async () => {
    // A gate of its own, closed: the process's relay, once terminated, only fails to come back.
    const own = await PgGate.before(db.url);
    try {
      const s = spawnCli(['serve', '--port', '0'], {
        env: { PGLAND_SECRET_KEY: randomBytes(32).toString('hex'), PGLAND_CONTROL_URL: own.url(db.url, SECRET), PGLAND_LOG_LEVEL: 'warn' },
      });
      let stderr = '';
      s.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      try {
        await until(
          'pgland serve listening',
          () => {
            if (s.child.exitCode !== null) throw new Error(`pgland serve did not start: ${stderr}`);
            return /listening on http:/.test(stderr);
          },
          90_000,
        );
        own.close(RELAY);
        expect(await terminateRelays(own.upstreamPorts())).toBe(1);
        await until('the relay to fail to come back twice', () => own.refused >= 2, 30_000);
        expect(stderr).toContain('commit relay: connection to the control database lost');
        s.child.kill('SIGTERM');
        // A reconnection loop that stop() did not end, or a connection left open, would keep the process alive.
        await until('pgland serve to exit', () => s.child.exitCode !== null || s.child.signalCode !== null, 60_000);
        const done = await s.done;
        expect(done.code, done.stderr).toBe(0);
        expect(done.stderr).not.toContain(SECRET);
      } finally {
        if (s.child.exitCode === null) s.child.kill('SIGKILL');
      }
    } finally {
      await own.stop();
    }
  });
});
