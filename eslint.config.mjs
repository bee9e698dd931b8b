// ESLint for the whole checkout (`npm run lint`, run by .ci/run): typescript-eslint's type-checked rules on lib/,
// ESLint's recommended rules on the JavaScript of test/, scripts/, web/ and examples/. Formatting is Prettier's
// (.prettierrc.json): eslint-config-prettier turns off every rule that would argue with it.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Casts that tell the compiler to stop checking: `x as unknown as T` and `x as never`. typescript-eslint has no rule
// for the double cast, so these are AST selectors. A cast that is truly needed carries an eslint-disable comment
// that says why.
const CASTS = [
  {
    selector: "TSAsExpression[expression.type='TSAsExpression'][expression.typeAnnotation.type='TSUnknownKeyword']",
    message: 'A double cast `as unknown as T` hides a type error: type the value, or narrow it with a check.',
  },
  {
    selector: "TSAsExpression[typeAnnotation.type='TSNeverKeyword']",
    message: '`as never` turns off type checking for this value: type it instead.',
  },
];

export default defineConfig(
  // Built, installed, fetched or generated: none of it is written here.
  globalIgnores([
    'node_modules/',
    'dist/',
    'build/',
    'build-test/',
    '.sdk/',
    '.fixture-venv/',
    '.bench-models/',
    'prebuilds/',
    'tmp/',
    'docs/api/',
    'test/fixtures/',
    'test/output/',
  ]),
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,

  // lib/: the TypeScript, checked with its types (tsconfig.json).
  {
    files: ['lib/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // The "no function over ~120 lines" (issue 15, item 4); a closure counts with its nested functions.
      'max-lines-per-function': ['error', { max: 120, skipBlankLines: true, skipComments: true, IIFEs: true }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-syntax': ['error', ...CASTS],
      // `_name` marks a parameter that a signature needs and the body does not (tsc's noUnusedParameters agrees).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Off: a method is `async` because its contract is a promise (dispose(), the server's Backend), so that a throw
      // becomes a rejection, even where its body awaits nothing.
      '@typescript-eslint/require-await': 'off',
    },
  },

  // The JavaScript that runs in Node: CommonJS in test/ and *.cjs, ES modules in scripts/*.mjs.
  {
    files: ['**/*.js', '**/*.cjs'],
    ignores: ['web/**'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: { ...globals.node } },
  },
  {
    files: ['test/**/*.js'],
    languageOptions: { globals: { ...globals.mocha } },
  },
  {
    // Its functions passed to Playwright's page.evaluate() run in the page.
    files: ['test/browser.spec.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // The page of `multilora serve`: a classic browser script, no modules.
    files: ['web/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // What test/helpers/fuzz.js does on purpose, and says so with eslint-disable comments.
      'no-new-wrappers': 'error',
      'no-throw-literal': 'error',
    },
  },
  prettier,
);
