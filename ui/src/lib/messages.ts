/**
 * Pure helpers for message lists: merging pages and events (dedupe by id, order by seq) and
 * delivery-state labels.
 */
import type { Message, MessageState } from "../api/types";
import type { MessageKey } from "../i18n/index";

const STATE_RANK: Record<MessageState, number> = {
  queued: 0,
  on_relay: 1,
  delivered: 2,
  read: 3,
  failed: -1,
};

/**
 * Whether a state update should replace the current one. Delivery only moves forward
 * (queued → on_relay → delivered → read); "failed" always applies, and a failed message may be
 * re-queued by the engine.
 */
export function shouldApplyState(current: MessageState, next: MessageState): boolean {
  if (next === "failed" || current === "failed") return true;
  return STATE_RANK[next] >= STATE_RANK[current];
}

/**
 * Merges messages into a list: one entry per id (a later copy wins, except that a delivery state
 * never moves backwards), sorted by seq ascending (ties by id, so the order is total).
 */
export function mergeMessages(existing: readonly Message[], incoming: readonly Message[]): Message[] {
  const byId = new Map<string, Message>();
  for (const m of existing) byId.set(m.id, m);
  for (const m of incoming) {
    const old = byId.get(m.id);
    if (old !== undefined && !shouldApplyState(old.state, m.state)) {
      byId.set(m.id, { ...m, state: old.state });
    } else {
      byId.set(m.id, m);
    }
  }
  return [...byId.values()].sort((a, b) => a.seq - b.seq || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Applies a 'message-state' event; returns the same array when nothing changed. */
export function applyMessageState(messages: Message[], messageId: string, state: MessageState): Message[] {
  const index = messages.findIndex((m) => m.id === messageId);
  const current = messages[index];
  if (current === undefined || current.state === state || !shouldApplyState(current.state, state)) {
    return messages;
  }
  const next = messages.slice();
  next[index] = { ...current, state };
  return next;
}

/** The smallest seq in a list (for `beforeSeq` when paging back), or null when empty. */
export function oldestSeq(messages: readonly Message[]): number | null {
  let min: number | null = null;
  for (const m of messages) if (min === null || m.seq < min) min = m.seq;
  return min;
}

/** The largest seq among incoming messages not yet read, or null. */
export function newestUnreadIncomingSeq(messages: readonly Message[]): number | null {
  let max: number | null = null;
  for (const m of messages) {
    if (!m.outgoing && m.state !== "read" && (max === null || m.seq > max)) max = m.seq;
  }
  return max;
}

/** The i18n key naming a delivery state, for labels read by screen readers and tooltips. */
export function stateLabelKey(state: MessageState): MessageKey {
  switch (state) {
    case "queued":
      return "state.queued";
    case "on_relay":
      return "state.on_relay";
    case "delivered":
      return "state.delivered";
    case "read":
      return "state.read";
    case "failed":
      return "state.failed";
  }
}

/** The disappearing-timer settings, in seconds (0 = off; `docs/engine.md` § Disappearing messages). */
export const TIMER_SETTINGS = [0, 300, 3600, 86400, 604800] as const;

/** The i18n key naming a timer setting. */
export function timerKey(seconds: number): "timer.off" | "timer.300" | "timer.3600" | "timer.86400" | "timer.604800" {
  switch (seconds) {
    case 300:
      return "timer.300";
    case 3600:
      return "timer.3600";
    case 86400:
      return "timer.86400";
    case 604800:
      return "timer.604800";
    default:
      return "timer.off";
  }
}
