import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths pino replaces with [redacted] wherever a config or connection lands in a log. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'url',
  '*.url',
  'sslkey',
  '*.sslkey',
  'config.password',
  'config.url',
  'config.sslkey',
  'ssh_tunnel.private_key',
  'ssh_tunnel.passphrase',
  'ssh_tunnel.password',
  '*.ssh_tunnel.private_key',
  '*.ssh_tunnel.passphrase',
  '*.ssh_tunnel.password',
];

/**
 * pgland's stderr, shared by the log and the CLI's progress line. A progress
 * line stays open (redrawn in place with \r, no newline); whatever is written
 * next ends it first, so that a log line never starts at its end.
 */
export const stderrLines = {
  open: false,
  /** Writes whole lines (ending in \n), after ending an open progress line. */
  write(text: string): boolean {
    if (this.open) process.stderr.write('\n');
    this.open = false;
    return process.stderr.write(text);
  },
  /** Shows `text` as the progress line, in place of the previous one. */
  status(text: string): void {
    process.stderr.write(`\r${text}\x1b[K`);
    this.open = true;
  },
  /** Ends the progress line, if one is open. */
  endStatus(): void {
    if (this.open) process.stderr.write('\n');
    this.open = false;
  },
};

/** Where log lines go: anything with write(text). */
export interface LogOutput {
  write(text: string): unknown;
}

/**
 * Errors are serialised with their stack; a plain `{ message, code }` given as
 * `err` (how pgland logs what the user should read) is kept as it is, rather
 * than becoming an "error" of type Object with an empty stack.
 */
function serializeErr(err: unknown): unknown {
  return err instanceof Error ? pino.stdSerializers.err(err) : err;
}

/**
 * pino-pretty, loaded when a logger is first made for a terminal: a run whose
 * stderr is a file or a pipe (a job, a benchmark, CI) is spared its modules.
 */
function loadPretty(): typeof import('pino-pretty') {
  return createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
}

/**
 * pgland's logger: JSON lines on stderr (stdout belongs to command output and
 * to the Singer and Airbyte protocols), one readable line per entry when
 * stderr is a TTY.
 */
export function createLogger(options: { level?: string; pretty?: boolean; output?: LogOutput } = {}): Logger {
  // An empty PGLAND_LOG_LEVEL (`PGLAND_LOG_LEVEL= pgland …`) means the default, not a level pino rejects.
  const level = options.level ?? (process.env.PGLAND_LOG_LEVEL || 'info');
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: undefined, serializers: { err: serializeErr } };
  if (options.pretty ?? process.stderr.isTTY) {
    const output = options.output ?? stderrLines;
    const format = loadPretty().prettyFactory({ ignore: 'pid,hostname', singleLine: true });
    return pino(base, { write: (line: string) => output.write(format(line)) });
  }
  if (options.output) {
    const output = options.output;
    return pino(base, { write: (line: string) => output.write(line) });
  }
  return pino(base, pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything, for library callers that bring none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
