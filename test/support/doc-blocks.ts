import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** The repository's root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A fenced code block of a Markdown document. */
export interface DocBlock {
  /** The info string's first word (sh, json, …) and the rest of it. */
  lang: string;
  info: string;
  text: string;
  /** The line of the opening fence, from 1. */
  line: number;
  /** Why no test runs it: the `<!-- not run: … -->` comment on the line before the fence. */
  notRun?: string;
}

/** The marker of a block no test runs, with its reason, on the line before the fence. */
export const NOT_RUN = /^\s*<!--\s*not run:\s*(.*?)\s*-->\s*$/;

/**
 * The fenced blocks (```, indented by up to three spaces, as in a list) of a
 * Markdown document, in order; an indented block's lines lose that indent.
 */
export function docBlocks(markdown: string): DocBlock[] {
  const blocks: DocBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^( {0,3})```(\S*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const indent = open[1]!.length;
    const body: string[] = [];
    for (i++; i < lines.length && !/^ {0,3}```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.slice(Math.min(indent, /^ */.exec(lines[i]!)![0].length)));
    const notRun = start > 0 ? NOT_RUN.exec(lines[start - 1]!)?.[1] : undefined;
    blocks.push({ lang: open[2] ?? '', info: open[3] ?? '', text: body.join('\n'), line: start + 1, ...(notRun !== undefined ? { notRun } : {}) });
  }
  return blocks;
}

/**
 * One document under test: its blocks, and which of them the test has run.
 * A docs test calls `ran()` for each block it ran (or checked against what
 * pgland does), and ends with `expectEveryBlockRun()`: a block added to the
 * document without a test, or a `<!-- not run: … -->` marker, fails there.
 */
export class DocUnderTest {
  readonly blocks: DocBlock[];
  readonly text: string;
  private readonly done = new Set<number>();

  constructor(readonly path: string) {
    this.text = readFileSync(join(ROOT, path), 'utf8');
    this.blocks = docBlocks(this.text);
  }

  /** The blocks not marked as not run, of these languages (every language when none is given). */
  runnable(...langs: string[]): DocBlock[] {
    return this.blocks.filter((b) => b.notRun === undefined && (langs.length === 0 || langs.includes(b.lang)));
  }

  /** Notes blocks as run; returns them. */
  ran<T extends DocBlock | DocBlock[]>(blocks: T): T {
    for (const b of Array.isArray(blocks) ? blocks : [blocks]) this.done.add(b.line);
    return blocks;
  }

  /** Fails, naming each block not marked and not run. */
  expectEveryBlockRun(): void {
    const missed = this.runnable().filter((b) => !this.done.has(b.line));
    expect(
      missed.map((b) => `${this.path}:${b.line} (\`\`\`${b.lang})`),
      `blocks of ${this.path} that its test does not run: run them, or mark each with <!-- not run: why --> on the line before (CONTRIBUTING.md, "Docs are executable")`,
    ).toEqual([]);
  }
}

export interface BlockRun {
  block: DocBlock;
  stdout: string;
}

export interface ScriptResult {
  code: number | null;
  /** Each block that ran to its end, with what it printed. */
  done: BlockRun[];
  /** The block that failed, if one did, and what it printed. */
  failed?: BlockRun;
  stderr: string;
}

/**
 * Runs blocks in order as ONE bash script (`set -euo pipefail`), so that the
 * variables one block sets ($D, $run) are there for the next, as a reader
 * pasting them would have them. `curl` fails on an HTTP error (with its
 * body) rather than printing it and going on. `rewrite` adapts a block to
 * the test's server (its port, say) and nothing else.
 */
export function runBlocks(
  blocks: DocBlock[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; rewrite?: (text: string) => string },
): Promise<ScriptResult> {
  const mark = `::block-${process.pid}-`;
  const script = [
    'set -euo pipefail',
    'curl() { command curl --fail-with-body "$@"; }',
    // Each mark on a line of its own: an answer printed without a final newline must not hide it.
    ...blocks.map((b, i) =>
      [`printf '\\n%s\\n' '${mark}${i}'; printf '\\n%s\\n' '${mark}${i}' >&2`, options.rewrite ? options.rewrite(b.text) : b.text].join('\n'),
    ),
    `printf '\\n%s\\n' '${mark}end'`,
  ].join('\n');
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const parts = stdout.split(new RegExp(`^${mark}`, 'm')).slice(1);
      const done: BlockRun[] = [];
      let failed: BlockRun | undefined;
      for (const part of parts) {
        const nl = part.indexOf('\n');
        const tag = part.slice(0, nl === -1 ? undefined : nl);
        if (tag === 'end') break;
        const block = blocks[Number(tag)]!;
        done.push({ block, stdout: nl === -1 ? '' : part.slice(nl + 1) });
      }
      // The last block that started did not reach the next mark: it failed.
      if (code !== 0 && done.length > 0) failed = done.pop()!;
      resolve({ code, done, ...(failed ? { failed } : {}), stderr });
    });
  });
}
