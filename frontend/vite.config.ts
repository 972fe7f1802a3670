import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

// The API (and its /ws) listens on POLYBOT_API_PORT (default 8000); the dev server only proxies to it,
// so `pnpm dev` here gives hot reload against a running stack.
const apiPort = process.env.POLYBOT_API_PORT ?? '8000';
const apiTarget = `http://127.0.0.1:${apiPort}`;

export default defineConfig({
  // The API serves the built dashboard under /ui, so every asset URL must carry that prefix.
  base: '/ui/',
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: true,
    proxy: {
      '/api': { target: apiTarget, changeOrigin: true },
      '/ws': { target: apiTarget, ws: true, changeOrigin: true },
    },
  },
  preview: { host: '127.0.0.1', port: 4173 },
});
