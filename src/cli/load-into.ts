import { readFile } from 'node:fs/promises';
import { openDestination } from '../destination.js';
import { PglandError } from '../errors.js';
import type { IntoResult } from '../into/run.js';
import type { IntoWrite } from '../into/validate.js';
import { mappingsFromObject, parseMapping, type Mapping } from '../into/mapping.js';
import type { Logger } from '../log.js';
import { EXIT } from './exit.js';
import { progressLine } from './progress.js';
import { cancelOnSignals } from './signals.js';
import { resolveTarget } from './target.js';
import { openInput } from './input-file.js';

/** `pgland load --into SCHEMA.TABLE …`: the customer's own table (docs/own-tables.md). */
export interface IntoFlags {
  config?: string;
  into: string;
  provider?: string;
  customer?: string;
  input: string;
  write: IntoWrite;
  /** undefined when --match was not given (its default, id, is the landed tables'). */
  match?: string;
  map?: string[];
  mapping?: string;
  groupsTable?: string;
  groupKey?: string;
  groupColumn?: string;
  groupsFrom?: string;
  batchSize?: string;
  json?: boolean;
}

async function readMappingFile(path: string): Promise<Mapping[]> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new PglandError('mapping_invalid', `--mapping ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: 'give a JSON file holding one object of "column": "value", e.g. {"email": "data.email"}',
    });
  }
  return mappingsFromObject(value, path);
}

function groupsOf(f: IntoFlags): { table: string; keyColumn: string; nameColumn: string; from: string } | undefined {
  const given = [f.groupsTable, f.groupKey, f.groupColumn, f.groupsFrom];
  if (given.every((x) => x === undefined)) return undefined;
  if (given.some((x) => x === undefined)) {
    throw new PglandError('config_invalid', 'a groups table needs all four of --groups-table, --group-key, --group-column and --groups-from', {
      hint: 'e.g. --groups-table public.user_groups --group-key user_id --group-column group_name --groups-from data.groups',
    });
  }
  return { table: f.groupsTable!, keyColumn: f.groupKey!, nameColumn: f.groupColumn!, from: f.groupsFrom! };
}

export function intoSummary(r: IntoResult): string {
  const c = r.counts;
  const lines = [
    `run ${r.runId}: ${r.status} in ${(r.durationMs / 1000).toFixed(2)} s`,
    `  table      ${r.table}`,
    `  read       ${c.rowsRead} lines in ${c.batches} batches`,
    `  inserted   ${c.inserted}${r.insertedId !== undefined ? `  (insertedId ${JSON.stringify(r.insertedId)})` : ''}`,
    `  updated    ${c.updated}`,
    `  unchanged  ${c.unchanged}`,
    `  deleted    ${c.deleted}`,
    `  superseded ${c.superseded}  (a later version came in the same batch)`,
    `  skipped    ${c.skipped}  (no row matched, or a deletion the mode ignores)`,
    `  rejected   ${c.rejected}${c.rejected ? "  (see _pgland_rejects in pgland's schema)" : ''}`,
  ];
  if (r.groups) lines.push(`  groups     ${r.groups.added} added, ${r.groups.removed} removed`);
  if (r.error) lines.push(`  error: ${r.error.message}`);
  return lines.join('\n');
}

export async function loadIntoCommand(flags: IntoFlags, log: Logger): Promise<number> {
  const mappings = [...(flags.mapping ? await readMappingFile(flags.mapping) : []), ...(flags.map ?? []).map(parseMapping)];
  const groups = groupsOf(flags);
  const target = await resolveTarget(flags.config, log);
  try {
    const dest = await openDestination(target.config, { log, env: process.env, overrides: { batch_size: flags.batchSize } });
    try {
      const { input, close } = openInput(flags.input);
      const progress = progressLine();
      const cancel = cancelOnSignals(log);
      try {
        const result = await dest.loadInto({
          into: flags.into,
          write: flags.write,
          ...(flags.match !== undefined ? { match: flags.match } : {}),
          mappings,
          ...(groups ? { groups } : {}),
          ...(flags.provider !== undefined ? { provider: flags.provider } : {}),
          ...(flags.customer !== undefined ? { customerId: flags.customer } : {}),
          input,
          signal: cancel.signal,
          onProgress: (c) => progress.update(c),
        });
        progress.done();
        process.stdout.write((flags.json ? JSON.stringify({ ...result, error: result.error?.message }) : intoSummary(result)) + '\n');
        if (result.status === 'failed' || result.status === 'cancelled') return EXIT.failure;
        return result.status === 'partial' ? EXIT.partial : EXIT.ok;
      } finally {
        cancel.dispose();
        // Refused before reading, or failed half way: the file is closed.
        await close();
      }
    } finally {
      await dest.close();
    }
  } finally {
    await target.embedded?.stop();
  }
}
