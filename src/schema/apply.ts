import type pg from 'pg';
import { describeError, PglandError } from '../errors.js';
import { qualify } from '../sql/ident.js';
import type { EvolutionPlan } from './plan.js';

/** What an evolution did, for the run summary, the API and the schema.evolved webhook. */
export interface EvolutionReport {
  table: string;
  action: EvolutionPlan['action'];
  reasons: string[];
  /** Customer objects that could not be recreated; views among them are kept in _pgland_saved_views. */
  notRestored: { label: string; error: string }[];
  fullRefreshReason: string | null;
  /** Every statement executed, in order (equal to the plan's, but for failed tolerant steps). */
  executed: string[];
  /**
   * Values the evolution could not re-land in their column (it holds NULL for
   * them now): each is a row of _pgland_problems of the run, counted in its
   * problems.
   */
  problems: number;
}

/**
 * Runs a plan's statements, in order, in the caller's transaction. A failed
 * tolerant step is rolled back to its savepoint, noted, and skipped; any other
 * failure aborts the evolution (and the caller rolls back).
 */
export async function applyPlan(client: pg.ClientBase, plan: EvolutionPlan): Promise<EvolutionReport> {
  const report: EvolutionReport = {
    table: plan.table,
    action: plan.action,
    reasons: plan.reasons,
    notRestored: [],
    fullRefreshReason: plan.fullRefreshReason,
    executed: [],
    problems: 0,
  };
  for (const step of plan.steps) {
    const savepoint = step.tolerant ? step.statements[0] : undefined;
    let current = '';
    try {
      for (const [i, sql] of step.statements.entries()) {
        current = sql;
        report.executed.push(sql);
        const result = await client.query(sql);
        if (step.notesProblems && i === 0) report.problems += result.rowCount ?? 0;
      }
    } catch (err) {
      if (!step.tolerant || !savepoint) {
        throw new PglandError('evolution_failed', `evolving ${plan.schema}.${plan.table} failed: ${describeError(err)}`, {
          hint: 'nothing was changed. If a view or other object of another owner depends on the table, grant that role to pgland or drop the object; `pgland plan` shows the statements',
          cause: err,
        });
      }
      await client.query(savepoint.replace(/^SAVEPOINT/, 'ROLLBACK TO SAVEPOINT'));
      const v = step.tolerant.view;
      const error = v && current.startsWith('SET LOCAL ROLE') ? notOwnerError(v.owner, err) : describeError(err);
      report.notRestored.push({ label: step.tolerant.label, error });
      if (v) {
        await client.query(
          `UPDATE ${qualify(plan.schema, '_pgland_saved_views')} SET restored = false, error = $4
            WHERE table_name = $1 AND view_schema = $2 AND view_name = $3 AND restored IS NULL`,
          [plan.table, v.schema, v.name, error],
        );
      }
    }
  }
  return report;
}

/** A view is recreated only as its owner: pgland may not become that role. */
function notOwnerError(owner: string, err: unknown): string {
  return (
    `not recreated: pgland's role may not act as ${owner}, the view's owner (${describeError(err)}); ` +
    `pgland never creates a customer's view as itself. Grant ${owner} to pgland's role (WITH SET TRUE on PostgreSQL 16 and later), ` +
    `or create the view yourself from its saved definition`
  );
}
