/**
 * Which desktop the UI runs on, for the few styles that differ (`styles.css`: the font stacks).
 * Read from the webview's user agent and put on `<html data-platform>` before the first render,
 * so the first style resolution already uses the platform's stacks (docs/benchmarks.md § Desktop
 * app, "The font stack and the first paint").
 */

/** The platforms whose styles differ; "other" keeps the portable defaults. */
export type Platform = "linux" | "macos" | "windows" | "other";

/**
 * The platform a user agent string names. WebKitGTK (Linux) says "X11; Linux" or "Wayland";
 * WKWebView says "Macintosh"; WebView2 says "Windows". Android is not a desktop: "other".
 */
export function platformOf(userAgent: string): Platform {
  if (/Android/i.test(userAgent)) return "other";
  if (/Windows/i.test(userAgent)) return "windows";
  if (/Macintosh|Mac OS X/i.test(userAgent)) return "macos";
  if (/Linux|X11|Wayland|FreeBSD|OpenBSD/i.test(userAgent)) return "linux";
  return "other";
}

/** Sets `data-platform` on the document's root element. */
export function markPlatform(doc: Document = document, userAgent: string = navigator.userAgent): Platform {
  const platform = platformOf(userAgent);
  doc.documentElement.dataset.platform = platform;
  return platform;
}
