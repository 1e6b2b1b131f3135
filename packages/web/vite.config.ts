import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The hub serves dist/ at / (same origin as the API); `npm run dev` proxies the API to a local hub.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, assetsDir: 'assets', sourcemap: false, chunkSizeWarningLimit: 800 },
  server: { proxy: { '/api': { target: 'http://127.0.0.1:8080', ws: true } } },
});
