/** Safety-number formatting: 60 digits shown as 12 groups of 5 (Signal style). */

/** Splits a 60-digit safety number into 12 groups of 5; null if it is not exactly 60 digits. */
export function groupSafetyNumber(digits: string): string[] | null {
  if (!/^[0-9]{60}$/.test(digits)) return null;
  const groups: string[] = [];
  for (let i = 0; i < 60; i += 5) groups.push(digits.slice(i, i + 5));
  return groups;
}

/** The groups laid out in rows (3 rows of 4 by default). */
export function safetyRows(groups: readonly string[], perRow = 4): string[][] {
  const rows: string[][] = [];
  for (let i = 0; i < groups.length; i += perRow) rows.push(groups.slice(i, i + perRow));
  return rows;
}

/** An SVG document as an <img> source: a data: URL (never injected as markup). */
export function svgDataUrl(svg: string): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}
