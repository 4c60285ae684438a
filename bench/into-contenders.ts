import { existsSync, statSync } from 'node:fs';
import { qualify } from '../src/sql/ident.js';
import { runChild } from './child.js';
import { psqlLoad, settle, withCpu, type Contender, type Measurement } from './contenders.js';
import { writeFile, type DataFile, type Dataset } from './dataset.js';
import { INTO_TABLE, intoCsvLine, intoCsvPaths, intoRecord, intoScriptB, intoTableSql } from './into.js';
import type { IntoParams } from './pgland-into-child.js';
import { admin } from './server.js';

/** The mapped values as CSV for B-into, written once beside the dataset's NDJSON. */
async function intoCsv(data: Dataset): Promise<{ first: DataFile; incr: DataFile }> {
  const paths = intoCsvPaths(data.first.path);
  const make = async (path: string, variant: 'first' | 'incr'): Promise<DataFile> =>
    existsSync(path)
      ? { path, bytes: statSync(path).size, rows: data.size }
      : writeFile(path, data.size, (n) => intoCsvLine(intoRecord(variant, n, data.recordSize)));
  return { first: await make(paths.first, 'first'), incr: await make(paths.incr, 'incr') };
}

/**
 * Loads into the customer's own table (issue 18): an upsert on email into an
 * empty table (every record inserted), then the 10%-changed increment over it.
 */
function intoContender(
  name: string,
  load: (ctx: Parameters<Contender['run']>[0], schema: string, phase: 'first' | 'incr', data: Dataset) => Promise<Measurement>,
): Contender {
  return {
    name,
    async run(ctx, data) {
      const schema = `bench_${name.replace(/\W/g, '_')}`;
      await admin(ctx.url, ...intoTableSql(schema));
      await settle(ctx.url);
      const first = await load(ctx, schema, 'first', data);
      await settle(ctx.url, qualify(schema, INTO_TABLE));
      const incr = await load(ctx, schema, 'incr', data);
      return [first, incr];
    },
  };
}

export const contenderBInto = intoContender('b-into', async (ctx, schema, phase, data) => {
  const csv = (await intoCsv(data))[phase];
  const m = await psqlLoad(ctx, `B-into ${phase}`, intoScriptB(schema, csv.path), csv);
  return m;
});

export const contenderPglandInto = intoContender('pgland-into', (ctx, schema, phase, data) => {
  const file = phase === 'first' ? data.first : data.incr;
  const params: IntoParams = { url: ctx.loadUrl, schema, file: file.path };
  return withCpu(ctx, async () => {
    const r = await runChild('./pgland-into-child.js', params, ctx.pglandNodeArgs);
    return {
      name: `pgland-into ${phase}`,
      ms: r.ms,
      rows: r.rows,
      inputBytes: file.bytes,
      maxRssMb: r.maxRssMb,
      rss: { startRssMb: r.startRssMb, peak: r.peak },
      clientCpuS: r.cpuMs / 1000,
      ...(r.detail ? { detail: r.detail } : {}),
    };
  });
});
