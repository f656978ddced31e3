// Renders the built UI in WebKitGTK (the engine of Tauri's Linux webview) through WebKitWebDriver
// and MiniBrowser, and saves a few screenshots (a chat, a group chat, the verify screen) to screenshots-mock/webkit-*.png. Fails if the app
// does not render (e.g. a CSS or JS feature WebKitGTK lacks, or a CSP violation that stops it).
//
//   npm run build && xvfb-run -a node scripts/webkit-check.mjs
//
// Needs Debian's webkit2gtk-driver and libwebkit2gtk-4.1-0 (MiniBrowser), and xvfb.
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const ui = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(ui, "screenshots-mock");
const previewPort = Number(process.env.WEBKIT_PREVIEW_PORT ?? 4174);
const driverPort = Number(process.env.WEBKIT_DRIVER_PORT ?? 4455);
const miniBrowser =
  process.env.MINIBROWSER ?? "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const driverUrl = `http://127.0.0.1:${driverPort}`;
const base = `http://127.0.0.1:${previewPort}/`;

async function waitFor(url) {
  for (let i = 0; i < 150; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`nothing answered at ${url}`);
}

async function wd(method, path, body) {
  const response = await fetch(`${driverUrl}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value)}`);
  return json.value;
}

const children = [
  spawn(join(ui, "node_modules", ".bin", "vite"), ["preview", "--port", String(previewPort), "--strictPort"], {
    cwd: ui,
    stdio: ["ignore", "ignore", "inherit"],
  }),
  spawn("WebKitWebDriver", [`--port=${driverPort}`], { stdio: ["ignore", "ignore", "inherit"] }),
];

let session;
const problems = [];
try {
  await waitFor(base);
  await waitFor(`${driverUrl}/status`);
  await mkdir(outDir, { recursive: true });
  const created = await wd("POST", "/session", {
    capabilities: {
      alwaysMatch: {
        browserName: "MiniBrowser",
        "webkitgtk:browserOptions": { binary: miniBrowser, args: ["--automation"] },
      },
    },
  });
  session = created.sessionId;
  const s = `/session/${session}`;
  await wd("POST", `${s}/window/rect`, { width: 1180, height: 760 }).catch(() => undefined);

  const exec = (script, args = []) => wd("POST", `${s}/execute/sync`, { script, args });
  const waitUntil = async (script, what) => {
    for (let i = 0; i < 100; i++) {
      if (await exec(script)) return;
      await sleep(100);
    }
    problems.push(`timed out waiting for ${what}`);
  };
  const shot = async (name) => {
    await sleep(300);
    const png = await wd("GET", `${s}/screenshot`);
    await writeFile(join(outDir, `${name}.png`), Buffer.from(png, "base64"));
    console.log(`saved ${name}.png`);
  };

  await wd("POST", `${s}/url`, { url: `${base}?mock=fresh&latency=10` });
  await waitUntil("return document.querySelector('.onboarding-card') !== null", "onboarding");
  await shot("webkit-01-onboarding");

  await wd("POST", `${s}/url`, { url: `${base}?mock=demo&latency=10` });
  await waitUntil("return document.querySelectorAll('[data-testid=chat-row]').length === 4", "chat list");
  await waitUntil("return document.querySelector('[data-testid=group-row]') !== null", "group row");
  await exec("document.querySelector('[data-testid=group-row]').click()");
  await waitUntil("return document.querySelectorAll('[data-testid=group-message-author]').length >= 3", "group messages");
  await sleep(1500); // WebKit under Xvfb paints the polled history a moment after the DOM has it
  await shot("webkit-02-group-chat");
  await exec("document.querySelector('[data-testid=chat-row]').click()");
  await waitUntil("return document.querySelectorAll('.message').length > 3", "messages");
  await shot("webkit-02-chat");
  const layout = await exec(`
    const bubble = document.querySelector('.message.outgoing .bubble');
    const style = getComputedStyle(bubble);
    return { background: style.backgroundColor, radius: style.borderTopLeftRadius,
             composer: document.getElementById('composer-text') !== null };
  `);
  if (!layout.composer) problems.push("composer missing in WebKit");
  if (layout.radius === "0px") problems.push("stylesheet not applied in WebKit");

  await exec("document.querySelector('.chat-header .button.ghost').click()");
  await waitUntil("return document.querySelectorAll('.safety-group').length === 12", "safety number");
  await sleep(500);
  const groups = await exec("return document.querySelectorAll('.safety-group').length");
  if (groups !== 12) problems.push(`safety number shows ${groups} groups`);
  await shot("webkit-03-verify");
} catch (error) {
  problems.push(String(error));
} finally {
  if (session !== undefined) await wd("DELETE", `/session/${session}`).catch(() => undefined);
  for (const child of children) child.kill("SIGTERM");
}

if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("WebKitGTK renders the UI.");
