import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { PGLAND_COLUMNS as P } from '../src/catalog/definition.js';
import { qualify, quoteIdent as q } from '../src/sql/ident.js';
import { TENANT } from './baselines.js';
import { childParams, reportResult, startClock } from './child.js';
import { CONTACTS } from './csv.js';

export interface NaiveParams {
  url: string;
  schema: string;
  file: string;
}

const ROWS_PER_STATEMENT = 1000;
const COLUMNS = [P.provider, P.customerId, 'id', ...CONTACTS.columns.map((c) => c.name), P.lastModifiedAt, P.isDeleted, P.runId, P.rawData];

/** INSERT … VALUES ($1, …), (…) … ON CONFLICT DO UPDATE for `rows` rows. */
function insertSql(schema: string, rows: number): string {
  const width = COLUMNS.length;
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) tuples.push('(' + COLUMNS.map((_, c) => `$${r * width + c + 1}`).join(', ') + ')');
  const updates = COLUMNS.slice(3).map((c) => `${q(c)} = EXCLUDED.${q(c)}`);
  return `INSERT INTO ${qualify(schema, CONTACTS.table)} (${COLUMNS.map(q).join(', ')}) VALUES ${tuples.join(', ')}
    ON CONFLICT (${q(P.provider)}, ${q(P.customerId)}, "id") DO UPDATE SET ${updates.join(', ')}`;
}

/**
 * D: the loader anyone would write first with node-postgres. readline,
 * JSON.parse, 1,000 rows per parameterised multi-row INSERT … ON CONFLICT,
 * each statement its own transaction, one statement in flight at a time.
 */
async function main(): Promise<void> {
  const p = childParams<NaiveParams>();
  const client = new pg.Client({ connectionString: p.url });
  await client.connect();
  try {
    const full = insertSql(p.schema, ROWS_PER_STATEMENT);
    const clock = startClock();
    let values: unknown[] = [];
    let inBatch = 0;
    let rows = 0;
    for await (const line of createInterface({ input: createReadStream(p.file), crlfDelay: Infinity })) {
      if (line.trim() === '') continue;
      const r = JSON.parse(line) as { id: string; last_modified_at: string; is_deleted?: boolean; raw_data: unknown; data: Record<string, unknown> };
      values.push(TENANT.provider, TENANT.customerId, r.id);
      for (const c of CONTACTS.columns) {
        const v = r.data[c.source.key];
        values.push(v === undefined || v === null ? null : c.type === 'jsonb' ? JSON.stringify(v) : v);
      }
      values.push(r.last_modified_at, r.is_deleted ?? false, TENANT.runId, JSON.stringify(r.raw_data));
      rows++;
      if (++inBatch === ROWS_PER_STATEMENT) {
        await client.query(full, values);
        values = [];
        inBatch = 0;
      }
    }
    if (inBatch > 0) await client.query(insertSql(p.schema, inBatch), values);
    reportResult(clock, { rows });
  } finally {
    await client.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(String((err as Error)?.stack ?? err) + '\n');
  process.exitCode = 1;
});
