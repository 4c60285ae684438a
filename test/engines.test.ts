import { readFileSync } from 'node:fs';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

/**
 * pgland supports Node 20 (package.json engines). npm only warns
 * (EBADENGINE) when a dependency wants a newer Node, and the package may then
 * fail at run time; issue 16 found one such (cookie@2 under fastify's
 * light-my-request). Every locked package must accept the oldest Node we
 * support.
 */
describe('dependencies run on the oldest supported Node (issue 16)', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as {
    packages: Record<string, { version?: string; engines?: Record<string, string> | string[]; optional?: boolean }>;
  };
  const oldest = semver.minVersion(pkg.engines.node)!.version;
  // Node 20's last line (20.19 is what distributions ship); packages may ask for a late minor.
  const node20 = '20.19.0';

  it('names Node 20 as the oldest', () => {
    expect(semver.major(oldest)).toBe(20);
  });

  it('has no locked package whose engines exclude it', () => {
    const refusing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      const range = entry.engines && !Array.isArray(entry.engines) ? entry.engines.node : undefined;
      if (!path || !range) continue;
      // Ranges that semver cannot read are reported too: npm would not check them either.
      if (!semver.validRange(range) || !semver.satisfies(node20, range)) {
        refusing.push(`${path}@${entry.version} wants node ${range}`);
      }
    }
    expect(refusing).toEqual([]);
  });
});
