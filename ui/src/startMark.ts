/**
 * Imported first by ./main.tsx, and importing nothing: marks when the entry chunk starts running
 * (after the shared chunks it imports are evaluated), for the page timeline that
 * `benches/app`'s `app-startup` prints (docs/benchmarks.md § Desktop app).
 */
performance.mark("sealpost:modules-start");
