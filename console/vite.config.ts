import { defineConfig } from 'vite';

// The gridwork API the dev server and `vite preview` proxy to.
const api = process.env.GW_API_URL ?? 'http://127.0.0.1:18090';
const proxy = {
  '/v1': { target: api, changeOrigin: false },
  '/openapi.json': { target: api },
};

// The policy gridwork applies at /console/ (services/mediation/src/console.rs,
// word for word); preview sends it too, so the browser tests fail on any
// inline script or style.
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src blob:; " +
  "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; " +
  "frame-ancestors 'none'";

export default defineConfig({
  base: '/console/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0, // no data: URLs for assets: everything is a hashed file
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    sourcemap: false,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/[name]-[hash].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  server: { port: 5173, strictPort: false, proxy },
  preview: {
    port: Number(process.env.PREVIEW_PORT ?? 4173),
    strictPort: true,
    proxy,
    headers: { 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff' },
  },
});
