import type { LoadResult } from '../load/loader.js';
import type { RunCounts } from '../load/runs.js';

/** A live progress line on a TTY: rows read and rows per second. */
export function progressLine(stream: NodeJS.WriteStream): { update(c: RunCounts): void; done(): void } {
  const started = Date.now();
  let shown = false;
  return {
    update(c) {
      if (!stream.isTTY) return;
      const secs = Math.max((Date.now() - started) / 1000, 0.001);
      stream.write(`\r  ${c.rowsRead.toLocaleString('en')} rows read, ${Math.round(c.rowsRead / secs).toLocaleString('en')} rows/s, ${c.batches} batches`);
      shown = true;
    },
    done() {
      if (shown) stream.write('\n');
    },
  };
}

/** The one-screen summary printed at the end of a load. */
export function summary(r: LoadResult, schema: string): string {
  const c = r.counts;
  const rate = r.durationMs > 0 ? Math.round((c.rowsRead * 1000) / r.durationMs) : c.rowsRead;
  const lines = [
    `run ${r.runId}: ${r.status} in ${(r.durationMs / 1000).toFixed(2)} s (${rate.toLocaleString('en')} rows/s)`,
    `  table      ${schema}.${r.table}`,
    `  read       ${c.rowsRead} lines in ${c.batches} batches`,
    `  inserted   ${c.inserted}`,
    `  updated    ${c.updated}`,
    `  unchanged  ${c.unchanged}  (same as landed, or older than it)`,
    `  deleted    ${c.deleted}${c.undeleted ? `  (and ${c.undeleted} un-deleted)` : ''}`,
    `  superseded ${c.superseded}  (a later version came in the same batch)`,
    `  skipped    ${c.skipped}  (no landed row to update or delete, duplicate inserts, ignored deletes)`,
    `  rejected   ${c.rejected}${c.rejected ? `  (see ${schema}._pgland_rejects)` : ''}`,
    `  problems   ${c.problems}${c.problems ? `  (see ${schema}._pgland_problems)` : ''}`,
  ];
  if (c.nulStripped) lines.push(`  warning: ${c.nulStripped} NUL characters stripped from values (PostgreSQL cannot store them; the values landed without them)`);
  if (r.evolution) {
    lines.push(`  schema     ${r.evolution.action} of ${schema}.${r.evolution.table}${r.evolution.reasons.length ? ': ' + r.evolution.reasons.join('; ') : ''}`);
    for (const n of r.evolution.notRestored) lines.push(`    not restored: ${n.label}: ${n.error} (definition kept in ${schema}._pgland_saved_views)`);
  }
  if (r.fullRefreshRequired) lines.push(`  next sync must be a full refresh: ${r.fullRefreshRequired}`);
  if (r.error) lines.push(`  error: ${r.error.message}`);
  return lines.join('\n');
}
