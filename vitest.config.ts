import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration tests start real servers, run the go command and load the
    // machine; two workers on a 2-core box keeps them from starving each other.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'tests', include: ['test/**/*.test.ts'], exclude: ['test/system/**'], sequence: { groupOrder: 0 } } },
      // The real-systemd test boots a container and loads it: it runs after
      // the others (a later group), not beside their timing-sensitive loads.
      { extends: true, test: { name: 'system', include: ['test/system/**/*.test.ts'], sequence: { groupOrder: 1 } } },
    ],
  },
});
