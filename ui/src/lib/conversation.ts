/**
 * What a 1:1 chat (components/ChatView.tsx) and a group (components/GroupView.tsx) do alike
 * around their history: when the view counts as scrolled to the newest, marking read what the
 * person can see, paging back to a search result, and the file of each message with the uploads
 * still running. Each view keeps its own paging (their pages and scroll keeping differ); what they
 * draw alike is in components/MessageParts.tsx.
 *
 * ChatView is in the first bundle, so this module is too (lib/lazy.test.tsx).
 */
import type { RefObject } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { Attachment, SearchHit } from "../api/types";

/** Scrolled this close to the top, the view loads older messages. */
export const NEAR_TOP_PX = 120;
/** Scrolled this close to the bottom, the newest messages are on screen. */
const NEAR_BOTTOM_PX = 80;
/** Older pages loaded at most to reach a search result. */
const MAX_PAGES_TO_RESULT = 100;

/** Whether the newest messages are on screen (true while there is no scroller yet). */
export function isNearBottom(el: HTMLElement | null): boolean {
  return el === null || el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
}

/**
 * Marks read what the person can see: the conversation is open, scrolled to the newest messages,
 * and the window is visible and focused. `markSeen` sends the receipt and updates the view; it
 * returns null when nothing is unread. It runs again when `messages` or `key` change, when the
 * window gains focus or becomes visible, and when the returned `recheck` is called (after a
 * scroll to the bottom). A failure is dropped: unread stays, and the next change retries.
 */
export function useReadWhenSeen(
  scroller: RefObject<HTMLElement | null>,
  messages: readonly unknown[],
  key: string,
  markSeen: () => Promise<void> | null,
): () => void {
  const [focusTick, setFocusTick] = useState(0);
  useEffect(() => {
    const bump = () => setFocusTick((n) => n + 1);
    window.addEventListener("focus", bump);
    document.addEventListener("visibilitychange", bump);
    return () => {
      window.removeEventListener("focus", bump);
      document.removeEventListener("visibilitychange", bump);
    };
  }, []);
  useEffect(() => {
    // Only when the newest messages are on screen (not while reading old history).
    if (document.visibilityState !== "visible" || !document.hasFocus() || !isNearBottom(scroller.current)) return;
    markSeen()?.catch(() => undefined);
  }, [messages, focusTick, key]);
  return useCallback(() => setFocusTick((n) => n + 1), []);
}

/**
 * Opened at a search result: pages back (`loadOlder`, at most {@link MAX_PAGES_TO_RESULT} times)
 * until its message is loaded, then scrolls it to the middle; `onReached` runs first (the view
 * stops keeping itself at the bottom). Waits while a page is loading (`ready` false).
 */
export function useScrollToResult({
  scroller,
  foundAt,
  messages,
  ready,
  hasMore,
  loadOlder,
  onReached,
}: {
  scroller: RefObject<HTMLElement | null>;
  foundAt: SearchHit | null;
  messages: readonly { id: string }[];
  ready: boolean;
  hasMore: boolean;
  loadOlder: () => Promise<void>;
  onReached: () => void;
}): void {
  const pagesToResult = useRef(0);
  useEffect(() => {
    const target = foundAt?.messageId ?? null;
    if (target === null || !ready) return;
    if (messages.some((m) => m.id === target)) {
      onReached();
      const row = scroller.current?.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(target)}"]`);
      row?.scrollIntoView?.({ block: "center" });
      return;
    }
    if (hasMore && pagesToResult.current < MAX_PAGES_TO_RESULT) {
      pagesToResult.current += 1;
      void loadOlder();
    }
  }, [foundAt, messages, ready, hasMore, loadOlder]);
}

/** The conversation's files: by the message each belongs to, and the own uploads with no message yet. */
export function filesOf(attachments: readonly Attachment[]): {
  attachmentOf: Map<string, Attachment>;
  pendingUploads: Attachment[];
} {
  const attachmentOf = new Map<string, Attachment>();
  for (const attachment of attachments) {
    if (attachment.messageId !== null) attachmentOf.set(attachment.messageId, attachment);
  }
  const pendingUploads = attachments.filter((a) => a.outgoing && a.messageId === null && a.state !== "cancelled");
  return { attachmentOf, pendingUploads };
}
