import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.js';

describe('cli', () => {
  it('prints help with the environment it reads, and exits 0', async () => {
    const r = await runCli(['load', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--provider');
    expect(r.stdout).toContain('PGLAND_DATABASE_URL');
  });

  it('exits 2 on a usage error', async () => {
    const r = await runCli(['load', '--provider', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/required option/);
  });
});
