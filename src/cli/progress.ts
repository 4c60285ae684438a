import type { LoadResult } from '../load/loader.js';
import type { RunCounts } from '../load/runs.js';
import { stderrLines } from '../log.js';

/** Numbers as pgland prints them: 300,000. */
export function count(n: number): string {
  return n.toLocaleString('en');
}

/** Rows per second over a duration, as both the progress line and the summary show it. */
function rate(rows: number, ms: number): string {
  return count(ms > 0 ? Math.round((rows * 1000) / ms) : rows);
}

function progressText(rows: number, ms: number, batches: number): string {
  return `  ${count(rows)} rows read, ${rate(rows, ms)} rows/s, ${count(batches)} batches`;
}

/**
 * A live progress line on a TTY: rows read and rows per second. A log line
 * written meanwhile ends it first (stderrLines); done() shows the run's own
 * figures, the summary's, and ends the line.
 */
export function progressLine(out: { isTTY: boolean; lines: typeof stderrLines } = { isTTY: !!process.stderr.isTTY, lines: stderrLines }): {
  update(c: RunCounts): void;
  done(result?: LoadResult): void;
} {
  const started = Date.now();
  let shown = false;
  return {
    update(c) {
      if (!out.isTTY) return;
      out.lines.status(progressText(c.rowsRead, Date.now() - started, c.batches));
      shown = true;
    },
    done(result) {
      if (!shown) return;
      if (result) out.lines.status(progressText(result.counts.rowsRead, result.durationMs, result.counts.batches));
      out.lines.endStatus();
    },
  };
}

/** The one-screen summary printed at the end of a load. */
export function summary(r: LoadResult, schema: string): string {
  const c = r.counts;
  const lines = [
    `run ${r.runId}: ${r.status} in ${(r.durationMs / 1000).toFixed(2)} s (${rate(c.rowsRead, r.durationMs)} rows/s)`,
    `  table      ${schema}.${r.table}`,
    `  read       ${count(c.rowsRead)} lines in ${count(c.batches)} batches`,
    `  inserted   ${count(c.inserted)}`,
    `  updated    ${count(c.updated)}`,
    `  unchanged  ${count(c.unchanged)}  (same as landed, or older than it)`,
    `  deleted    ${count(c.deleted)}${c.undeleted ? `  (and ${count(c.undeleted)} un-deleted)` : ''}`,
    `  superseded ${count(c.superseded)}  (a later version came in the same batch)`,
    `  skipped    ${count(c.skipped)}  (no landed row to update or delete, duplicate inserts, ignored deletes)`,
    `  rejected   ${count(c.rejected)}${c.rejected ? `  (see ${schema}._pgland_rejects)` : ''}`,
    `  problems   ${count(c.problems)}${c.problems ? `  (see ${schema}._pgland_problems)` : ''}`,
  ];
  if (c.nulStripped)
    lines.push(`  warning: ${count(c.nulStripped)} NUL characters stripped from values (PostgreSQL cannot store them; the values landed without them)`);
  if (r.evolution) {
    lines.push(
      `  schema     ${r.evolution.action} of ${schema}.${r.evolution.table}${r.evolution.reasons.length ? ': ' + r.evolution.reasons.join('; ') : ''}`,
    );
    if (r.evolution.problems) {
      lines.push(
        `    warning: ${r.evolution.problems} landed values no longer fit their column and are NULL now (see ${schema}._pgland_problems, line_number < 0)`,
      );
    }
    for (const n of r.evolution.notRestored) lines.push(`    not restored: ${n.label}: ${n.error} (definition kept in ${schema}._pgland_saved_views)`);
  }
  if (r.fullRefreshRequired) lines.push(`  next sync must be a full refresh: ${r.fullRefreshRequired}`);
  if (r.error) lines.push(`  error: ${r.error.message}`);
  return lines.join('\n');
}
