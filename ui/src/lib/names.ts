/**
 * Names from peers never disguise themselves: the Unicode bidirectional embedding, override and
 * isolate controls (U+202A–U+202E, U+2066–U+2069) are removed before a name is drawn, so
 * "\u202Egnp.exe" cannot show as "exe.png". The engine already removes them on arrival
 * (`crates/client/src/names.rs`, docs/threat-model.md); this is the UI's own line of defence.
 */
import type { Chat, InvitePreview } from "../api/types";

const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

/** `name` without bidirectional controls, trimmed. */
export function neutraliseBidi(name: string): string {
  return name.replace(BIDI_CONTROLS, "").trim();
}

/** A chat whose display name is safe to draw. */
export function withSafeName(chat: Chat): Chat {
  return { ...chat, displayName: neutraliseBidi(chat.displayName) };
}

/** An invite preview whose inviter name is safe to draw. */
export function previewWithSafeName(preview: InvitePreview): InvitePreview {
  return { ...preview, displayName: neutraliseBidi(preview.displayName) };
}
