/// <reference types="vitest/config" />
// Build and test configuration for the Sealpost web UI.
// The output (ui/dist) is loaded by the Tauri shell under a strict CSP:
// no inline scripts or styles, no data: fonts, nothing remote.
import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

/** The CSP the Tauri shell enforces; `vite preview` sends it too so screenshots prove the UI runs under it. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src ipc: http://ipc.localhost";

export default defineConfig({
  plugins: [preact()],
  clearScreen: false,
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  preview: {
    host: "127.0.0.1",
    port: 4173,
    strictPort: true,
    headers: { "Content-Security-Policy": CONTENT_SECURITY_POLICY },
  },
  build: {
    outDir: "dist",
    target: "es2022",
    // Never inline assets as data: URLs (fonts would break under the CSP).
    assetsInlineLimit: 0,
    sourcemap: false,
    // WebKitGTK supports <link rel="modulepreload">: no polyfill (and its document-wide
    // MutationObserver) in the first bundle (docs/benchmarks.md § Desktop app).
    modulePreload: { polyfill: false },
  },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
  },
});
