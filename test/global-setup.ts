import { execFileSync } from 'node:child_process';

/** Tests that start the real CLI as a separate process need dist/ to match src/. */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}
