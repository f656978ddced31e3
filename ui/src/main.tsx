/** Entry point: mounts the app. Styles come from a bundled stylesheet (no inline styles: CSP). */
import "./startMark";
import { render } from "preact";
import { App } from "./App";
import { markPlatform } from "./lib/platform";
import "./styles.css";

// Before the first render, so the first style resolution uses the platform's font stacks.
markPlatform();
const root = document.getElementById("app");
performance.mark("sealpost:render-start");
if (root !== null) render(<App />, root);
// The first render is synchronous: with the first screen's data (./lib/firstScreen) the chat
// list exists from here on (docs/benchmarks.md § Desktop app).
performance.mark("sealpost:render-end");
