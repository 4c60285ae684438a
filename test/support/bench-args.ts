import { parseOptions, parseSize, recordSizeArg } from '../../bench/options.js';
import { parseSmallSyncsOptions } from '../../bench/small-syncs-options.js';
import { parseWriteThroughOptions } from '../../bench/write-through-options.js';

// Run as a child by test/docs-commands.test.ts: checks that the benchmark's
// command lines of docs/benchmarks.md parse, without running them. Commander
// exits on a bad option: here process.exit throws instead, with the code.

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
process.exit = ((code?: number) => {
  throw new Exit(code ?? 0);
}) as typeof process.exit;

const lines = JSON.parse(process.argv[2]!) as { tool: string; args: string[]; env: Record<string, string> }[];
const results: { ok: boolean; error?: string }[] = [];
for (const { tool, args, env } of lines) {
  try {
    if (tool === 'run') parseOptions(['node', 'run.js', ...args]);
    else if (tool === 'small-syncs') parseSmallSyncsOptions(['node', 'small-syncs.js', ...args]);
    else if (tool === 'write-through') parseWriteThroughOptions(['node', 'write-through.js', ...args]);
    else if (tool === 'encode') {
      // encode.js <size> <reps> [cache dir], BENCH_RECORD_SIZE in the environment
      parseSize(args[0] ?? '100k');
      if (!(Number(args[1] ?? 5) >= 1)) throw new Error(`${args[1]} is not a number of repetitions`);
      recordSizeArg(env.BENCH_RECORD_SIZE);
    } else throw new Error(`no parser for ${tool}`);
    results.push({ ok: true });
  } catch (e) {
    results.push(e instanceof Exit && e.code === 0 ? { ok: true } : { ok: false, error: (e as Error).message });
  }
}
process.stdout.write('\n::results::' + JSON.stringify(results));
