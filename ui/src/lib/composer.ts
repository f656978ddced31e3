/**
 * Keyboard handling of the message composer: Enter sends, Shift+Enter inserts a new line, and
 * nothing is sent while an input method (Japanese IME) is composing.
 */

/** The parts of a KeyboardEvent the decision needs. */
export interface ComposerKey {
  key: string;
  shiftKey: boolean;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  isComposing: boolean;
  /** 229 while an IME processes the key (WebKit reports it even after compositionend). */
  keyCode?: number;
}

/** What the composer does with a key press. */
export type ComposerAction = "send" | "newline" | "default";

/** Decides what a key press in the composer does. */
export function composerKeyAction(event: ComposerKey): ComposerAction {
  if (event.key !== "Enter") return "default";
  if (event.isComposing || event.keyCode === 229) return "default";
  if (event.shiftKey || event.altKey) return "newline";
  return "send";
}

/** Text worth sending: not empty and not only white space. Leading/trailing blank lines trimmed. */
export function sendableText(raw: string): string | null {
  const text = raw.replace(/^\s*\n/, "").replace(/\s+$/, "");
  return text.trim().length === 0 ? null : text;
}
