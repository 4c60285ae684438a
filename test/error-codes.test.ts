import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RETRYABLE_PGLAND_CODES } from '../src/connection/retry.js';
import { ERROR_CODES, isErrorCode, type ErrorCode } from '../src/error-codes.js';
import { PglandError } from '../src/errors.js';

// Issue 16: one table of error codes; docs/errors.md is generated from it.

const DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url));
const START = '<!-- generated from src/error-codes.ts: PGLAND_UPDATE_ERRORS_DOC=1 npx vitest run test/error-codes.test.ts -->';
const END = '<!-- end of the generated table -->';

/** A Markdown table cell: a pipe would end the cell, a line break the row. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function table(): string {
  const rows = (Object.keys(ERROR_CODES) as ErrorCode[]).sort().map((code) => {
    const c = ERROR_CODES[code];
    return `| \`${code}\` | ${c.status} | ${c.retryable ? 'yes' : 'no'} | ${cell(c.cause)} | ${cell(c.fix)} |`;
  });
  return ['| Code | HTTP | Retryable | Cause | Fix |', '|---|---|---|---|---|', ...rows].join('\n');
}

describe('error codes (issue 16)', () => {
  it('docs/errors.md lists every code with its status, retryable, cause and fix', () => {
    const doc = readFileSync(DOC, 'utf8');
    const from = doc.indexOf(START);
    const to = doc.indexOf(END);
    expect(from, `docs/errors.md has lost its marker ${START}`).toBeGreaterThan(-1);
    expect(to, `docs/errors.md has lost its marker ${END}`).toBeGreaterThan(from);
    const expected = `${doc.slice(0, from + START.length)}\n\n${table()}\n\n${doc.slice(to)}`;
    if (process.env.PGLAND_UPDATE_ERRORS_DOC === '1') writeFileSync(DOC, expected);
    expect(readFileSync(DOC, 'utf8'), 'docs/errors.md is out of date: run this test with PGLAND_UPDATE_ERRORS_DOC=1').toBe(expected);
  });

  it('gives every code a status, a cause and a fix', () => {
    for (const [code, c] of Object.entries(ERROR_CODES)) {
      expect(code, code).toMatch(/^[a-z][a-z_]*[a-z]$/);
      expect(c.status >= 400 && c.status <= 599, code).toBe(true);
      expect(c.cause.length, code).toBeGreaterThan(10);
      expect(c.fix.length, code).toBeGreaterThan(5);
    }
  });

  it('lists only codes pgland gives: each is named somewhere in src/', () => {
    const src = fileURLToPath(new URL('../src/', import.meta.url));
    const text = readdirSync(src, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('error-codes.ts'))
      .map((f) => readFileSync(join(src, f), 'utf8'))
      .join('\n');
    const unused = Object.keys(ERROR_CODES).filter((code) => !text.includes(`'${code}'`));
    expect(unused, 'codes of src/error-codes.ts that no file of src/ gives').toEqual([]);
  });

  it('retries exactly the codes the table marks retryable', () => {
    const marked = Object.entries(ERROR_CODES)
      .filter(([, c]) => c.retryable)
      .map(([code]) => code);
    expect([...RETRYABLE_PGLAND_CODES].sort()).toEqual(marked.sort());
    expect(RETRYABLE_PGLAND_CODES).toContain('tunnel_closed');
    expect(RETRYABLE_PGLAND_CODES).not.toContain('auth_failed');
  });

  it('tells a code of the table from any other string', () => {
    expect(isErrorCode('tunnel_closed')).toBe(true);
    expect(isErrorCode('batch_failed')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode(undefined)).toBe(false);
    // @ts-expect-error a code outside the table does not compile
    expect(new PglandError('batch_failed', 'x').code).toBe('batch_failed');
  });
});
