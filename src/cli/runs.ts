import { openDestination } from '../destination.js';
import type { Logger } from '../log.js';
import { EXIT } from './exit.js';
import { resolveTarget } from './target.js';

export async function runsCommand(flags: { config?: string; json?: boolean; limit: string; object?: string }, log: Logger): Promise<number> {
  const target = await resolveTarget(flags.config, log);
  try {
    const dest = await openDestination(target.config, { log, env: process.env });
    try {
      const runs = await dest.runs({ limit: Number(flags.limit), ...(flags.object ? { object: flags.object } : {}) });
      if (flags.json) {
        process.stdout.write(JSON.stringify(runs) + '\n');
        return EXIT.ok;
      }
      if (runs.length === 0) process.stdout.write('no runs yet\n');
      for (const r of runs) {
        const when = r.started_at.toISOString().replace('T', ' ').slice(0, 19);
        process.stdout.write(
          `${when}  ${r.status.padEnd(9)} ${r.provider}/${r.customer_id}/${r.object}  ${r.mode}  read ${r.rows_read}  +${r.rows_inserted} ~${r.rows_updated} =${r.rows_unchanged}  rejected ${r.rows_rejected}  problems ${r.problems}  ${r.run_id}\n`,
        );
        if (r.error) process.stdout.write(`    error: ${r.error.split('\n')[0]}\n`);
      }
      return EXIT.ok;
    } finally {
      await dest.close();
    }
  } finally {
    await target.embedded?.stop();
  }
}

export async function watermarkCommand(
  flags: { config?: string; provider: string; customer: string; object: string; json?: boolean },
  log: Logger,
): Promise<number> {
  const target = await resolveTarget(flags.config, log);
  try {
    const dest = await openDestination(target.config, { log, env: process.env });
    try {
      const wm = await dest.watermark({ provider: flags.provider, customerId: flags.customer, object: flags.object });
      if (flags.json) process.stdout.write(JSON.stringify(wm ?? null) + '\n');
      else if (!wm) process.stdout.write('no completed run yet: the next sync must start from the beginning\n');
      else process.stdout.write(`${wm.highWaterMark.toISOString()}  (run ${wm.runId}, recorded ${wm.updatedAt.toISOString()})\n`);
      return EXIT.ok;
    } finally {
      await dest.close();
    }
  } finally {
    await target.embedded?.stop();
  }
}
