import { openDestination } from '../destination.js';
import type { Logger } from '../log.js';
import { aboutText } from '../protocols/about.js';
import { singerConfig } from '../protocols/config.js';
import { runSinger } from '../protocols/singer.js';
import { readConfigFile } from './config-file.js';
import { EXIT } from './exit.js';
import { cancelOnSignals } from './signals.js';

/** Writes one line to stdout, waiting for the pipe when it is full. */
export async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(line + '\n')) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

/**
 * `pgland singer --config F`: a Singer target. Exit 0 when the input was
 * landed (rejected lines and problems are recorded and logged: a non-zero
 * exit would fail the whole Meltano pipeline), 1 when it stopped, 2 on a bad
 * config.
 */
export async function singerCommand(flags: { config?: string; about?: boolean; format?: string }, log: Logger): Promise<number> {
  if (flags.about) {
    const format = flags.format ?? 'text';
    if (format !== 'text' && format !== 'json' && format !== 'markdown') {
      process.stderr.write(`--format must be text, json or markdown, not ${JSON.stringify(format)}\n`);
      return EXIT.usage;
    }
    await writeLine(aboutText(format));
    return EXIT.ok;
  }
  if (flags.config === undefined) {
    process.stderr.write("error: required option '--config <file>' not specified (or --about)\n");
    return EXIT.usage;
  }
  const { destination, options } = singerConfig(await readConfigFile(flags.config));
  const dest = await openDestination(destination, { log, env: process.env });
  const cancel = cancelOnSignals(log);
  try {
    const result = await runSinger(dest, { input: process.stdin, emit: writeLine, log, signal: cancel.signal }, options);
    log.info(landedSummary(result), 'singer: input landed');
    return EXIT.ok;
  } finally {
    cancel.dispose();
    await dest.close();
  }
}

/** What a protocol run landed, per stream: the line logged when its input is done (Singer and Airbyte alike). */
export function landedSummary(result: Awaited<ReturnType<typeof runSinger>>): Record<string, unknown> {
  return {
    records: result.records,
    states: result.statesEmitted,
    streams: result.streams.map((s) => ({
      stream: s.stream,
      table: s.table,
      runs: s.runs,
      inserted: s.counts.inserted,
      updated: s.counts.updated,
      rejected: s.counts.rejected,
      problems: s.counts.problems,
      retired: s.retired,
    })),
  };
}
