/**
 * The first screen's data the app hands over with the page (ui/CONTRACT.md § First screen,
 * src-tauri/src/first_screen.rs): what `app_status` and `list_chats` would return, in a
 * `<script type="application/json">` data block, so the chat list is drawn at the first render
 * instead of after two round trips. It is there only when the profile was open before the page
 * was served, and only for the first page load; otherwise the UI asks the commands as before.
 */
import type { AppStatus, Chat } from "../api/types";

/** The data block's `id`. */
export const FIRST_SCREEN_ID = "sealpost-first-screen";

/** What the first screen draws. */
export interface FirstScreen {
  /** As `app_status` returns it. */
  status: AppStatus;
  /** As `list_chats` returns it; null when the app did not read it (the UI then asks). */
  chats: Chat[] | null;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;

/** A shallow check of the shape: anything else is ignored and the commands are asked. */
function isFirstScreen(value: unknown): value is FirstScreen {
  if (!isObject(value) || !isObject(value.status)) return false;
  const { status, chats } = value;
  return (
    typeof status.profile === "string" &&
    typeof status.onboarded === "boolean" &&
    isObject(status.localRelay) &&
    Array.isArray(status.connections) &&
    (chats === null || (Array.isArray(chats) && chats.every((chat) => isObject(chat) && typeof chat.contactId === "string")))
  );
}

/**
 * Takes the data block out of the page (once: a later start, e.g. "Try again", asks the
 * commands); null when there is none or it is not what the app writes.
 */
export function takeFirstScreen(doc: Document = document): FirstScreen | null {
  const element = doc.getElementById(FIRST_SCREEN_ID);
  if (element === null) return null;
  element.remove();
  if (element.tagName !== "SCRIPT" || element.getAttribute("type") !== "application/json") return null;
  try {
    const data: unknown = JSON.parse(element.textContent ?? "");
    return isFirstScreen(data) ? data : null;
  } catch {
    return null;
  }
}
