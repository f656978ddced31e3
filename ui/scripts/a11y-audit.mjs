// Accessibility audit of every screen with axe-core (WCAG 2 A/AA rules) in Debian's chromium,
// light and dark, English and Japanese. Fails on any violation.
//
//   npm run build && node scripts/a11y-audit.mjs
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ui = join(dirname(fileURLToPath(import.meta.url)), "..");
const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const port = Number(process.env.A11Y_PORT ?? 4175);
const base = `http://127.0.0.1:${port}/`;

const server = spawn(join(ui, "node_modules", ".bin", "vite"), ["preview", "--port", String(port), "--strictPort"], {
  cwd: ui,
  stdio: ["ignore", "ignore", "inherit"],
});
for (let i = 0; i < 100; i++) {
  try {
    await fetch(base);
    break;
  } catch {
    await sleep(100);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

const screens = [
  ["onboarding", "fresh", async () => undefined],
  ["empty", "empty", async () => undefined],
  ["chat list", "demo", async () => undefined],
  ["chat", "demo", async (page) => page.locator(".chat-row", { hasText: "Aiko" }).click()],
  ["key change", "demo", async (page) => page.locator(".chat-row", { hasText: "Ben" }).click()],
  ["blocked", "demo", async (page) => page.locator(".chat-row", { hasText: "Dmitri" }).click()],
  [
    "verify",
    "demo",
    async (page) => {
      await page.locator(".chat-row", { hasText: "Aiko" }).click();
      await page.click(".chat-header .button.ghost");
      await page.waitForSelector(".safety-group");
    },
  ],
  ["invite", "demo", async (page) => {
    await page.keyboard.press("Control+i");
    await page.waitForSelector(".invite-card");
  }],
  ["add contact", "demo", async (page) => {
    await page.keyboard.press("Control+n");
    const text = await page.evaluate(() => window.__sealpostMock.inviteFrom("Sam Lee"));
    await page.fill("#add-text", text);
    await page.keyboard.press("Enter");
    await page.waitForSelector(".preview-card");
  }],
  ["add contact error", "demo", async (page) => {
    await page.keyboard.press("Control+n");
    await page.fill("#add-text", "not an invite");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".error-text");
  }],
  ["settings", "demo", async (page) => {
    await page.keyboard.press("Control+,");
    await page.waitForSelector(".settings");
  }],
  ["menu", "demo", async (page) => {
    await page.locator(".chat-row", { hasText: "Aiko" }).click();
    await page.click("button[aria-haspopup=menu]");
  }],
  ["offline", "offline", async () => undefined],
];

let failures = 0;
try {
  for (const scheme of ["light", "dark"]) {
    for (const locale of ["en-US", "ja-JP"]) {
      for (const [name, scenario, setUp] of screens) {
        const context = await browser.newContext({ colorScheme: scheme, locale, bypassCSP: true, reducedMotion: "reduce", viewport: { width: 1180, height: 760 } });
        const page = await context.newPage();
        await page.goto(`${base}?mock=${scenario}&latency=0`);
        await page.waitForSelector(".onboarding, .layout");
        await setUp(page);
        await sleep(250);
        await page.addScriptTag({ path: axePath });
        const result = await page.evaluate(async () =>
          // eslint-disable-next-line no-undef
          axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
        );
        for (const v of result.violations) {
          failures += 1;
          console.error(`[${name} ${scheme} ${locale}] ${v.id}: ${v.help}`);
          for (const node of v.nodes.slice(0, 4)) console.error(`    ${node.target.join(" ")} — ${node.failureSummary?.split("\n")[1] ?? ""}`);
        }
        await context.close();
      }
    }
  }
} finally {
  await browser.close();
  server.kill("SIGTERM");
}
if (failures > 0) {
  console.error(`${failures} accessibility violation(s)`);
  process.exit(1);
}
console.log(`axe: no WCAG 2.1 A/AA violations on ${screens.length} screens × light/dark × en/ja`);
