// Static checks that keep the webview safe under the strict CSP (`docs/threat-model.md` § Plaintext
// never leaves the device for features (T9)): no HTML injection sinks, no eval, no inline scripts
// or styles, no remote content.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const srcDir = dirname(fileURLToPath(import.meta.url));
const uiDir = join(srcDir, "..");

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const sources = walk(srcDir).filter((p) => /\.(ts|tsx|js|jsx|css)$/.test(p) && !/\.test\.tsx?$/.test(p));

function offenders(pattern: RegExp, files = sources): string[] {
  return files.filter((file) => pattern.test(readFileSync(file, "utf8"))).map((file) => relative(uiDir, file));
}

// Built from parts so this file does not match its own search.
const sink = (...parts: string[]) => new RegExp(parts.join(""));

describe("no HTML injection sinks in ui/src", () => {
  it("sources exist (the walk found them)", () => {
    expect(sources.length).toBeGreaterThan(10);
  });

  it("never uses dangerously" + "SetInnerHTML", () => {
    expect(offenders(sink("dangerously", "SetInnerHTML"))).toEqual([]);
  });

  it("never uses inner" + "HTML or outer" + "HTML", () => {
    expect(offenders(sink("\\b(inner|outer)", "HTML\\b"))).toEqual([]);
  });

  it("never uses insertAdjacent" + "HTML, document.write or createContextualFragment", () => {
    expect(offenders(sink("insertAdjacent", "HTML|document\\.", "write\\s*\\(|createContextual", "Fragment"))).toEqual([]);
  });

  it("never uses eval, new Function or string timers", () => {
    expect(offenders(sink("\\bev", "al\\s*\\(|new\\s+Func", "tion\\s*\\(|setTimeout\\s*\\(\\s*['\"`]"))).toEqual([]);
  });

  it("sets no style attributes from strings", () => {
    expect(offenders(sink("setAttribute\\(\\s*['\"]st", "yle['\"]|\\bst", "yle=\\{?['\"`]"))).toEqual([]);
  });
});

describe("no remote content", () => {
  it("loads nothing from the network (no http(s) URLs in code or CSS except xmlns)", () => {
    const hits = sources.flatMap((file) =>
      [...readFileSync(file, "utf8").matchAll(/https?:\/\/[^\s"'`)]+/g)]
        .map((m) => m[0])
        .filter((url) => url !== "http://www.w3.org/2000/svg" && !url.startsWith("http://ipc.localhost"))
        .filter((url) => !/example\.(com|org)/.test(url)) // sample text and placeholders in the mock
        .map((url) => `${relative(uiDir, file)}: ${url}`),
    );
    expect(hits).toEqual([]);
  });

  it("has no @import or url() to remote fonts or images in CSS", () => {
    const css = sources.filter((p) => p.endsWith(".css"));
    expect(offenders(/@import|url\(\s*['"]?https?:/, css)).toEqual([]);
  });
});

describe("index.html fits the CSP", () => {
  const html = readFileSync(join(uiDir, "index.html"), "utf8");

  it("has no inline script (only src= module scripts)", () => {
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc=/);
      expect(body?.trim()).toBe("");
    }
  });

  it("has no inline style element or style attribute, and no inline event handlers", () => {
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
  });

  it("references nothing remote", () => {
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
  });
});
