/**
 * Groups in the UI (`docs/engine.md` § Groups): the author's stable colour, names safe to draw,
 * system lines worded from the engine's roster-change keys, and merging polled pages.
 */
import type { Group, GroupMember, GroupMessage } from "../api/types";
import type { Translate } from "../i18n";
import { timerKey } from "./messages";
import { neutraliseBidi } from "./names";

/** Number of author colours (`.author-tone-N` in styles.css). */
export const AUTHOR_TONES = 8;

/** A stable colour index for an author's identity key: the same key, the same colour, everywhere. */
export function authorTone(key: string): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h % AUTHOR_TONES;
}

/** A group whose name and member names are safe to draw (bidi controls removed). */
export function groupWithSafeNames(group: Group): Group {
  return {
    ...group,
    name: neutraliseBidi(group.name),
    description: neutraliseBidi(group.description),
    members: group.members.map((m) => ({
      ...m,
      displayName: m.displayName === null ? null : neutraliseBidi(m.displayName),
    })),
  };
}

/** The name to draw for a member: "You", the contact's name, or "someone not in your contacts". */
export function memberName(member: Pick<GroupMember, "isMe" | "displayName">, t: Translate): string {
  if (member.isMe) return t("group.you");
  const name = member.displayName === null ? "" : neutraliseBidi(member.displayName);
  return name === "" ? t("group.unknownMember") : name;
}

/** Names by member key: the group's members now, over what was seen before (former members). */
export type KnownNames = Map<string, string>;

/** Adds the group's members and the messages' authors to `known` (a former member keeps its name). */
export function learnNames(known: KnownNames, group: Group | null, messages: GroupMessage[], t: Translate): KnownNames {
  const next = new Map(known);
  for (const m of messages) {
    if (!m.outgoing && m.authorName !== null && neutraliseBidi(m.authorName) !== "") {
      next.set(m.authorKey, neutraliseBidi(m.authorName));
    }
  }
  for (const member of group?.members ?? []) {
    if (member.isMe || member.displayName !== null) next.set(member.key, memberName(member, t));
  }
  return next;
}

/** The author's name for a message: "You" for the user's own. */
export function authorName(message: GroupMessage, known: KnownNames, ownKey: string | null, t: Translate): string {
  if (message.outgoing || message.authorKey === ownKey) return t("group.you");
  const name = message.authorName === null ? "" : neutraliseBidi(message.authorName);
  if (name !== "") return name;
  return known.get(message.authorKey) ?? t("group.unknownMember");
}

/**
 * A system line for a roster change, in words. `text` is the engine's key: `created`, `joined`,
 * `left`, or space-separated `added:KEY`, `removed:KEY`, `promoted:KEY` and `renamed`.
 */
export function rosterLineText(
  message: GroupMessage,
  known: KnownNames,
  ownKey: string | null,
  t: Translate,
): string {
  const author = authorName(message, known, ownKey, t);
  const nameOf = (key: string) =>
    key === ownKey ? t("group.youObject") : (known.get(key) ?? t("group.formerMember"));
  const parts = message.text.split(/\s+/).filter((part) => part !== "");
  const sentences = parts.map((part) => {
    const [kind, key = ""] = part.split(":", 2) as [string, string?];
    switch (kind) {
      case "created":
        return t("line.created", { author });
      case "joined":
        return t("line.joined", { author });
      case "left":
        return t("line.left", { author });
      case "renamed":
        return t("line.renamed", { author });
      case "timer": {
        const setting = t(timerKey(Number(key)));
        return message.outgoing ? t("timer.changedByYou", { setting }) : t("timer.changedByThem", { name: author, setting });
      }
      case "added":
        return t("line.added", { author, name: nameOf(key) });
      case "promoted":
        return t("line.promoted", { author, name: nameOf(key) });
      case "removed":
        if (key === message.authorKey) return t("line.left", { author });
        if (key === ownKey) return t("line.removedYou", { author });
        return t("line.removed", { author, name: nameOf(key) });
      default:
        return t("line.changed", { author });
    }
  });
  return sentences.length === 0 ? t("line.changed", { author }) : sentences.join(" ");
}

/** `current` with `incoming` merged in by id (newer copies win), ordered by seq. */
export function mergeGroupMessages(current: GroupMessage[], incoming: GroupMessage[]): GroupMessage[] {
  if (incoming.length === 0) return current;
  const byId = new Map(current.map((m) => [m.id, m]));
  for (const m of incoming) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

/** Whether any incoming text is not read yet. */
export function hasUnreadIncoming(messages: GroupMessage[]): boolean {
  return messages.some((m) => !m.outgoing && !m.isRosterChange && m.state !== "read");
}
