import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

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
 * pgland's logger: JSON lines on stderr (stdout belongs to command output and
 * to the Singer and Airbyte protocols), readable lines when stderr is a TTY.
 */
export function createLogger(options: { level?: string; pretty?: boolean } = {}): Logger {
  // An empty PGLAND_LOG_LEVEL (`PGLAND_LOG_LEVEL= pgland …`) means the default, not a level pino rejects.
  const level = options.level ?? (process.env.PGLAND_LOG_LEVEL || 'info');
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: undefined };
  if (options.pretty ?? process.stderr.isTTY) {
    return pino(base, pretty({ destination: 2, sync: true, ignore: 'pid,hostname' }));
  }
  return pino(base, pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything, for library callers that bring none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
