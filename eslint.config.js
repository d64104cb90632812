// Lint for correctness, not style: typed rules that catch lost promises and misuse, no console in
// shipped code, no focused or skipped tests. Formatting is left to the editor.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: ['**/node_modules/**', '**/dist/**', 'data/**', 'coverage/**', '.tmp/**', 'test-results/**', '**/*.js', '**/*.mjs', '**/*.cjs'],
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    // warn: a directive for a rule that is off here (e.g. no-console in bench/) is harmless.
    linterOptions: { reportUnusedDisableDirectives: 'warn' },
    rules: {
      // Every promise is awaited, returned, .catch()ed or explicitly `void`ed.
      '@typescript-eslint/no-floating-promises': 'error',
      // No async callback where a sync one is expected (its rejection would be lost).
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: true, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      // Hygiene, not a bug: reported, never blocking.
      '@typescript-eslint/no-unused-vars': ['warn', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      'no-debugger': 'error',
      'no-var': 'error',
      'prefer-const': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // Shipped code logs through pino (injected child loggers), never console.
    files: ['apps/*/src/**/*.ts', 'packages/*/src/**/*.ts'],
    rules: { 'no-console': 'error', '@typescript-eslint/no-explicit-any': 'error' },
  },
  {
    files: ['**/test/**/*.ts', 'test/**/*.ts', '**/*.test.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        ...['describe', 'it', 'test'].flatMap((object) => [
          { object, property: 'only', message: 'No focused tests: the suite must run whole.' },
          { object, property: 'skip', message: 'No skipped tests: fix or delete it.' },
        ]),
      ],
    },
  },
);
