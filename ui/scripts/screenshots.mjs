// Screenshots of every screen, as a person would see them, against the mock backend.
//
//   npm run build && node scripts/screenshots.mjs
//
// Serves ui/dist with `vite preview` on 127.0.0.1 (with the app's CSP header), drives Debian's
// chromium through playwright-core (no browser download), and writes PNGs to ui/screenshots-mock/.
// Fails if the page logs an error or violates the CSP.
import { spawn } from "node:child_process";
import { mkdir, readdir, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ui = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(ui, "screenshots-mock");
const port = Number(process.env.SCREENSHOT_PORT ?? 4173);
const base = `http://127.0.0.1:${port}/`;
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FIXED_NOW = new Date("2026-11-25T15:30:00Z");

async function waitForServer(url, tries = 100) {
  for (let i = 0; i < tries; i++) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`preview server did not start at ${url}`);
}

const server = spawn(
  join(ui, "node_modules", ".bin", "vite"),
  ["preview", "--host", "127.0.0.1", "--port", String(port), "--strictPort"],
  { cwd: ui, stdio: ["ignore", "pipe", "inherit"] },
);
let browser;
const problems = [];
let count = 0;

try {
  await waitForServer(base);
  await mkdir(outDir, { recursive: true });
  // Start clean, but keep the WebKitGTK shots made by webkit-check.mjs.
  for (const name of await readdir(outDir)) {
    if (name.endsWith(".png") && !name.startsWith("webkit-")) await rm(join(outDir, name));
  }
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });

  /** Opens a page in a fresh context for a scenario, theme and language. */
  async function open({ scenario, scheme = "light", locale = "en-US", query = "" }) {
    const context = await browser.newContext({
      viewport: { width: 1180, height: 760 },
      deviceScaleFactor: 1,
      colorScheme: scheme,
      locale,
      reducedMotion: "reduce",
      timezoneId: "UTC",
    });
    // A fixed clock (timers still run) makes the pictures identical from run to run.
    await context.clock.setFixedTime(FIXED_NOW);
    const page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`[${scenario}/${scheme}/${locale}] console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`[${scenario}] page error: ${error.message}`));
    await page.goto(`${base}?mock=${scenario}&latency=10${query}`);
    await page.waitForSelector(".onboarding, .layout");
    return page;
  }

  async function shot(page, name) {
    await sleep(150);
    await page.screenshot({ path: join(outDir, `${name}.png`) });
    count += 1;
    console.log(`saved ${name}.png`);
  }

  async function openChat(page, name) {
    await page.locator(".chat-row", { hasText: name }).click();
    await page.waitForSelector(".message, .history-start");
    await sleep(200);
  }

  // Onboarding.
  for (const [scheme, locale] of [["light", "en-US"], ["dark", "en-US"], ["light", "ja-JP"], ["dark", "ja-JP"]]) {
    const page = await open({ scenario: "fresh", scheme, locale });
    await shot(page, `01-onboarding-${scheme}-${locale.slice(0, 2)}`);
    await page.context().close();
  }
  {
    const page = await open({ scenario: "fresh" });
    await page.fill("#onboarding-name", "Mika");
    await page.check("input[value=remote]");
    await page.fill("#onboarding-url", "http://relay.example.org");
    await page.click("button[type=submit]");
    await page.waitForSelector(".error-text");
    await shot(page, "02-onboarding-error-light-en");
    // Finish onboarding with the local relay: lands on the empty state.
    await page.check("input[value=local]");
    await page.click("button[type=submit]");
    await page.waitForSelector(".empty-state");
    await sleep(900); // connection goes connecting → connected
    await shot(page, "03-empty-after-onboarding-light-en");
    await page.context().close();
  }
  for (const [scheme, locale] of [["dark", "en-US"], ["light", "ja-JP"]]) {
    const page = await open({ scenario: "empty", scheme, locale });
    await shot(page, `03-empty-${scheme}-${locale.slice(0, 2)}`);
    await page.context().close();
  }

  // Chat list and chat view.
  for (const [scheme, locale] of [["light", "en-US"], ["dark", "en-US"], ["light", "ja-JP"], ["dark", "ja-JP"]]) {
    const page = await open({ scenario: "demo", scheme, locale });
    const suffix = `${scheme}-${locale.slice(0, 2)}`;
    await page.waitForSelector(".chat-row");
    await shot(page, `04-chat-list-${suffix}`);
    await openChat(page, "Aiko");
    await shot(page, `05-chat-${suffix}`);
    await page.context().close();
  }
  {
    const page = await open({ scenario: "demo" });
    await openChat(page, "Aiko");
    await page.fill("#composer-text", "First line");
    await page.keyboard.press("Shift+Enter");
    await page.keyboard.type("second line — sent with Enter");
    await shot(page, "06-composer-multiline-light-en");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".message.outgoing.state-delivered >> text=second line");
    const focused = await page.evaluate(() => document.activeElement?.id);
    if (focused !== "composer-text") problems.push(`focus left the composer after sending (on ${focused})`);
    await shot(page, "06-sent-delivered-light-en");
    await page.waitForSelector(".message.incoming >> text=👍", { timeout: 8000 });
    await shot(page, "06-reply-read-light-en");
    // Menu.
    await page.click("button[aria-haspopup=menu]");
    await shot(page, "07-contact-menu-light-en");
    await page.keyboard.press("Escape");
    await page.context().close();
  }
  {
    // Paging back through 118 messages.
    const page = await open({ scenario: "demo" });
    await openChat(page, "Chloé");
    const before = await page.locator(".message").count();
    await page.locator(".message-scroller").evaluate((el) => {
      el.scrollTop = 0;
    });
    await page.waitForFunction((n) => document.querySelectorAll(".message").length > n, before);
    await shot(page, "08-paging-loaded-older-light-en");
    for (let i = 0; i < 6; i++) {
      await page.locator(".message-scroller").evaluate((el) => {
        el.scrollTop = 0;
      });
      await sleep(150);
    }
    await page.waitForSelector(".history-start");
    await shot(page, "08-paging-beginning-light-en");
    // A message arrives while reading old history: a button offers to jump down.
    await page.evaluate(() => {
      const mock = window.__sealpostMock;
      mock.receive(mock.contactIdOf("Chloé Martin"), "Are you still there?");
    });
    await page.waitForSelector(".jump-latest");
    await shot(page, "08-new-message-while-reading-light-en");
    const seqs = await page.$$eval(".message", (els) => els.map((el) => Number(el.getAttribute("data-seq"))));
    const sorted = seqs.every((s, i) => i === 0 || s > (seqs[i - 1] ?? 0));
    if (seqs.length !== 119 || !sorted) problems.push(`paging: ${seqs.length} messages, sorted=${sorted}`);
    await page.context().close();
  }
  for (const [scheme, locale] of [["light", "en-US"], ["dark", "ja-JP"]]) {
    const page = await open({ scenario: "demo", scheme, locale });
    await openChat(page, "Ben");
    await shot(page, `09-key-change-banner-${scheme}-${locale.slice(0, 2)}`);
    await page.context().close();
  }
  {
    const page = await open({ scenario: "demo" });
    await openChat(page, "Dmitri");
    await shot(page, "10-blocked-contact-light-en");
    await page.context().close();
  }

  // Verify.
  for (const [scheme, locale] of [["light", "en-US"], ["dark", "en-US"], ["light", "ja-JP"]]) {
    const page = await open({ scenario: "demo", scheme, locale });
    await openChat(page, "Aiko");
    await page.click(".chat-header .button.ghost");
    await page.waitForSelector(".safety-number");
    await shot(page, `11-verify-${scheme}-${locale.slice(0, 2)}`);
    await page.context().close();
  }

  // My invite.
  for (const [scheme, locale] of [["light", "en-US"], ["dark", "ja-JP"]]) {
    const page = await open({ scenario: "demo", scheme, locale });
    await page.keyboard.press("Control+i");
    await page.waitForSelector(".invite-card");
    await shot(page, `12-my-invite-${scheme}-${locale.slice(0, 2)}`);
    await page.context().close();
  }

  // Add contact: preview, error, deep link.
  {
    const page = await open({ scenario: "demo" });
    await page.keyboard.press("Control+n");
    await page.waitForSelector("#add-text");
    await shot(page, "13-add-contact-empty-light-en");
    const invite = await page.evaluate(() => window.__sealpostMock.inviteFrom("Sam Lee"));
    await page.fill("#add-text", invite);
    await page.keyboard.press("Enter");
    await page.waitForSelector(".preview-card");
    await shot(page, "13-add-contact-preview-light-en");
    await page.click(".preview-card button[type=submit]");
    await page.waitForSelector(".chat-header >> text=Sam Lee");
    await shot(page, "13-add-contact-added-light-en");
    await page.context().close();
  }
  {
    const page = await open({ scenario: "demo", locale: "ja-JP" });
    await page.keyboard.press("Control+n");
    const expired = await page.evaluate(() => window.__sealpostMock.inviteFrom("Old Friend", Date.now() - 1000));
    await page.fill("#add-text", expired);
    await page.keyboard.press("Enter");
    await page.waitForSelector(".error-text");
    await shot(page, "14-add-contact-expired-light-ja");
    await page.context().close();
  }
  {
    const page = await open({ scenario: "demo", scheme: "dark" });
    await page.evaluate(() =>
      window.__sealpostMock.emit("open-invite", { text: window.__sealpostMock.inviteFrom("Rosa Díaz") }),
    );
    await page.waitForSelector(".preview-card");
    await shot(page, "15-deep-link-prefilled-dark-en");
    await page.context().close();
  }

  // Settings.
  for (const [scheme, locale] of [["light", "en-US"], ["dark", "ja-JP"]]) {
    const page = await open({ scenario: "demo", scheme, locale });
    await page.keyboard.press("Control+,");
    await page.waitForSelector(".settings");
    await shot(page, `16-settings-${scheme}-${locale.slice(0, 2)}`);
    await page.context().close();
  }

  // A second profile on the same desktop (local test relay mode) says which one it is.
  {
    const page = await open({ scenario: "demo", query: "&profile=alice" });
    await page.waitForSelector(".profile-tag");
    const title = await page.title();
    if (!title.includes("alice")) problems.push(`window title lacks the profile: ${title}`);
    await shot(page, "20-profile-alice-light-en");
    await page.context().close();
  }

  // Search, offline, toasts.
  {
    const page = await open({ scenario: "demo" });
    await page.keyboard.press("Control+k");
    await page.keyboard.type("ai");
    await shot(page, "17-search-light-en");
    await page.context().close();
  }
  {
    const page = await open({ scenario: "offline", scheme: "dark" });
    await shot(page, "18-offline-dark-en");
    await page.evaluate(() => window.__sealpostMock.emit("invite-misuse", { inviteId: "inv_1" }));
    await page.waitForSelector(".toast");
    await shot(page, "19-invite-misuse-toast-dark-en");
    await page.context().close();
  }
} finally {
  await browser?.close();
  server.kill("SIGTERM");
}

if (problems.length > 0) {
  console.error(`\n${problems.length} problem(s):\n${problems.join("\n")}`);
  process.exit(1);
}
console.log(`\n${count} screenshots in ${outDir}`);
