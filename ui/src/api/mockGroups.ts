/**
 * The groups part of the in-memory mock (./mock.ts): the group commands of the contract
 * (`ui/CONTRACT.md` § Groups) over the mock's contacts, and the demo scenario's groups. Like the
 * engine, it emits `group-message-received` for a member's text and `group-message-state` as an
 * own text moves on (the user's own roster operations emit nothing: their commands return the
 * group).
 */
import type { EngineError, EngineEventName, EngineEvents, Group, GroupMember, GroupMessage } from "./types";

/** What the group mock needs from the rest of the mock. */
export interface GroupMockContext {
  /** The contact's display name; rejects `contact_not_found`. */
  contactName(contactId: unknown): string;
  /** A new opaque id with this prefix. */
  nextId(prefix: string): string;
  /** Emits an engine event, as the engine would. */
  emit<E extends EngineEventName>(name: E, payload: EngineEvents[E]): void;
}

interface GroupRecord {
  group: Group;
  messages: GroupMessage[];
  nextSeq: number;
  lastActivity: number;
}

/** The most members a group may have (the engine's cap, `docs/engine.md` § Groups). */
export const MOCK_GROUP_CAP = 100;
const NAME_MAX = 64;
/** The user's own member key in the mock. */
export const MOCK_OWN_KEY = "k_me";

let groups = new Map<string, GroupRecord>();

function fail(kind: string, message: string): never {
  const error: EngineError = { kind, message };
  throw error;
}

function str(args: Record<string, unknown>, key: string): string {
  const value = args[key];
  if (typeof value !== "string") fail("invalid_input", `${key} must be a string`);
  return value;
}

/** The mock member key of a contact. */
export function mockMemberKey(contactId: string): string {
  return `k_${contactId}`;
}

function record(groupId: unknown): GroupRecord {
  const found = typeof groupId === "string" ? groups.get(groupId) : undefined;
  if (found === undefined) fail("group_not_found", "no such group");
  return found;
}

function copy(group: Group): Group {
  return { ...group, members: group.members.map((m) => ({ ...m })) };
}

function validName(raw: string): string {
  const name = raw.trim();
  if (name === "" || [...name].length > NAME_MAX) fail("group_name_invalid", "group name empty or too long");
  return name;
}

function requireAdmin(rec: GroupRecord): void {
  if (!rec.group.isMember) fail("group_not_member", "you are not a member");
  if (!rec.group.isAdmin) fail("group_not_admin", "only admins may change the roster");
}

function member(rec: GroupRecord, key: string): GroupMember {
  const found = rec.group.members.find((m) => m.key === key);
  if (found === undefined) fail("group_not_member", "no such member");
  return found;
}

/** A group text as it is before anyone's copy moved: no author name, no roster change, no timer; `fields` say the rest. */
export function groupText(
  fields: Partial<GroupMessage> & Pick<GroupMessage, "id" | "authorKey" | "outgoing" | "seq" | "text" | "sentAt" | "state">,
): GroupMessage {
  return {
    authorName: null,
    isRosterChange: false,
    recipients: 0,
    deliveredTo: 0,
    readBy: 0,
    timerSeconds: null,
    expiresAt: null,
    ...fields,
  };
}

function push(
  rec: GroupRecord,
  fields: Partial<GroupMessage> & Pick<GroupMessage, "authorKey" | "text" | "sentAt">,
  ctx: GroupMockContext,
): GroupMessage {
  const message = groupText({
    id: ctx.nextId("gm_"),
    outgoing: fields.authorKey === MOCK_OWN_KEY,
    seq: rec.nextSeq++,
    state: fields.authorKey === MOCK_OWN_KEY ? "queued" : "delivered",
    ...fields,
  });
  rec.messages.push(message);
  rec.lastActivity = Math.max(rec.lastActivity, fields.sentAt);
  if (!message.outgoing && !message.isRosterChange && message.state !== "read") rec.group.unreadCount += 1;
  return message;
}

function rosterLine(rec: GroupRecord, authorKey: string, text: string, ctx: GroupMockContext): void {
  const author = rec.group.members.find((m) => m.key === authorKey);
  push(
    rec,
    { authorKey, authorName: author?.displayName ?? null, text, sentAt: Date.now(), isRosterChange: true, state: "read" },
    ctx,
  );
}

function newGroup(name: string, description: string, contactIds: string[], ctx: GroupMockContext): GroupRecord {
  const unique = [...new Set(contactIds)];
  if (unique.length + 1 > MOCK_GROUP_CAP) fail("group_full", `a group has at most ${MOCK_GROUP_CAP} members`);
  const members: GroupMember[] = [
    { key: MOCK_OWN_KEY, isAdmin: true, contactId: null, displayName: null, isMe: true },
    ...unique.map((contactId) => ({
      key: mockMemberKey(contactId),
      isAdmin: false,
      contactId,
      displayName: ctx.contactName(contactId),
      isMe: false,
    })),
  ];
  const id = ctx.nextId("g_").padEnd(32, "0");
  const rec: GroupRecord = {
    group: { id, name, description, members, isMember: true, isAdmin: true, unreadCount: 0, timerSeconds: 0 },
    messages: [],
    nextSeq: 1,
    lastActivity: Date.now(),
  };
  groups.set(id, rec);
  return rec;
}

/** Moves an own message on as the relay and the members would: on relay, then delivered and read per member. */
function scheduleGroupDelivery(rec: GroupRecord, message: GroupMessage, ctx: GroupMockContext): void {
  const step = (delay: number, change: (m: GroupMessage) => void) =>
    setTimeout(() => {
      if (groups.get(rec.group.id) !== rec) return;
      change(message);
      const { id: messageId, state, recipients, deliveredTo, readBy } = message;
      ctx.emit("group-message-state", { groupId: rec.group.id, messageId, state, recipients, deliveredTo, readBy });
    }, delay);
  step(400, (m) => (m.state = "on_relay"));
  for (let i = 1; i <= message.recipients; i++) {
    step(400 + i * 600, (m) => {
      m.deliveredTo = Math.max(m.deliveredTo, i);
      if (m.deliveredTo === m.recipients) m.state = "delivered";
    });
  }
}

/** The group commands, merged into the mock's handlers. */
export function groupHandlers(ctx: GroupMockContext): Record<string, (args: Record<string, unknown>) => unknown> {
  return {
    create_group: (args): Group => {
      const name = validName(str(args, "name"));
      const description = str(args, "description").trim();
      const contactIds = Array.isArray(args.contactIds) ? args.contactIds.filter((c): c is string => typeof c === "string") : [];
      for (const contactId of contactIds) ctx.contactName(contactId);
      const rec = newGroup(name, description, contactIds, ctx);
      rosterLine(rec, MOCK_OWN_KEY, "created", ctx);
      return copy(rec.group);
    },

    list_groups: (): Group[] =>
      [...groups.values()].sort((a, b) => b.lastActivity - a.lastActivity).map((rec) => copy(rec.group)),

    get_group: (args): Group => copy(record(args.groupId).group),

    get_group_messages: (args): GroupMessage[] => {
      const rec = record(args.groupId);
      const before = typeof args.beforeSeq === "number" ? args.beforeSeq : Number.POSITIVE_INFINITY;
      const limit = typeof args.limit === "number" ? Math.max(1, Math.min(500, args.limit)) : 40;
      return rec.messages
        .filter((m) => m.seq < before)
        .slice(-limit)
        .map((m) => ({ ...m }));
    },

    send_group_message: (args): GroupMessage => {
      const rec = record(args.groupId);
      const text = str(args, "text");
      if (text.trim() === "") fail("invalid_input", "empty message");
      if (new TextEncoder().encode(text).length > 16_000) fail("message_too_long", "text over the limit");
      if (!rec.group.isMember) fail("group_not_member", "you are not a member");
      const now = Date.now();
      const timer = rec.group.timerSeconds;
      const message = push(
        rec,
        {
          authorKey: MOCK_OWN_KEY,
          text,
          sentAt: now,
          recipients: rec.group.members.length - 1,
          timerSeconds: timer === 0 ? null : timer,
          expiresAt: timer === 0 ? null : now + timer * 1000,
        },
        ctx,
      );
      scheduleGroupDelivery(rec, message, ctx);
      return { ...message };
    },

    add_group_member: (args): Group => {
      const rec = record(args.groupId);
      requireAdmin(rec);
      const contactId = str(args, "contactId");
      const displayName = ctx.contactName(contactId);
      const key = mockMemberKey(contactId);
      if (rec.group.members.some((m) => m.key === key)) fail("group_already_member", "already a member");
      if (rec.group.members.length + 1 > MOCK_GROUP_CAP) fail("group_full", "the group is full");
      rec.group.members.push({ key, isAdmin: false, contactId, displayName, isMe: false });
      rosterLine(rec, MOCK_OWN_KEY, `added:${key}`, ctx);
      return copy(rec.group);
    },

    remove_group_member: (args): Group => {
      const rec = record(args.groupId);
      requireAdmin(rec);
      const target = member(rec, str(args, "memberKey"));
      if (target.isAdmin) fail("group_cannot_remove_admin", "an admin cannot be removed");
      rec.group.members = rec.group.members.filter((m) => m.key !== target.key);
      rosterLine(rec, MOCK_OWN_KEY, `removed:${target.key}`, ctx);
      return copy(rec.group);
    },

    promote_group_member: (args): Group => {
      const rec = record(args.groupId);
      requireAdmin(rec);
      const target = member(rec, str(args, "memberKey"));
      if (!target.isAdmin) {
        target.isAdmin = true;
        rosterLine(rec, MOCK_OWN_KEY, `promoted:${target.key}`, ctx);
      }
      return copy(rec.group);
    },

    rename_group: (args): Group => {
      const rec = record(args.groupId);
      requireAdmin(rec);
      rec.group.name = validName(str(args, "name"));
      rec.group.description = str(args, "description").trim();
      rosterLine(rec, MOCK_OWN_KEY, "renamed", ctx);
      return copy(rec.group);
    },

    set_group_timer: (args): Group => {
      const rec = record(args.groupId);
      requireAdmin(rec);
      const seconds = args.seconds;
      if (typeof seconds !== "number" || ![0, 300, 3600, 86400, 604800].includes(seconds)) {
        fail("invalid_input", "timer seconds");
      }
      rec.group.timerSeconds = seconds;
      rosterLine(rec, MOCK_OWN_KEY, `timer:${seconds}`, ctx);
      return copy(rec.group);
    },

    leave_group: (args): Group => {
      const rec = record(args.groupId);
      if (!rec.group.isMember) fail("group_not_member", "you are not a member");
      rosterLine(rec, MOCK_OWN_KEY, "left", ctx);
      rec.group.members = rec.group.members.filter((m) => !m.isMe);
      rec.group.isMember = false;
      rec.group.isAdmin = false;
      return copy(rec.group);
    },

    mark_group_read: (args): null => {
      const rec = record(args.groupId);
      rec.group.unreadCount = 0;
      for (const m of rec.messages) if (!m.outgoing && m.state !== "read") m.state = "read";
      return null;
    },
  };
}

/** What the mock's search looks in: every group's name and texts (not its roster lines). */
export function searchableGroups(): { group: Group; texts: GroupMessage[]; at: number }[] {
  return [...groups.values()].map((rec) => ({
    group: rec.group,
    texts: rec.messages.filter((m) => !m.isRosterChange),
    at: rec.messages[0]?.sentAt ?? rec.lastActivity,
  }));
}

/** Forgets every group (a scenario reset). */
export function resetGroups(): void {
  groups = new Map();
}

/**
 * Stores an incoming group text from the member with `authorKey`, as a message arriving over that
 * member's session would be (for scripts and tests).
 */
export function receiveGroupText(groupId: string, authorKey: string, text: string, ctx: GroupMockContext): void {
  const rec = record(groupId);
  const author = member(rec, authorKey);
  const message = push(rec, { authorKey, authorName: author.displayName, text, sentAt: Date.now() }, ctx);
  ctx.emit("group-message-received", { groupId, message: { ...message } });
}

/**
 * The demo scenario's group: three contacts, a roster line, texts by several authors (one not
 * read yet) and an own message delivered to some of its members.
 */
export function seedDemoGroups(now: number, contactIds: string[], ctx: GroupMockContext): void {
  const rec = newGroup("Weekend hike 🥾", "Takao-san, Saturday", contactIds, ctx);
  rec.lastActivity = now;
  const [first, second, third] = rec.group.members.filter((m) => !m.isMe);
  const at = (minutesAgo: number) => now - minutesAgo * 60_000;
  push(rec, { authorKey: MOCK_OWN_KEY, text: "created", sentAt: at(180), isRosterChange: true, state: "read" }, ctx);
  if (first !== undefined) {
    push(rec, { authorKey: first.key, authorName: first.displayName, text: "Who's bringing the stove?", sentAt: at(90), state: "read" }, ctx);
  }
  push(
    rec,
    { authorKey: MOCK_OWN_KEY, text: "I can. And the map.", sentAt: at(85), state: "read", recipients: 3, deliveredTo: 3, readBy: 3 },
    ctx,
  );
  if (second !== undefined) {
    push(rec, { authorKey: second.key, authorName: second.displayName, text: "Train at 7:42 from Shinjuku 🚆", sentAt: at(60), state: "read" }, ctx);
    push(rec, { authorKey: MOCK_OWN_KEY, text: `promoted:${second.key}`, sentAt: at(55), isRosterChange: true, state: "read" }, ctx);
    second.isAdmin = true;
  }
  push(
    rec,
    { authorKey: MOCK_OWN_KEY, text: "Forecast says sunny ☀️", sentAt: at(20), state: "on_relay", recipients: 3, deliveredTo: 2 },
    ctx,
  );
  if (third !== undefined) {
    push(rec, { authorKey: third.key, authorName: third.displayName, text: "Count me in!", sentAt: at(3) }, ctx);
  }
}
