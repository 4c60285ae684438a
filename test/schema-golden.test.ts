import { afterAll, beforeAll, describe, it } from 'vitest';
import { openDestination } from '../src/index.js';
import { silentLogger } from '../src/log.js';
import { CONTROL_SCHEMA, openControlDb } from '../src/service/control/control-db.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { expectGolden } from './support/golden.js';
import { dumpSchema } from './support/schema-dump.js';

// Issue 16: pgland's own tables as its migrations leave them, on a fresh
// destination and a fresh control database, committed under test/golden/
// (graphile-worker's "schema hasn't changed" check): a migration shows in the
// diff of these files. PGLAND_UPDATE_GOLDEN=1 rewrites them.

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('schema_golden');
});
afterAll(async () => {
  await db?.drop();
});

describe('schemas after migration (issue 16)', () => {
  it('destination: pgland metadata in a fresh schema', async () => {
    const dest = await openDestination(db.config({ schema: 'pgland' }));
    await dest.close();
    expectGolden('destination-schema.sql', await dumpSchema(db.pool, 'pgland'));
  });

  it('control database', async () => {
    const ctl = await openControlDb({ url: db.url, dataDir: 'unused', log: silentLogger() });
    await ctl.close();
    expectGolden('control-schema.sql', await dumpSchema(db.pool, CONTROL_SCHEMA));
  });
});
