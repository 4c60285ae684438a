import { readFile } from 'node:fs/promises';
import { resolveObject, type DeclaredSchema } from '../catalog/declared.js';
import type { ObjectKind } from '../catalog/definition.js';
import { openDestination } from '../destination.js';
import { PglandError } from '../errors.js';
import type { Logger } from '../log.js';
import { planText } from '../schema/plan.js';
import { EXIT } from './exit.js';
import { resolveTarget } from './target.js';

export interface PlanFlags {
  config?: string;
  object?: string;
  provider?: string;
  kind: ObjectKind;
  schemaFile?: string;
  json?: boolean;
}

/** Prints the DDL the next run would execute, and changes nothing. */
export async function planCommand(flags: PlanFlags, log: Logger): Promise<number> {
  if (flags.object && flags.kind !== 'common' && !flags.provider) {
    throw new PglandError('config_invalid', "--provider is needed to name a standard or custom object's table");
  }
  let declared: DeclaredSchema | undefined;
  if (flags.schemaFile) {
    try {
      declared = JSON.parse(await readFile(flags.schemaFile, 'utf8')) as DeclaredSchema;
    } catch (err) {
      throw new PglandError('config_invalid', `--schema-file ${flags.schemaFile}: ${(err as Error).message}`);
    }
  }
  const object = flags.object ? { kind: flags.kind, object: flags.object, provider: flags.provider ?? '', ...(declared ? { declared } : {}) } : undefined;
  // An unknown object is refused before any database is reached (or an embedded one started).
  if (object) resolveObject(object);
  const target = await resolveTarget(flags.config, log);
  try {
    const dest = await openDestination(target.config, { log, env: process.env });
    try {
      const plans = object ? [await dest.plan(object)] : await dest.plans();
      if (flags.json) {
        process.stdout.write(JSON.stringify(plans) + '\n');
      } else if (plans.length === 0) {
        process.stdout.write('-- no landed tables yet\n');
      } else {
        process.stdout.write(plans.map(planText).join('\n'));
      }
      return EXIT.ok;
    } finally {
      await dest.close();
    }
  } finally {
    await target.embedded?.stop();
  }
}
