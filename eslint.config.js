// Lint: typescript-eslint with type information (the recommended-type-checked set), run by
// `npm test` and `npm run lint`. Layout is prettier's job (`npm run format:check`), not eslint's.
// typescript-eslint loads the `typescript` package's JS API (6.0.x); the compiler the build and
// typecheck scripts run is TypeScript 7 (`typescript-native`), which has no such API.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', 'build/', 'models/', 'bench/.work/', 'load-results/', 'loadtest/.typecheck-*/'],
  },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // The k6 scripts have their own project (k6's runtime, no Node types); everything else
        // is the test project, which includes src/.
        project: ['./loadtest/k6/tsconfig.json', './tsconfig.test.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // fastify tells plugins and handlers apart by their returning a promise (an `async register`
      // with no await is how a plugin says it needs no `done`), and our interfaces return
      // promises; an `async` without `await` is the contract here, not a mistake.
      '@typescript-eslint/require-await': 'off',
      // Shapes print as `1,3,224` in messages; the tests match that.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowArray: true }],
      // Forwarding a caught reason or `signal.reason` as it came is deliberate.
      '@typescript-eslint/prefer-promise-reject-errors': [
        'error',
        { allowThrowingAny: true, allowThrowingUnknown: true },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The chart tests walk helm's rendered YAML by path (`spec.template.spec.containers[0]`); the
    // objects are untyped data checked by kubernetes-models' schemas (k8s-validate.ts), and a wrong
    // path fails its assertion. Typing every path through the optional fields of the models'
    // interfaces would bury the assertions; these files alone read manifests as `any`.
    files: ['test/deploy/chart.test.ts', 'test/deploy/helm.ts', 'test/deploy/image.smoke.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
);
