/** Date, time and name formatting for the current locale. */

const DAY = 86_400_000;

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** Time of day, e.g. "14:05". */
export function formatTime(ms: number, locale: string): string {
  return new Intl.DateTimeFormat(locale, { hour: "numeric", minute: "2-digit" }).format(ms);
}

/** Full date and time for tooltips and screen readers. */
export function formatDateTime(ms: number, locale: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(ms);
}

/** Compact stamp for the chat list: time today, weekday this week, else a date. */
export function formatListStamp(ms: number, locale: string, now = Date.now()): string {
  const today = startOfDay(now);
  if (ms >= today) return formatTime(ms, locale);
  if (ms >= today - 6 * DAY) return new Intl.DateTimeFormat(locale, { weekday: "short" }).format(ms);
  return new Intl.DateTimeFormat(locale, { month: "short", day: "numeric" }).format(ms);
}

/** Which day a message belongs to, for day separators: "today", "yesterday" or a date. */
export function dayLabel(
  ms: number,
  locale: string,
  words: { today: string; yesterday: string },
  now = Date.now(),
): string {
  const today = startOfDay(now);
  const day = startOfDay(ms);
  if (day === today) return words.today;
  if (Math.round((today - day) / DAY) === 1) return words.yesterday;
  return new Intl.DateTimeFormat(locale, { weekday: "long", month: "long", day: "numeric" }).format(ms);
}

/** Key of the local day a time falls in (for grouping). */
export function dayKey(ms: number): number {
  return startOfDay(ms);
}

/** Whole days from now until a time (rounded up, at least 0). */
export function daysUntil(ms: number, now = Date.now()): number {
  return Math.max(0, Math.ceil((ms - now) / DAY));
}

const LETTER = /[\p{L}\p{N}]/u;
const IDEOGRAPHIC = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

/**
 * One or two letters for an avatar: the first letters of the first and last words that start
 * with a letter ("Ben Ortiz" → "BO"); a single character for names in CJK scripts
 * ("田中 愛子 (Aiko)" → "田"); "?" when there is no letter at all.
 */
export function initials(name: string): string {
  const words = name
    .trim()
    .split(/\s+/)
    .map((w) => [...w.replace(/^[^\p{L}\p{N}]+/u, "")][0] ?? "")
    .filter((c) => LETTER.test(c));
  const first = words[0];
  if (first === undefined) return "?";
  if (IDEOGRAPHIC.test(first)) return first;
  const last = words.length > 1 ? words[words.length - 1] : undefined;
  const second = last !== undefined && !IDEOGRAPHIC.test(last) ? last : "";
  return (first + second).toLocaleUpperCase();
}

/** A stable palette slot (0–7) for an avatar, from the contact id. */
export function avatarTone(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % 8;
}

/** Lower-cased, NFKC-normalised text for search (full-width letters match half-width). */
export function searchKey(text: string): string {
  return text.normalize("NFKC").toLocaleLowerCase();
}
