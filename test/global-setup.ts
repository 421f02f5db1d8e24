import { execFileSync } from 'node:child_process';

/**
 * Tests that start the real CLI as a separate process need dist/ to match src/, and the browser
 * tests need the dashboard built into dist/dashboard: the two steps of `npm run build`, minus type
 * checking (that is `npm run lint`'s job, and a type error must not hide what the tests would say).
 */
export default function setup(): void {
  // Each store's project runs this setup; one build serves both.
  if (process.env.OTPILOT_TEST_BUILT === '1') return;
  process.env.OTPILOT_TEST_BUILT = '1';
  // vitest sets NODE_ENV=test, which would make Vite bundle React's development build.
  const run = (args: string[]) =>
    execFileSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production' } });
  run(['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--noCheck']);
  run(['node_modules/vite/bin/vite.js', 'build', '--config', 'src/dashboard/vite.config.ts']);
  run(['node_modules/vite/bin/vite.js', 'build', '--config', 'src/widget/vite.config.ts']);
}
