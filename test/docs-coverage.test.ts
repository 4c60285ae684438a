import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { docBlocks, ROOT } from './support/doc-blocks.js';

// Issue 16: docs are executable. Every fenced block of the README,
// CONTRIBUTING.md and docs/*.md is run (or checked against what pgland does)
// by its document's test, or carries `<!-- not run: why -->` on the line
// before its fence. This file checks the rule without a database; each
// document's test checks that it ran every block not marked
// (DocUnderTest.expectEveryBlockRun).

/** The test that runs each document's blocks. */
const RUNNERS: Record<string, string> = {
  'README.md': 'test/readme.test.ts',
  'CONTRIBUTING.md': 'test/docs-commands.test.ts',
  'docs/benchmarks.md': 'test/docs-commands.test.ts',
  'docs/cli.md': 'test/docs-loading.test.ts',
  'docs/getting-started.md': 'test/docs-loading.test.ts',
  'docs/input.md': 'test/docs-loading.test.ts',
  'docs/landed-tables.md': 'test/docs-loading.test.ts',
  'docs/schema-evolution.md': 'test/docs-loading.test.ts',
  'docs/configuration.md': 'test/docs-connecting.test.ts',
  'docs/connecting.md': 'test/docs-connecting.test.ts',
  'docs/own-tables.md': 'test/docs-own-tables.test.ts',
  'docs/reading.md': 'test/docs-reading.test.ts',
  'docs/protocols.md': 'test/docs-protocols.test.ts',
  'docs/service.md': 'test/docs-service.test.ts',
};

const DOCS = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

describe('every code block of the docs is run by a test, or says why not (issue 16)', () => {
  it('each block names its language, and is run by its document’s test or marked <!-- not run: why -->', () => {
    const wrong: string[] = [];
    for (const doc of DOCS) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      const runner = RUNNERS[doc];
      const runs = runner !== undefined && existsSync(join(ROOT, runner)) && readFileSync(join(ROOT, runner), 'utf8').includes(`'${doc}'`);
      for (const b of docBlocks(text)) {
        const at = `${doc}:${b.line}`;
        if (b.lang === '') wrong.push(`${at}: say what the block is after its fence (\`\`\`sh, \`\`\`json, \`\`\`sql, \`\`\`text, …)`);
        if (b.notRun !== undefined) {
          if (b.notRun === '') wrong.push(`${at}: <!-- not run: … --> needs its reason`);
        } else if (!runs) {
          wrong.push(
            `${at}: no test runs this \`\`\`${b.lang} block: run it from ${runner ?? 'a test of this document (and add it to RUNNERS in test/docs-coverage.test.ts)'}, ` +
              'or mark it with <!-- not run: why --> on the line before its fence (CONTRIBUTING.md, "Docs are executable")',
          );
        }
      }
      if (/^ {0,3}```/m.test(text) && text.split('\n').filter((l) => /^ {0,3}```/.test(l)).length % 2 !== 0) wrong.push(`${doc}: a fence is not closed`);
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  it('each runner ends by checking that it ran every block of its documents', () => {
    for (const [doc, runner] of Object.entries(RUNNERS)) {
      const text = readFileSync(join(ROOT, runner), 'utf8');
      expect(text, `${runner} must open ${doc} with new DocUnderTest('${doc}')`).toContain(`new DocUnderTest('${doc}')`);
      expect(text, `${runner} must end with expectEveryBlockRun()`).toContain('.expectEveryBlockRun()');
    }
  });
});
