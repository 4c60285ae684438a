import { readFile } from 'node:fs/promises';
import type { ObjectKind } from '../catalog/definition.js';
import { openDestination } from '../destination.js';
import { PglandError } from '../errors.js';
import type { SyncMode } from '../load/runs.js';
import { createLogger, type Logger } from '../log.js';
import { checkMatchColumn, type WriteMode } from '../merge/merge.js';
import { resolveObject, type DeclaredSchema } from '../catalog/declared.js';
import { EXIT } from './exit.js';
import { progressLine, summary } from './progress.js';
import { cancelOnSignals } from './signals.js';
import { resolveTarget } from './target.js';
import { openInput } from './input-file.js';

export interface LoadFlags {
  config?: string;
  provider: string;
  customer: string;
  object: string;
  kind: ObjectKind;
  schemaFile?: string;
  mode: SyncMode;
  input: string;
  write: WriteMode | 'sync' | 'additive' | 'enrich';
  match: string;
  ignoreDeletes?: boolean;
  batchSize?: string;
  maxRecordBytes?: string;
  json?: boolean;
}

async function readDeclared(path: string): Promise<DeclaredSchema> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as DeclaredSchema;
  } catch (err) {
    throw new PglandError('config_invalid', `--schema-file ${path}: ${(err as Error).message}`, {
      hint: 'give a JSON Schema object with "properties"',
    });
  }
}

/** Grouparoo's sync modes, as pgland write modes (docs/sync-semantics.md). */
const GROUPAROO: Record<string, { write: WriteMode; ignoreDeletes: boolean }> = {
  sync: { write: 'upsert', ignoreDeletes: false },
  additive: { write: 'upsert', ignoreDeletes: true },
  enrich: { write: 'update', ignoreDeletes: true },
};

export async function loadCommand(flags: LoadFlags, log: Logger): Promise<number> {
  const grouparoo = GROUPAROO[flags.write];
  const write = grouparoo?.write ?? (flags.write as WriteMode);
  const ignoreDeletes = grouparoo?.ignoreDeletes || !!flags.ignoreDeletes;
  const declared = flags.schemaFile ? await readDeclared(flags.schemaFile) : undefined;
  // Usage errors before any database is reached (or an embedded one started).
  checkMatchColumn(resolveObject({ kind: flags.kind, object: flags.object, provider: flags.provider, ...(declared ? { declared } : {}) }), write, flags.match);
  const target = await resolveTarget(flags.config, log);
  // On a terminal the summary says how the run went; the log speaks of trouble unless asked.
  const runLog = process.stderr.isTTY && !process.env.PGLAND_LOG_LEVEL ? createLogger({ level: 'warn' }) : log;
  try {
    const dest = await openDestination(target.config, {
      log: runLog,
      env: process.env,
      overrides: { batch_size: flags.batchSize, max_record_bytes: flags.maxRecordBytes },
    });
    try {
      const { input, close } = openInput(flags.input);
      const progress = progressLine();
      const cancel = cancelOnSignals(runLog);
      const result = await dest
        .load({
          write,
          matchColumn: flags.match,
          ignoreDeletes,
          signal: cancel.signal,
          kind: flags.kind,
          object: flags.object,
          provider: flags.provider,
          customerId: flags.customer,
          mode: flags.mode,
          input,
          ...(declared ? { declared } : {}),
          onProgress: (c) => progress.update(c),
        })
        .finally(close);
      cancel.dispose();
      progress.done(result);
      if (flags.json) {
        process.stdout.write(JSON.stringify({ ...result, error: result.error?.message }) + '\n');
      } else {
        process.stdout.write(summary(result, dest.schema) + '\n');
      }
      if (result.status === 'failed' || result.status === 'cancelled') return EXIT.failure;
      return result.status === 'partial' ? EXIT.partial : EXIT.ok;
    } finally {
      await dest.close();
    }
  } finally {
    await target.embedded?.stop();
  }
}
