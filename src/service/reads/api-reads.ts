import type { HttpApp } from '../http/server.js';
import type { ServiceContext } from '../context.js';
import { grantsSql } from './grants-sql.js';
import { landedTables, planView } from './landed-tables.js';
import { runProblems, runRejects, runWebhooks } from './run-details.js';
import { nextFire } from '../schedules/schedule-store.js';
import * as S from './schemas-reads.js';

/**
 * Read endpoints the console needs beside the rest of the API (and any
 * client may use): a run's rejects, problems and webhooks, a destination's
 * landed tables and next plan, a cron's next times. They change nothing.
 */
export function readRoutes(app: HttpApp, ctx: ServiceContext): void {
  const perLine = [
    ['rejects', runRejects, S.rejectPage, 'Input lines that could not land at all (docs/landed-tables.md, "Rejects and problems")'],
    ['problems', runProblems, S.problemPage, 'Values that did not fit their column (the record landed)'],
  ] as const;
  for (const [what, read, page, description] of perLine) {
    app.get(
      `/runs/:id/${what}`,
      {
        schema: {
          summary: `A run's ${what}, a page at a time`,
          description: `${description}, in input order. Read from the destination.`,
          tags: ['runs'],
          params: S.idParams,
          querystring: S.pageQuery,
          response: { 200: page, 404: S.errorBody, 502: S.errorBody },
        },
      },
      async (req) => read(ctx.ctl, ctx.pools, req.params.id, req.query),
    );
  }
  app.get(
    '/runs/:id/webhooks',
    {
      schema: {
        summary: 'The webhooks a run sent, with their deliveries',
        description: "Oldest first. The outbox keeps a message only when an endpoint wanted it. The schema.evolved event's data is the run's evolution report.",
        tags: ['runs'],
        params: S.idParams,
        response: { 200: S.runWebhooks, 404: S.errorBody },
      },
    },
    async (req) => ({ webhooks: await runWebhooks(ctx.ctl, req.params.id) }),
  );

  app.get(
    '/destinations/:id/tables',
    {
      schema: {
        summary: 'The tables landed in a destination, with row counts',
        description: 'Exact counts, except for a table that takes over 2 s to count: its planner estimate, rows_exact false.',
        tags: ['destinations'],
        params: S.idParams,
        response: { 200: S.landedTables, 404: S.errorBody, 502: S.errorBody },
      },
    },
    async (req) => {
      const dest = await ctx.pools.get(req.params.id);
      return { schema: dest.schema, tables: await landedTables(dest) };
    },
  );
  app.get(
    '/destinations/:id/plan',
    {
      schema: {
        summary: 'What the next run of each landed table would change (pgland plan)',
        description: 'Common objects against the current catalog, others against their recorded definition. Changes nothing.',
        tags: ['destinations'],
        params: S.idParams,
        response: { 200: S.plans, 404: S.errorBody, 502: S.errorBody },
      },
    },
    async (req) => {
      const dest = await ctx.pools.get(req.params.id);
      return { plans: (await dest.plans()).map(planView) };
    },
  );

  app.get(
    '/destinations/:id/grants',
    {
      schema: {
        summary: "The least-privilege SQL for this destination's role, database and schema",
        description: 'docs/connecting.md, "Grants": two options, and a query to verify. The password is a placeholder, never the stored one.',
        tags: ['destinations'],
        params: S.idParams,
        response: { 200: S.grants, 404: S.errorBody },
      },
    },
    async (req) => grantsSql(await ctx.destinations.resolved(req.params.id)),
  );

  app.get(
    '/schedules/next-runs',
    {
      schema: {
        summary: 'The next times a cron fires',
        description: "For a schedule's cron and timezone, or one being written: 400 names what is wrong with it.",
        tags: ['schedules'],
        querystring: S.nextRunsQuery,
        response: { 200: S.nextRuns, 400: S.errorBody },
      },
    },
    async (req) => {
      const { cron, timezone, count } = req.query;
      const times: Date[] = [];
      let after = new Date();
      for (let i = 0; i < count; i++) {
        after = nextFire(cron, timezone, after);
        times.push(after);
      }
      return { cron, timezone, next_runs: times };
    },
  );
}
