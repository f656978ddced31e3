import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { en } from "./en";
import { detectLocale, dictionaries, LOCALES, placeholders, translate } from "./index";
import { ja } from "./ja";

describe("i18n completeness", () => {
  const keys = Object.keys(en).sort();

  it.each(LOCALES)("%s has exactly the English key set", (locale) => {
    expect(Object.keys(dictionaries[locale]).sort()).toEqual(keys);
  });

  it.each(LOCALES)("%s has no empty strings", (locale) => {
    const empty = Object.entries(dictionaries[locale]).filter(([, v]) => v.trim() === "");
    expect(empty).toEqual([]);
  });

  it("Japanese uses the same placeholders as English for every key", () => {
    const mismatched = keys.filter(
      (key) => placeholders(en[key as keyof typeof en]).join() !== placeholders(ja[key as keyof typeof en]).join(),
    );
    expect(mismatched).toEqual([]);
  });

  it("Japanese is actually translated (most strings differ from English)", () => {
    const same = keys.filter((key) => en[key as keyof typeof en] === ja[key as keyof typeof en]);
    // Only brand names and URL placeholders may stay identical.
    expect(same.sort()).toEqual(["add.textPlaceholder", "app.name", "onboarding.relayUrlPlaceholder"]);
  });

  it("has words for every delivery state and every documented error kind", () => {
    for (const state of ["queued", "on_relay", "delivered", "read", "failed"]) {
      expect(keys).toContain(`state.${state}`);
    }
    for (const kind of ["invite_corrupt", "invite_expired", "invite_own", "relay_url_invalid", "keychain_unavailable"]) {
      expect(keys).toContain(`error.${kind}`);
    }
  });
});

describe("translate", () => {
  it("fills placeholders and leaves unknown ones visible", () => {
    expect(translate("en", "chats.unread", { count: 3 })).toBe("3 unread");
    expect(translate("ja", "chats.unread", { count: 3 })).toBe("未読 3 件");
    expect(translate("en", "chats.unread")).toBe("{count} unread");
  });

  it("does not interpret parameter text as a template", () => {
    expect(translate("en", "chats.youPrefix", { text: "{count} <b>x</b>" })).toBe("You: {count} <b>x</b>");
  });
});

describe("detectLocale", () => {
  it.each([
    [["ja-JP", "en-US"], "ja"],
    [["ja"], "ja"],
    [["en-GB"], "en"],
    [["fr-FR", "ja-JP"], "ja"],
    [["fr-FR"], "en"],
    [[], "en"],
  ] as const)("%j → %s", (languages, expected) => {
    expect(detectLocale(languages)).toBe(expected);
  });
});

describe("no dead strings", () => {
  it("every English key is used in the code (keys built from a kind or state are exempt)", () => {
    const src = join(dirname(fileURLToPath(import.meta.url)), "..");
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? walk(path) : [path];
      });
    const code = walk(src)
      .filter((p) => /\.tsx?$/.test(p) && !/\.test\.tsx?$/.test(p) && !/i18n[\\/](en|ja)\.ts$/.test(p))
      .map((p) => readFileSync(p, "utf8"))
      .join("\n");
    const dynamic = /^(state|error|connection)\./;
    const unused = Object.keys(en).filter((key) => !dynamic.test(key) && !code.includes(`"${key}"`));
    expect(unused).toEqual([]);
  });
});
