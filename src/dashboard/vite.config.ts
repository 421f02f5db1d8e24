import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The operator web app, built into dist/dashboard and served by the API server at /app/. */
export default defineConfig({
  root: here,
  base: '/app/',
  plugins: [react()],
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    // Served by our own server to our own users: small enough that one chunk is fine.
    chunkSizeWarningLimit: 800,
  },
});
