import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '**/.data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'no-console': 'off',
      // Test servers declare the object their request handler reads before it exists.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Input validation matches control characters on purpose (paths, headers).
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.mjs', 'scripts/**', 'packages/server/bin/**'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
