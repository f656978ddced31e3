// Lazily loaded components (./lazy) and the first bundle's static import graph
// (docs/benchmarks.md § Desktop app: the first screen loads only what it draws).
import { readFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanup, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it } from "vitest";
import { lazyComponent, preloadLazyComponents } from "./lazy";

afterEach(() => cleanup());

function Greeting({ name }: { name: string }) {
  return <p>Hello {name}</p>;
}

describe("lazyComponent", () => {
  it("draws its fallback until the chunk is there, then the component with the same props", async () => {
    let finish: (component: typeof Greeting) => void = () => undefined;
    const Lazy = lazyComponent(() => new Promise<typeof Greeting>((done) => (finish = done)));
    render(<Lazy name="Ada" fallback={<p>Loading</p>} />);
    expect(screen.getByText("Loading")).toBeTruthy();
    finish(Greeting);
    expect(await screen.findByText("Hello Ada")).toBeTruthy();
    expect(screen.queryByText("Loading")).toBeNull();
  });

  it("loads once, and once preloaded draws at the first render", async () => {
    let loads = 0;
    const Lazy = lazyComponent(async () => {
      loads += 1;
      return Greeting;
    });
    await preloadLazyComponents();
    await preloadLazyComponents();
    render(<Lazy name="Grace" />);
    expect(screen.getByText("Hello Grace")).toBeTruthy();
    expect(loads).toBe(1);
  });
});

const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Every module main.tsx pulls in through static imports (type-only and dynamic imports excluded). */
function staticGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, "utf8");
    for (const match of source.matchAll(/^import\s+(?!type\b)[^;]*?from\s+"(\.[^"]+)";/gms)) {
      const base = join(dirname(file), match[1] ?? "");
      const found = [".ts", ".tsx", "/index.ts", "/index.tsx"].map((ext) => base + ext).find((p) => existsSync(p));
      if (found !== undefined) visit(found);
    }
  };
  visit(join(srcDir, "main.tsx"));
  return seen;
}

describe("the first bundle", () => {
  it("holds the chat list and chat view but none of the dialogs, group views or onboarding", () => {
    const graph = [...staticGraph(join(srcDir, "main.tsx"))].map((file) => file.slice(srcDir.length + 1));
    expect(graph).toContain("components/ChatList.tsx");
    expect(graph).toContain("components/ChatView.tsx");
    const lazy = [
      "components/Onboarding.tsx",
      "components/StartupFailure.tsx",
      "components/InviteDialog.tsx",
      "components/SettingsDialog.tsx",
      "components/VerifyDialog.tsx",
      "components/MessageSearch.tsx",
      "components/ContactDialogs.tsx",
      "components/GroupView.tsx",
      "components/GroupDialogs.tsx",
    ];
    expect(graph.filter((file) => lazy.includes(file))).toEqual([]);
  });
});
