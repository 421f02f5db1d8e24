import { defineConfig } from 'vitest/config';

/** `npm run screenshots`: refreshes docs/screenshots (SQLite store; not part of `npm test`). */
export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    include: ['test/**/*.shots.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    env: { OTPILOT_TEST_STORE: 'sqlite', DATABASE_URL: '', SCREENSHOT_DIR: process.env.SCREENSHOT_DIR ?? 'docs/screenshots' },
  },
});
