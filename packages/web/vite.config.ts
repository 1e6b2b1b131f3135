import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

/**
 * src/early.ts is built as its own small entry and put first in <head> with `async`, so it runs as
 * soon as it arrives, while the main bundle is still loading and being parsed: it starts the first
 * page's requests. (A second module script in index.html would be merged into the main bundle.)
 */
function earlyScript(): Plugin {
  return {
    name: 'tether-early-script',
    transformIndexHtml: {
      order: 'post',
      handler(html, ctx) {
        const chunk = ctx.bundle && Object.values(ctx.bundle).find((c) => c.type === 'chunk' && c.name === 'early');
        const src = chunk ? '/' + chunk.fileName : ctx.bundle ? undefined : '/src/early.ts';
        if (!src) throw new Error('the early script was not built');
        return { html, tags: [{ tag: 'script', attrs: { type: 'module', async: true, src }, injectTo: 'head-prepend' }] };
      },
    },
  };
}

// The hub serves dist/ at / (same origin as the API); `npm run dev` proxies the API to a local hub.
export default defineConfig({
  plugins: [react(), earlyScript()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 800,
    rollupOptions: { input: { index: fileURLToPath(new URL('index.html', import.meta.url)), early: fileURLToPath(new URL('src/early.ts', import.meta.url)) } },
  },
  server: { proxy: { '/api': { target: 'http://127.0.0.1:8080', ws: true } } },
});
