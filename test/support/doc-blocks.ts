import { spawn } from 'node:child_process';

/** A fenced code block of a Markdown document. */
export interface DocBlock {
  /** The info string's first word (sh, json, …) and the rest of it ("not-run"). */
  lang: string;
  info: string;
  text: string;
  /** The line of the opening fence, from 1. */
  line: number;
}

/** The fenced blocks (``` only) of a Markdown document, in order. */
export function docBlocks(markdown: string): DocBlock[] {
  const blocks: DocBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    blocks.push({ lang: open[1] ?? '', info: open[2] ?? '', text: body.join('\n'), line: start + 1 });
  }
  return blocks;
}

/**
 * The blocks a docs test runs: every `sh` block not marked `not-run` (those
 * start servers or build images: the test starts its own server).
 */
export function runnableShell(blocks: DocBlock[]): DocBlock[] {
  return blocks.filter((b) => (b.lang === 'sh' || b.lang === 'bash') && !/\bnot-run\b/.test(b.info));
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
    ...blocks.map((b, i) => [`printf '\\n%s\\n' '${mark}${i}'; printf '\\n%s\\n' '${mark}${i}' >&2`, options.rewrite ? options.rewrite(b.text) : b.text].join('\n')),
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
