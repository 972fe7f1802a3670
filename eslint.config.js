'use strict';
// Flat config. CommonJS because the root package.json has no "type": "module".
const js = require('@eslint/js');
const globals = require('globals');
const tseslint = require('typescript-eslint');

module.exports = tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'frontend/dist/**',
      'data/**',
      '**/coverage/**',
      '**/*.d.ts',
    ],
  },
  js.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts', '**/*.cts'],
    extends: [...tseslint.configs.recommended],
  },
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    rules: {
      // `_name` marks a deliberately unused binding (callback parameters, destructuring rests).
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.ts', '**/*.mts', '**/*.cts'],
    rules: {
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests poke at raw venue JSON; typing every fixture shape would add noise, not safety.
    files: ['**/test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // CommonJS files: the pm2 process file and this config.
    files: ['**/*.cjs', 'ecosystem.config.js', 'eslint.config.js'],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    files: ['frontend/**/*.{ts,js}'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Services and libraries log through pino (brief §6.8); only the CLI and scripts talk to a terminal.
    files: ['services/*/src/**/*.{ts,js,mjs}', 'packages/*/src/**/*.{ts,js,mjs}'],
    ignores: ['packages/cli/**'],
    rules: { 'no-console': 'error' },
  },
);
