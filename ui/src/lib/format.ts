/** Date, time and name formatting for the current locale. */

const DAY = 86_400_000;

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** Time of day, e.g. "14:05". */
export function formatTime(ms: number, locale: string): string {
  return new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" }).format(ms);
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

/** One or two letters for an avatar. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter((w) => w.length > 0);
  const first = [...(words[0] ?? "?")][0] ?? "?";
  const second = words.length > 1 ? ([...(words[words.length - 1] ?? "")][0] ?? "") : "";
  const letters = first + second;
  return /[\p{L}\p{N}]/u.test(letters) ? letters.toUpperCase() : "?";
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
