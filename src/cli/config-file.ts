import { readFile } from 'node:fs/promises';
import { PglandError } from '../errors.js';

/** Reads a destination config file (JSON). Its content is never echoed: it may hold secrets. */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PglandError('config_invalid', `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
      hint: 'check the path given to --config',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const where = /position \d+.*$/.exec((err as Error).message)?.[0] ?? '';
    throw new PglandError('config_invalid', `config file ${path} is not valid JSON ${where}`.trim(), {
      hint: 'the config is one JSON object; see docs/configuration.md',
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PglandError('config_invalid', `config file ${path} must hold one JSON object`);
  }
  return value as Record<string, unknown>;
}
