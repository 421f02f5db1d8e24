import { defineConfig } from 'vitest/config';

/**
 * The suite runs once per store: SQLite always, PostgreSQL when TEST_DATABASE_URL (or DATABASE_URL)
 * names a server. Each test server gets its own SQLite file or PostgreSQL schema, so files run in
 * parallel on both. Tests of pure modules (no store) run once, in the `unit` project; the tests that
 * drive Chromium run on SQLite only (what they check is the browser's side, the same on both stores).
 */
const postgresUrl = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
const UNIT = [
  'test/core.test.ts',
  'test/code-extract.test.ts',
  'test/webhook-destinations.test.ts',
  'test/fints-aqbanking.test.ts',
  'test/fints-wire.test.ts',
  'test/connector-plugins.test.ts',
  'test/sandbox-web.test.ts',
];
const BROWSER = ['test/dashboard-e2e.test.ts', 'test/reconnect-widget.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Each file starts its own servers on ephemeral ports with its own data folder, so files run in parallel.
    pool: 'forks',
    // Most of a test's time is spent waiting on servers, banks and browsers: two files at a time on
    // the 2-core CI machines (vitest's default there is one).
    maxWorkers: 2,
    reporters: process.env.CI ? ['default', 'junit'] : ['default'],
    outputFile: { junit: 'test-results/junit.xml' },
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      {
        extends: true,
        test: {
          name: 'sqlite',
          include: ['test/**/*.test.ts'],
          // Several processes sharing one store, and a database cut at the network: PostgreSQL only.
          exclude: [
            ...UNIT,
            'test/multi-process.test.ts',
            'test/db-outage.test.ts',
            'test/outbox-order.test.ts',
            'test/first-use-processes.test.ts',
            'test/compact-events-processes.test.ts',
          ],
          env: { OTPILOT_TEST_STORE: 'sqlite', DATABASE_URL: '' },
        },
      },
      ...(postgresUrl
        ? [
            {
              extends: true as const,
              test: {
                name: 'postgres',
                include: ['test/**/*.test.ts'],
                exclude: [...UNIT, ...BROWSER],
                env: { OTPILOT_TEST_STORE: 'postgres', TEST_DATABASE_URL: postgresUrl, DATABASE_URL: '' },
              },
            },
          ]
        : []),
    ],
  },
});
