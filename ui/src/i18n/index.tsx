/**
 * Translation: English and Japanese. The locale comes from navigator.language unless the user
 * picked one in settings (kept in localStorage: a UI preference, not message data).
 */
import { createContext, type ComponentChildren } from "preact";
import { useContext, useEffect, useMemo, useState } from "preact/hooks";
import { en, type MessageKey } from "./en";
import { ja } from "./ja";

export type { MessageKey } from "./en";

/** Supported languages. */
export type Locale = "en" | "ja";
/** A user's choice: a language or "auto" (follow the system). */
export type LocaleChoice = Locale | "auto";

export const LOCALES: readonly Locale[] = ["en", "ja"];
export const dictionaries: Record<Locale, Record<MessageKey, string>> = { en, ja };

/** Parameters substituted for `{name}` placeholders. */
export type Params = Record<string, string | number>;
/** The translate function handed to components. */
export type Translate = (key: MessageKey, params?: Params) => string;

/** True when `key` is a known message key. */
export function hasKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(en, key);
}

/** The first supported language in a preference list, English otherwise. */
export function detectLocale(languages: readonly string[]): Locale {
  for (const language of languages) {
    const base = language.toLowerCase().split(/[-_]/)[0];
    if (base === "ja") return "ja";
    if (base === "en") return "en";
  }
  return "en";
}

/** Translates a key, filling `{placeholders}`; unknown placeholders are left visible. */
export function translate(locale: Locale, key: MessageKey, params?: Params): string {
  const template = dictionaries[locale][key] ?? en[key];
  if (params === undefined) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name];
    return value === undefined ? whole : String(value);
  });
}

/** Placeholder names used in a template, sorted. */
export function placeholders(template: string): string[] {
  return [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? "").sort();
}

const STORAGE_KEY = "sealpost.locale";

function systemLanguages(): readonly string[] {
  if (typeof navigator === "undefined") return ["en"];
  return navigator.languages && navigator.languages.length > 0 ? navigator.languages : [navigator.language];
}

function storedChoice(): LocaleChoice {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    if (value === "en" || value === "ja" || value === "auto") return value;
  } catch {
    // storage unavailable: follow the system
  }
  return "auto";
}

interface I18nValue {
  locale: Locale;
  choice: LocaleChoice;
  setChoice: (choice: LocaleChoice) => void;
  t: Translate;
}

const I18nContext = createContext<I18nValue>({
  locale: "en",
  choice: "auto",
  setChoice: () => undefined,
  t: (key, params) => translate("en", key, params),
});

/** Provides the locale and `t` to the tree; updates <html lang>. */
export function I18nProvider({ children }: { children: ComponentChildren }) {
  const [choice, setChoiceState] = useState<LocaleChoice>(storedChoice);
  const locale: Locale = choice === "auto" ? detectLocale(systemLanguages()) : choice;
  useEffect(() => {
    document.documentElement.lang = locale;
  }, [locale]);
  const value = useMemo<I18nValue>(
    () => ({
      locale,
      choice,
      setChoice: (next) => {
        try {
          localStorage.setItem(STORAGE_KEY, next);
        } catch {
          // not persisted; still applies for this session
        }
        setChoiceState(next);
      },
      t: (key, params) => translate(locale, key, params),
    }),
    [locale, choice],
  );
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

/** The current locale and translate function. */
export function useI18n(): I18nValue {
  return useContext(I18nContext);
}
