import type pg from 'pg';
import { PglandError } from '../errors.js';
import { quoteIdent as q } from '../sql/ident.js';
import { reloptionList } from './reloptions.js';

/*
 * A rebuild creates a new table: row-level security, its policies and the
 * table's storage options would stay behind with the old one. Without them a
 * reader restricted by a policy (directly, or through a security_invoker view)
 * would see every row after the rebuild. They are read here, before the drop,
 * as the statements that put them back on the new table.
 */

const COMMANDS = new Set(['ALL', 'SELECT', 'INSERT', 'UPDATE', 'DELETE']);
const KINDS = new Set(['PERMISSIVE', 'RESTRICTIVE']);

/**
 * The ALTER TABLE and CREATE POLICY statements that give `target` the row
 * security, policies and storage options the table `oid` has now. Read under
 * the pinned search_path (dependents.ts), so expressions name their functions
 * schema-qualified.
 */
export async function captureRowSecurity(client: pg.ClientBase, oid: number, target: string): Promise<string[]> {
  const t = await client.query<{ enabled: boolean; forced: boolean; options: string[] | null }>(
    `SELECT relrowsecurity AS enabled, relforcerowsecurity AS forced, reloptions AS options FROM pg_class WHERE oid = $1`,
    [oid],
  );
  const { enabled, forced, options } = t.rows[0]!;
  const out: string[] = [];
  if (options && options.length > 0) out.push(`ALTER TABLE ${target} SET (${reloptionList(options)})`);
  if (enabled) out.push(`ALTER TABLE ${target} ENABLE ROW LEVEL SECURITY`);
  if (forced) out.push(`ALTER TABLE ${target} FORCE ROW LEVEL SECURITY`);
  const { rows } = await client.query<{ name: string; kind: string; cmd: string; roles: string[]; qual: string | null; check: string | null }>(
    `SELECT p.policyname AS name, p.permissive AS kind, p.cmd, p.roles::text[] AS roles, p.qual, p.with_check AS check
       FROM pg_policies p JOIN pg_class c ON c.relname = p.tablename JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = p.schemaname
      WHERE c.oid = $1 ORDER BY p.policyname`,
    [oid],
  );
  for (const p of rows) {
    if (!KINDS.has(p.kind) || !COMMANDS.has(p.cmd)) {
      throw new PglandError('evolution_failed', `policy ${p.name} on ${target} is ${p.kind} FOR ${p.cmd}, which pgland cannot recreate`, {
        hint: 'nothing was changed: drop the policy, or recreate it after the evolution',
      });
    }
    // "public" is PUBLIC: no role may be named so.
    const roles = p.roles.map((r) => (r === 'public' ? 'PUBLIC' : q(r))).join(', ');
    out.push(
      `CREATE POLICY ${q(p.name)} ON ${target} AS ${p.kind} FOR ${p.cmd} TO ${roles}` +
        (p.qual !== null ? ` USING (${p.qual})` : '') +
        (p.check !== null ? ` WITH CHECK (${p.check})` : ''),
    );
  }
  return out;
}
