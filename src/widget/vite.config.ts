import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The reconnect widget: one classic script (IIFE) served at /widget.js; integrators add a script tag, nothing to build. */
export default defineConfig({
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../dist/widget', import.meta.url)),
    emptyOutDir: true,
    lib: {
      entry: fileURLToPath(new URL('./widget.ts', import.meta.url)),
      formats: ['iife'],
      name: 'otpilotWidget',
      fileName: () => 'widget.js',
    },
  },
});
