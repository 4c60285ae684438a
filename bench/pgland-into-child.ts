import { createReadStream } from 'node:fs';
import { openDestination, parseMapping } from '../src/index.js';
import { childMain, childParams, reportLoad, startClock } from './child.js';
import { INTO_MAPPINGS, INTO_TABLE } from './into.js';

export interface IntoParams {
  url: string;
  schema: string;
  file: string;
}

/** pgland's load into the customer's own table, as a library user runs it: an upsert on email. */
async function main(): Promise<void> {
  const p = childParams<IntoParams>();
  const dest = await openDestination({ url: p.url, schema: 'pgland' });
  try {
    const clock = startClock();
    const result = await dest.loadInto({
      into: { schema: p.schema, table: INTO_TABLE },
      write: 'upsert',
      match: 'email',
      mappings: INTO_MAPPINGS.map(([c, path]) => parseMapping(`${c}=${path}`)),
      input: createReadStream(p.file),
    });
    reportLoad(clock, result);
  } finally {
    await dest.close();
  }
}

childMain(main);
