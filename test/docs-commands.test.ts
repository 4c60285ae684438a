import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DocUnderTest, ROOT, type DocBlock } from './support/doc-blocks.js';

// Issue 16: the commands of CONTRIBUTING.md and docs/benchmarks.md run the
// suite, builds and benchmarks of minutes: too long for the suite itself
// (CI runs the suite and the checks, .ci/run). Each command line is checked
// instead: an npm script exists, a test file or path named exists, and the
// benchmark's options parse with the benchmark's own parsers
// (test/support/bench-args.ts), so that a renamed option or script fails here.

const contributing = new DocUnderTest('CONTRIBUTING.md');
const benchmarks = new DocUnderTest('docs/benchmarks.md');
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
const TSX = import.meta.resolve('tsx');

interface BenchLine {
  at: string;
  tool: string;
  args: string[];
  env: Record<string, string>;
}

/** Checks each command of the blocks; returns the benchmark lines to parse, and what is wrong. */
function check(doc: DocUnderTest, blocks: DocBlock[]): { bench: BenchLine[]; wrong: string[] } {
  const bench: BenchLine[] = [];
  const wrong: string[] = [];
  for (const b of blocks) {
    for (const [i, line] of b.text.split('\n').entries()) {
      for (const command of line
        .replace(/\s+#.*$/, '')
        .split('&&')
        .map((c) => c.trim())
        .filter((c) => c !== '')) {
        const at = `${doc.path}:${b.line + 1 + i}: ${command}`;
        const env: Record<string, string> = {};
        const words = command.split(/\s+/);
        while (/^[A-Z_]+=/.test(words[0]!)) {
          const [k, v] = words.shift()!.split('=') as [string, string];
          env[k] = v;
        }
        const [cmd, sub, ...rest] = words;
        if (cmd === 'npm' && (sub === 'install' || sub === 'ci') && rest.length === 0) continue;
        if (cmd === 'npm' && sub === 'test') {
          if (!SCRIPTS.test) wrong.push(`${at}: package.json has no test script`);
        } else if (cmd === 'npm' && sub === 'run') {
          const [script, dashes, ...args] = rest;
          if (!SCRIPTS[script!]) wrong.push(`${at}: package.json has no script ${script}`);
          if (dashes !== undefined && dashes !== '--') wrong.push(`${at}: options of an npm script go after --`);
          if (script === 'bench') bench.push({ at, tool: 'run', args, env });
          else if (args.length > 0) wrong.push(`${at}: no check for the options of ${script}`);
        } else if (cmd === 'npx' && sub === 'vitest' && rest[0] === 'run') {
          for (const file of rest.slice(1)) if (!existsSync(join(ROOT, file))) wrong.push(`${at}: ${file} does not exist`);
        } else if (cmd === 'git' && sub === 'diff') {
          for (const path of rest) if (!existsSync(join(ROOT, path))) wrong.push(`${at}: ${path} does not exist`);
        } else if (cmd === 'node' && /^dist\/bench\/[\w-]+\.js$/.test(sub ?? '')) {
          const tool = /([\w-]+)\.js$/.exec(sub!)![1]!;
          if (!existsSync(join(ROOT, 'bench', `${tool}.ts`))) wrong.push(`${at}: bench/${tool}.ts does not exist`);
          bench.push({ at, tool, args: rest, env });
        } else wrong.push(`${at}: test/docs-commands.test.ts has no check for this command: add one, or mark the block <!-- not run: why -->`);
      }
    }
    doc.ran(b);
  }
  return { bench, wrong };
}

/** Parses the benchmark's command lines with its own option parsers, in a child (commander exits on an error). */
async function parseBench(lines: BenchLine[]): Promise<string[]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', TSX, join(ROOT, 'test', 'support', 'bench-args.ts'), JSON.stringify(lines)], {
    cwd: ROOT,
  });
  const results = JSON.parse(stdout.slice(stdout.lastIndexOf('::results::') + '::results::'.length)) as { ok: boolean; error?: string }[];
  expect(results).toHaveLength(lines.length);
  return results.flatMap((r, i) => (r.ok ? [] : [`${lines[i]!.at}: ${r.error}`]));
}

describe('the commands of CONTRIBUTING.md and docs/benchmarks.md (issue 16)', () => {
  it('CONTRIBUTING.md: each npm script and test file it names exists', async () => {
    const { bench, wrong } = check(contributing, contributing.runnable('sh'));
    expect([...wrong, ...(await parseBench(bench))]).toEqual([]);
    contributing.expectEveryBlockRun();
  });

  it("docs/benchmarks.md: each command line parses with the benchmark's own options (not run: minutes each)", async () => {
    const blocks = benchmarks.runnable('sh');
    expect(blocks).toHaveLength(3);
    const { bench, wrong } = check(benchmarks, blocks);
    expect(bench.length).toBeGreaterThanOrEqual(14);
    expect([...wrong, ...(await parseBench(bench))]).toEqual([]);
    benchmarks.expectEveryBlockRun();
  });

  it('a bad option fails the check', async () => {
    const bad: BenchLine[] = [
      { at: 'x', tool: 'run', args: ['--sizez', '1k'], env: {} },
      { at: 'y', tool: 'small-syncs', args: ['--via', 'carrier-pigeon'], env: {} },
      { at: 'w', tool: 'write-through', args: ['--record-size', '999'], env: {} },
      { at: 'z', tool: 'encode', args: ['100k', '5'], env: { BENCH_RECORD_SIZE: '7' } },
    ];
    expect(await parseBench(bad)).toEqual([
      expect.stringMatching(/^x: exit [1-9]/),
      expect.stringMatching(/^y: exit [1-9]/),
      expect.stringMatching(/^w: exit [1-9]/),
      expect.stringMatching(/^z: .*record size/),
    ]);
  });
});
