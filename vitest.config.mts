import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['polybot-source'] },
  ssr: { resolve: { conditions: ['polybot-source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests spawn whole stacks; on a loaded 2-core machine too many at once starve each other.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
