// npm run lint: typescript-eslint with the type-aware rules that catch real
// bugs (a promise nobody awaits, an async callback where a sync one is
// expected), import cycles, and the layers of src/ (LAYERS below, explained
// in CONTRIBUTING.md).
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** Anything in src/ may import these: they depend on nothing of pgland's. */
const FOUNDATIONS = ['errors.ts', 'error-codes.ts', 'log.ts', 'package.ts', 'lazy.ts', 'node-flags.ts', 'sql'];

/**
 * What each part of src/ may import besides itself and FOUNDATIONS, read off
 * the imports of the day the rule was written. The pipeline runs one way:
 * input → encode → stage → merge, orchestrated by load; destination.ts is the
 * library's entry, protocols/service/cli sit on top, and only cli (and the
 * package's index.ts) may import cli's neighbours freely; nothing imports cli.
 * A path with a file name allows that file only: each is a current exception,
 * small enough to name, that a later move can remove.
 */
const LAYERS = {
  // Column types only (type imports), which live beside the value encoder.
  catalog: ['encode/values.ts'],
  // The envelope checks timestamps and JSON depth with the encoder's own tests,
  // so that a record the input accepts is one the encoder can write.
  input: ['encode/values.ts'],
  encode: ['catalog', 'input'],
  stage: ['catalog'],
  merge: ['catalog', 'stage'],
  schema: ['catalog', 'encode'],
  // The default longest line is a setting.
  config: ['input/lines.ts'],
  connection: ['config'],
  embedded: [],
  load: ['catalog', 'connection', 'encode', 'input', 'merge', 'schema', 'stage'],
  into: ['connection', 'encode', 'input', 'load'],
  // read's output formats a cursor as the protocols' envelope does.
  read: ['config', 'connection', 'encode', 'protocols/envelope.ts'],
  query: ['connection', 'read'],
  // A load closes the file input the library opened (fileInput).
  'destination.ts': ['catalog', 'config', 'connection', 'input/file-chunks.ts', 'into', 'load', 'merge', 'schema'],
  protocols: ['catalog', 'config', 'connection', 'destination.ts', 'encode', 'input', 'load', 'merge', 'schema'],
  service: ['catalog', 'config', 'connection', 'destination.ts', 'embedded', 'encode', 'input', 'load', 'merge', 'query', 'read', 'schema'],
  'index.ts': ['*'],
  cli: ['*'],
};

/** import-x/no-restricted-paths zones: for each part, every part it may not import. */
function layerZones() {
  const parts = [...Object.keys(LAYERS), ...FOUNDATIONS];
  const zones = [];
  for (const [part, allowed] of Object.entries(LAYERS)) {
    if (allowed.includes('*')) continue;
    for (const other of parts) {
      if (other === part || FOUNDATIONS.includes(other)) continue;
      if (other === 'cli' || other === 'index.ts' || !allowed.some((a) => a === other || a.startsWith(`${other}/`))) {
        const files = allowed.filter((a) => a.startsWith(`${other}/`)).map((a) => `./${a.slice(other.length + 1)}`);
        zones.push({
          target: `./src/${part}`,
          from: `./src/${other}`,
          ...(files.length ? { except: files } : {}),
          message: `src/${part} may not import src/${other}${files.length ? ` (except ${files.join(', ')})` : ''}: see the layers in CONTRIBUTING.md`,
        });
      }
    }
  }
  return zones;
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.pgland/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      // The console (web/) is its own TypeScript project: browser libraries, bundler resolution.
      parserOptions: { project: ['./tsconfig.typecheck.json', './web/tsconfig.json'], tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      // The plugin's TypeScript settings (which parser reads a dependency),
      // with the resolver that maps NodeNext's './x.js' to './x.ts'.
      ...Object.fromEntries(Object.entries(importX.flatConfigs.typescript.settings).filter(([k]) => k !== 'import-x/resolver')),
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.typecheck.json' })],
    },
    rules: {
      // Bugs the types show.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // An 'error' event's payload is typed any; passing it on is right.
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/no-for-in-array': 'error',
      '@typescript-eslint/no-implied-eval': 'error',
      '@typescript-eslint/no-base-to-string': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // tsc's noUnusedLocals/noUnusedParameters report these (npm run typecheck).
      '@typescript-eslint/no-unused-vars': 'off',
      'import-x/no-cycle': 'error',
      'import-x/no-self-import': 'error',
      'import-x/no-restricted-paths': ['error', { zones: layerZones() }],
    },
  },
  {
    // The benchmark's prototype encoders stringify JSON scalars they know are
    // scalars, as the unknown-typed values of a parsed record.
    files: ['bench/**/*.ts'],
    rules: { '@typescript-eslint/no-base-to-string': 'off' },
  },
  {
    // The console reads JSON answers of the API (described by docs/openapi.json)
    // as loosely typed records and checks the fields it shows where it shows
    // them; typing every answer twice, here and in the OpenAPI document, is
    // not worth it until the document generates the types.
    files: ['web/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
