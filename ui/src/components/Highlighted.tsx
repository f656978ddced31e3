/**
 * Text with some ranges marked: plain text nodes and `<mark>` elements built from UTF-16 offsets
 * (what the engine's search returns). No HTML is ever built from the text itself.
 */
import type { TextRange } from "../api/types";

export function Highlighted({ text, ranges }: { text: string; ranges: readonly TextRange[] }) {
  const parts: (string | preact.JSX.Element)[] = [];
  let at = 0;
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  for (const range of sorted) {
    const start = Math.max(at, Math.min(range.start, text.length));
    const end = Math.max(start, Math.min(range.end, text.length));
    if (end <= start) continue;
    if (start > at) parts.push(text.slice(at, start));
    parts.push(<mark key={start}>{text.slice(start, end)}</mark>);
    at = end;
  }
  if (at < text.length) parts.push(text.slice(at));
  return <>{parts}</>;
}
