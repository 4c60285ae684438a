import { PglandError } from '../errors.js';
import type { RecordEnvelope } from '../input/envelope.js';
import { textValue } from '../input/json-text.js';
import { pathText } from './json-path.js';

/**
 * Mappings of the customer's columns to values (docs/own-tables.md): a path
 * into the record, a constant, or one of a few functions. Paths are walked in
 * Node over the parsed record only, by own properties: a mapping can reach
 * nothing but the record it is given (no prototype, no other record, no
 * environment), and no mapping text ever reaches SQL.
 */

/** The static type of a mapped value, as far as it is known before any record is read. */
export type ValueType = 'text' | 'number' | 'boolean' | 'timestamp' | 'any';

export type Expr =
  | { kind: 'path'; root: Root; steps: (string | number)[]; text: string }
  | { kind: 'const'; value: string | number | boolean | null; text: string }
  | { kind: 'call'; fn: Fn; args: Expr[]; text: string };

type Root = 'id' | 'last_modified_at' | 'is_deleted' | 'data' | 'raw_data';
type Fn = 'now' | 'lower' | 'upper' | 'trim' | 'coalesce';

const ROOTS: readonly Root[] = ['id', 'last_modified_at', 'is_deleted', 'data', 'raw_data'];
/** Functions and how many arguments each takes (min, max). */
const FUNCTIONS: Record<Fn, [number, number]> = { now: [0, 0], lower: [1, 1], upper: [1, 1], trim: [1, 1], coalesce: [1, 16] };

export interface Mapping {
  column: string;
  expr: Expr;
}

function mappingError(text: string, why: string): PglandError {
  return new PglandError('mapping_invalid', `mapping ${JSON.stringify(text)}: ${why}`, {
    hint:
      'a mapping is column=value, the value a path into the record (id, last_modified_at, is_deleted, data.email, ' +
      "raw_data.FirstName, data.emails[0].address), a constant ('text', 42, true, null), or now(), lower(v), upper(v), trim(v), coalesce(v, …)",
  });
}

/** A tiny recursive-descent parser over one mapping's value. */
class Parser {
  private i = 0;
  constructor(
    private readonly text: string,
    private readonly whole: string,
  ) {}

  parse(): Expr {
    const e = this.expr();
    this.space();
    if (this.i < this.text.length) throw mappingError(this.whole, `unexpected ${JSON.stringify(this.text.slice(this.i, this.i + 10))}`);
    return e;
  }

  private space(): void {
    while (this.i < this.text.length && /\s/.test(this.text[this.i]!)) this.i++;
  }

  private expr(): Expr {
    this.space();
    const start = this.i;
    const c = this.text[this.i];
    if (c === "'") return { kind: 'const', value: this.quoted(), text: this.text.slice(start, this.i) };
    const num = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(this.text.slice(this.i));
    if (num) {
      this.i += num[0].length;
      return { kind: 'const', value: Number(num[0]), text: num[0] };
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.i))?.[0];
    if (!word) throw mappingError(this.whole, 'expected a path, a constant or a function');
    this.i += word.length;
    this.space();
    if (this.text[this.i] === '(') return this.call(word, start);
    if (word === 'true' || word === 'false') return { kind: 'const', value: word === 'true', text: word };
    if (word === 'null') return { kind: 'const', value: null, text: word };
    return this.path(word, start);
  }

  /** A single-quoted string; '' inside stands for one quote, as in SQL. */
  private quoted(): string {
    let out = '';
    for (this.i++; this.i < this.text.length; this.i++) {
      const ch = this.text[this.i]!;
      if (ch !== "'") {
        out += ch;
        continue;
      }
      if (this.text[this.i + 1] === "'") {
        out += "'";
        this.i++;
        continue;
      }
      this.i++;
      return out;
    }
    throw mappingError(this.whole, 'a quoted constant is not closed');
  }

  private call(name: string, start: number): Expr {
    const fn = name.toLowerCase() as Fn;
    if (!Object.hasOwn(FUNCTIONS, fn)) throw mappingError(this.whole, `unknown function ${name}(); the functions are ${Object.keys(FUNCTIONS).join(', ')}`);
    this.i++; // (
    const args: Expr[] = [];
    this.space();
    if (this.text[this.i] === ')') this.i++;
    else {
      for (;;) {
        args.push(this.expr());
        this.space();
        const ch = this.text[this.i++];
        if (ch === ')') break;
        if (ch !== ',') throw mappingError(this.whole, `expected , or ) in ${name}()`);
      }
    }
    const [min, max] = FUNCTIONS[fn];
    if (args.length < min || args.length > max) throw mappingError(this.whole, `${fn}() takes ${min === max ? min : `${min} to ${max}`} argument(s)`);
    if (args.some((a) => a.kind === 'call' && a.fn === 'now'))
      throw mappingError(this.whole, `now() is the server's time and cannot be an argument of ${fn}()`);
    return { kind: 'call', fn, args, text: this.text.slice(start, this.i) };
  }

  private path(first: string, start: number): Expr {
    if (!ROOTS.includes(first as Root)) {
      throw mappingError(this.whole, `a path starts at one of ${ROOTS.join(', ')} (the record's fields), not ${JSON.stringify(first)}`);
    }
    const root = first as Root;
    const steps: (string | number)[] = [];
    for (;;) {
      const ch = this.text[this.i];
      if (ch === '.') {
        this.i++;
        const key = /^[^.[\]\s(),']+/.exec(this.text.slice(this.i))?.[0];
        if (!key) throw mappingError(this.whole, 'a dot must be followed by a field name');
        steps.push(key);
        this.i += key.length;
      } else if (ch === '[') {
        const m = /^\[(\d{1,9})\]/.exec(this.text.slice(this.i));
        if (!m) throw mappingError(this.whole, 'an index is written [0], [1], …');
        steps.push(Number(m[1]));
        this.i += m[0].length;
      } else break;
    }
    if (steps.length > 0 && root !== 'data' && root !== 'raw_data') throw mappingError(this.whole, `${root} has no fields`);
    return { kind: 'path', root, steps, text: this.text.slice(start, this.i) };
  }
}

export function parseExpr(text: string, whole = text): Expr {
  return new Parser(text, whole).parse();
}

/** "column=value" as given to --map. */
export function parseMapping(spec: string): Mapping {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw mappingError(spec, 'write it as column=value, e.g. email=data.email');
  const column = spec.slice(0, eq);
  return { column, expr: parseExpr(spec.slice(eq + 1), spec) };
}

/** A mapping file: one JSON object of column → value text. */
export function mappingsFromObject(value: unknown, source: string): Mapping[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PglandError('mapping_invalid', `${source}: a mapping file is one JSON object of "column": "value"`, {
      hint: 'e.g. {"email": "data.email", "first_name": "trim(raw_data.FirstName)"}',
    });
  }
  return Object.entries(value as Record<string, unknown>).map(([column, v]) => {
    if (typeof v !== 'string') throw mappingError(`${column}=${JSON.stringify(v)}`, `${source}: each value is a string of mapping text`);
    return { column, expr: parseExpr(v, `${column}=${v}`) };
  });
}

/** What is known of a value's type before reading: the fixed fields and functions, and constants. */
export function staticType(e: Expr): ValueType {
  switch (e.kind) {
    case 'path':
      if (e.root === 'id') return 'text';
      if (e.root === 'last_modified_at') return 'timestamp';
      if (e.root === 'is_deleted') return 'boolean';
      return 'any';
    case 'const':
      return e.value === null ? 'any' : typeof e.value === 'string' ? 'text' : typeof e.value === 'number' ? 'number' : 'boolean';
    case 'call':
      if (e.fn === 'now') return 'timestamp';
      if (e.fn === 'coalesce') {
        const types = new Set(e.args.map(staticType).filter((t) => t !== 'any'));
        return types.size === 1 ? [...types][0]! : 'any';
      }
      return 'text';
  }
}

/** now() is evaluated by the server (the transaction's time), not staged per record. */
export function isServerNow(e: Expr): boolean {
  return e.kind === 'call' && e.fn === 'now';
}

/** Whether the expression is exactly the record's last_modified_at (the column then orders versions). */
export function isLastModified(e: Expr): boolean {
  return e.kind === 'path' && e.root === 'last_modified_at';
}

export function isDeletedFlag(e: Expr): boolean {
  return e.kind === 'path' && e.root === 'is_deleted';
}

/** Follows a path by own properties only. */
function walk(value: unknown, steps: readonly (string | number)[]): unknown {
  let v = value;
  for (const step of steps) {
    if (v === null || typeof v !== 'object') return undefined;
    if (typeof step === 'number') {
      if (!Array.isArray(v)) return undefined;
      v = v[step];
    } else {
      if (Array.isArray(v) || !Object.hasOwn(v, step)) return undefined;
      v = (v as Record<string, unknown>)[step];
    }
  }
  return v;
}

/** A mapped value for one record (a JSON value; undefined when the path is missing). */
export function evaluate(e: Expr, r: RecordEnvelope): unknown {
  switch (e.kind) {
    case 'const':
      return e.value;
    case 'path':
      switch (e.root) {
        case 'id':
          return r.id;
        case 'last_modified_at':
          return r.lastModifiedAt;
        case 'is_deleted':
          return r.isDeleted;
        case 'data':
          return walk(r.data, e.steps);
        case 'raw_data':
          return walk(r.rawData, e.steps);
      }
      return undefined;
    case 'call': {
      if (e.fn === 'coalesce') {
        for (const a of e.args) {
          const v = evaluate(a, r);
          if (v !== null && v !== undefined) return v;
        }
        return null;
      }
      const v = evaluate(e.args[0]!, r);
      if (typeof v !== 'string') return v === undefined ? null : v;
      return e.fn === 'lower' ? v.toLowerCase() : e.fn === 'upper' ? v.toUpperCase() : v.trim();
    }
  }
}

/** A mapping compiled once per run: the value for a record, and (for a path into data or raw_data) its JSON text as sent. */
export interface Accessor {
  value: (r: RecordEnvelope) => unknown;
  /** Defined for a path into data or raw_data: the reached value's text as sent, undefined when the path finds nothing or the record has no texts. */
  text?: (r: RecordEnvelope) => string | undefined;
}

/** Returned by a text finder for a record that was not scanned (no member texts): the parsed value is walked instead. */
const UNSCANNED = null;

/**
 * The text finder of a path into data or raw_data: the text as sent of what
 * the path reaches (json-path.ts), undefined when it reaches nothing, UNSCANNED
 * when the record has no texts to follow it in.
 */
function textFinder(root: 'data' | 'raw_data', steps: readonly (string | number)[]): (r: RecordEnvelope) => string | undefined | typeof UNSCANNED {
  const first = steps[0];
  if (root === 'data') {
    // data is an object or absent ({}); a scanned line has its members' texts.
    if (first === undefined) return (r) => (r.dataMembers === undefined ? UNSCANNED : r.dataText);
    if (typeof first === 'number') return (r) => (r.dataMembers === undefined ? UNSCANNED : undefined);
    if (steps.length === 1) return (r) => (r.dataMembers === undefined ? UNSCANNED : r.dataMembers.get(first));
    return (r) => {
      if (r.dataMembers === undefined) return UNSCANNED;
      const t = r.dataMembers.get(first);
      return t === undefined ? undefined : pathText(t, steps, 1);
    };
  }
  // raw_data is any JSON value; without its text (absent, or a line read by JSON.parse) the parsed value is walked.
  if (typeof first === 'string') {
    return (r) => {
      if (r.rawText === undefined) return UNSCANNED;
      if (r.rawText.charCodeAt(0) !== 0x7b) return undefined;
      const t = r.rawMembers?.get(first);
      return t === undefined ? undefined : pathText(t, steps, 1);
    };
  }
  return (r) => (r.rawText === undefined ? UNSCANNED : pathText(r.rawText, steps));
}

/**
 * Compiles an expression to a function of the record that gives what
 * evaluate() gives. A path into data or raw_data is followed in the text as
 * sent (a scanned record, envelope-scan.ts): only the value it reaches is
 * read, and nothing is parsed but that value; a record without texts is
 * walked as before.
 */
export function compile(e: Expr): Accessor {
  switch (e.kind) {
    case 'const': {
      const v = e.value;
      return { value: () => v };
    }
    case 'path': {
      const { root, steps } = e;
      if (root === 'id') return { value: (r) => r.id };
      if (root === 'last_modified_at') return { value: (r) => r.lastModifiedAt };
      if (root === 'is_deleted') return { value: (r) => r.isDeleted };
      const find = textFinder(root, steps);
      const parsed = root === 'data' ? (r: RecordEnvelope): unknown => walk(r.data, steps) : (r: RecordEnvelope): unknown => walk(r.rawData, steps);
      return {
        value: (r) => {
          const t = find(r);
          return t === UNSCANNED ? parsed(r) : t === undefined ? undefined : textValue(t);
        },
        text: (r) => find(r) ?? undefined,
      };
    }
    case 'call': {
      // now() is the server's time: never staged, never read here.
      if (e.fn === 'now') return { value: () => null };
      const args = e.args.map((a) => compile(a).value);
      if (e.fn === 'coalesce') {
        return {
          value: (r) => {
            for (const a of args) {
              const v = a(r);
              if (v !== null && v !== undefined) return v;
            }
            return null;
          },
        };
      }
      const arg = args[0]!;
      const fn = e.fn;
      return {
        value: (r) => {
          const v = arg(r);
          if (typeof v !== 'string') return v === undefined ? null : v;
          return fn === 'lower' ? v.toLowerCase() : fn === 'upper' ? v.toUpperCase() : v.trim();
        },
      };
    }
  }
}
