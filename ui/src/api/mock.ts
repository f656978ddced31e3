/**
 * In-memory mock of the engine contract (./types.ts), used only when the page is not inside the
 * Tauri webview: `npm run dev`, `vite preview` screenshots, and tests.
 *
 * Scenarios are chosen with the URL query `?mock=fresh|empty|demo|offline` (default `fresh`:
 * not onboarded). `window.__sealpostMock` lets scripts drive events (see {@link MockControls}).
 */
import type {
  AppStatus,
  BackupSummary,
  Attachment,
  Chat,
  EngineError,
  EngineEventName,
  EngineEvents,
  Invite,
  InvitePreview,
  Message,
  MessagePage,
  MessageState,
  Profile,
  RelayConnection,
  SafetyNumber,
  SearchHit,
  SearchResults,
  Settings,
  TextRange,
} from "./types";
import {
  groupHandlers,
  receiveGroupText,
  resetGroups,
  searchableGroups,
  seedDemoGroups,
  type GroupMockContext,
} from "./mockGroups";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const LOCAL_RELAY_PORT = 47800;
const LOCAL_RELAY_URL = `ws://127.0.0.1:${LOCAL_RELAY_PORT}`;
const INVITE_LIFETIME = 7 * DAY;

interface ContactRecord {
  chat: Chat;
  messages: Message[];
  nextSeq: number;
  identity: string;
  replies: boolean;
}

interface MockState {
  onboarded: boolean;
  profile: Profile;
  settings: Settings;
  contacts: Map<string, ContactRecord>;
  invites: Invite[];
  spentInvites: Set<string>;
  connections: RelayConnection[];
  counter: number;
  pendingInvite: string | null;
  /** Relay passwords by URL (write-only through the commands, like the engine). */
  relayPasswords: Map<string, string>;
}

type Handler = (payload: never) => void;
const listeners = new Map<EngineEventName, Set<Handler>>();

function fail(kind: string, message: string): never {
  const error: EngineError = { kind, message };
  throw error;
}

/** Small deterministic hash (FNV-1a) for fake identities and QR patterns. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function digitsFrom(seed: string, count: number): string {
  let out = "";
  let h = hash(seed);
  while (out.length < count) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    h = (h + 0x9e3779b9) >>> 0;
    out += String(h % 100000).padStart(5, "0");
  }
  return out.slice(0, count);
}

/** A QR-looking SVG (not a real QR code: the engine makes real ones). */
function fakeQrSvg(seed: string): string {
  const n = 29;
  const cells: string[] = [];
  let h = hash(seed) || 1;
  const finder = (x: number, y: number): boolean => {
    const corners: Array<[number, number]> = [
      [0, 0],
      [n - 7, 0],
      [0, n - 7],
    ];
    return corners.some(([cx, cy]) => x >= cx && x < cx + 7 && y >= cy && y < cy + 7);
  };
  const finderOn = (x: number, y: number): boolean => {
    const lx = x < 7 ? x : x - (n - 7);
    const ly = y < 7 ? y : y - (n - 7);
    const ring = Math.min(lx, ly, 6 - lx, 6 - ly);
    return ring !== 1;
  };
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let on: boolean;
      if (finder(x, y)) on = finderOn(x, y);
      else if ((x === 7 || y === 7 || x === n - 8 || y === n - 8) && (x < 8 || y < 8)) on = false;
      else {
        h ^= h << 13;
        h ^= h >>> 17;
        h ^= h << 5;
        h >>>= 0;
        on = (h & 3) === 0 || (h & 7) === 1;
      }
      if (on) cells.push(`M${x + 4} ${y + 4}h1v1h-1z`);
    }
  }
  const size = n + 8;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}" shape-rendering="crispEdges">` +
    `<rect width="${size}" height="${size}" fill="#fff"/>` +
    `<path fill="#000" d="${cells.join("")}"/></svg>`
  );
}

function base64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): string | null {
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function defaultSettings(): Settings {
  return {
    notifications: { enabled: true, showText: false },
    readReceipts: true,
    localRelay: { enabled: true, port: LOCAL_RELAY_PORT },
    relays: [],
    relaysWithPassword: [],
    socksProxy: null,
  };
}

function settingsView(): Settings {
  const settings = structuredClone(state.settings);
  settings.relaysWithPassword = settings.relays.filter((url) => state.relayPasswords.has(url));
  return settings;
}

function profileName(): string {
  if (typeof location === "undefined") return "default";
  const name = new URLSearchParams(location.search).get("profile") ?? "default";
  return /^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(name) ? name : "default";
}

function freshState(): MockState {
  return {
    onboarded: false,
    profile: { displayName: "", profile: profileName(), relays: [] },
    settings: defaultSettings(),
    contacts: new Map(),
    invites: [],
    spentInvites: new Set(),
    connections: [],
    relayPasswords: new Map(),
    counter: 1,
    pendingInvite: null,
  };
}

/** When set, every command fails with this kind, as when the shell cannot open the profile. */
let openFailure: string | null = null;

function scenarioName(): string {
  if (typeof location === "undefined") return "fresh";
  return new URLSearchParams(location.search).get("mock") ?? "fresh";
}

function latencyMs(): number {
  if (typeof location === "undefined") return 0;
  const raw = new URLSearchParams(location.search).get("latency");
  const value = raw === null ? 40 : Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : 40;
}

let state: MockState = freshState();

function nextId(prefix: string): string {
  state.counter += 1;
  return `${prefix}${state.counter.toString(16).padStart(6, "0")}`;
}

function addContact(
  name: string,
  options: Partial<Pick<Chat, "verified" | "keyChanged" | "blocked">> & { replies?: boolean } = {},
): ContactRecord {
  const contactId = `c_${hash(name).toString(16)}`;
  const record: ContactRecord = {
    chat: {
      contactId,
      displayName: name,
      lastMessage: null,
      unread: 0,
      verified: options.verified ?? false,
      keyChanged: options.keyChanged ?? false,
      blocked: options.blocked ?? false,
      timerSeconds: 0,
    },
    messages: [],
    nextSeq: 1,
    identity: `id-${name}`,
    replies: options.replies ?? true,
  };
  state.contacts.set(contactId, record);
  return record;
}

function pushMessage(
  record: ContactRecord,
  outgoing: boolean,
  text: string,
  at: number,
  messageState: MessageState,
): Message {
  const message: Message = {
    id: nextId("m_"),
    seq: record.nextSeq++,
    outgoing,
    text,
    sentAt: at,
    receivedAt: outgoing ? null : at + 800,
    state: messageState,
    timerSeconds: record.chat.timerSeconds === 0 ? null : record.chat.timerSeconds,
    expiresAt: record.chat.timerSeconds === 0 ? null : at + record.chat.timerSeconds * 1000,
    timerChange: null,
  };
  record.messages.push(message);
  record.chat.lastMessage = { text, at, outgoing };
  if (!outgoing && messageState !== "read") record.chat.unread += 1;
  return message;
}

function seedDemo(now: number): void {
  state.onboarded = true;
  state.profile = { displayName: "Mika", profile: profileName(), relays: [LOCAL_RELAY_URL] };
  state.connections = [{ relayUrl: LOCAL_RELAY_URL, state: "connected", retryInSeconds: null }];

  const chloe = addContact("Chloé Martin");
  const topics = [
    "Did you see the sunrise this morning?",
    "Coffee later?",
    "I pushed the draft to our shared folder.",
    "Sounds good to me.",
    "Let me check and get back to you.",
    "Haha, exactly.",
    "The train is running late again.",
    "Can you send me the address?",
  ];
  const start = now - 3 * DAY;
  for (let i = 0; i < 118; i++) {
    const text = `${topics[i % topics.length] ?? ""} (#${i + 1})`;
    pushMessage(chloe, i % 3 === 0, text, start + i * 20 * MINUTE, "read");
  }

  const ben = addContact("Ben Ortiz", { keyChanged: true });
  pushMessage(ben, false, "New laptop, who dis 😄", now - 5 * HOUR, "delivered");
  ben.chat.unread = 1;

  addContact("Dmitri Volkov", { blocked: true, replies: false });
  const dmitri = state.contacts.get(`c_${hash("Dmitri Volkov").toString(16)}`);
  if (dmitri !== undefined) pushMessage(dmitri, false, "Are you there?", now - 2 * DAY, "read");

  const aiko = addContact("田中 愛子 (Aiko)", { verified: true });
  pushMessage(aiko, false, "Are we still on for Saturday?", now - 26 * HOUR, "read");
  pushMessage(aiko, true, "Yes! 10:00 at the station.", now - 25 * HOUR, "read");
  pushMessage(aiko, false, "Perfect. I'll bring the map.", now - 25 * HOUR + 4 * MINUTE, "read");
  pushMessage(
    aiko,
    true,
    "Here is the trail: https://example.com/trails/takao — links are shown as text, never opened or previewed.",
    now - 40 * MINUTE,
    "read",
  );
  pushMessage(aiko, true, "Should I bring snacks?", now - 12 * MINUTE, "delivered");
  pushMessage(aiko, true, "Also: <b>this is not bold</b>, it is just text.", now - 9 * MINUTE, "on_relay");
  pushMessage(aiko, true, "Leaving in five.", now - 2 * MINUTE, "queued");
  pushMessage(aiko, false, "Great, see you there!\nI'm wearing the blue jacket.", now - MINUTE, "delivered");
  aiko.chat.unread = 1;

  seedDemoGroups(now, [chloe.chat.contactId, aiko.chat.contactId, ben.chat.contactId], groupContext);
}

function reset(): void {
  state = freshState();
  resetGroups();
  openFailure = null;
  const scenario = scenarioName();
  const now = Date.now();
  if (scenario === "demo" || scenario === "offline") seedDemo(now);
  if (scenario === "empty") {
    state.onboarded = true;
    state.profile = { displayName: "Mika", profile: profileName(), relays: [LOCAL_RELAY_URL] };
    state.connections = [{ relayUrl: LOCAL_RELAY_URL, state: "connected", retryInSeconds: null }];
  }
  if (scenario === "offline") {
    state.connections = [{ relayUrl: LOCAL_RELAY_URL, state: "offline", retryInSeconds: 12 }];
  }
}
const groupContext: GroupMockContext = {
  contactName: (contactId) => contact(contactId).chat.displayName,
  nextId,
  emit: (name, payload) => emit(name, payload),
};
reset();

function emit<E extends EngineEventName>(name: E, payload: EngineEvents[E]): void {
  const set = listeners.get(name);
  if (set === undefined) return;
  for (const handler of [...set]) (handler as (p: EngineEvents[E]) => void)(payload);
}

function sortedChats(): Chat[] {
  return [...state.contacts.values()]
    .map((r) => ({ ...r.chat, lastMessage: r.chat.lastMessage ? { ...r.chat.lastMessage } : null }))
    .sort((a, b) => (b.lastMessage?.at ?? 0) - (a.lastMessage?.at ?? 0));
}

/** Attachments sent in the mock (they complete at once). */
const mockAttachments: Attachment[] = [];

function mockAttachment(id: unknown): Attachment {
  const found = mockAttachments.find((a) => a.id === id);
  if (found === undefined) fail("attachment_not_found", "no such attachment");
  return { ...found };
}

/** The file of `send_attachment` / `send_group_attachment` as the app passes it (an OutgoingFile). */
function outgoingFile(args: Record<string, unknown>): { name: string; mediaType: string; bytes: Uint8Array } {
  const file = (args.file ?? {}) as { fileName?: unknown; mediaType?: unknown; bytes?: unknown };
  const bytes = file.bytes instanceof Uint8Array ? file.bytes : new Uint8Array(0);
  if (bytes.length > 100 * 1024 * 1024) fail("attachment_too_large", "file too large");
  return {
    name: typeof file.fileName === "string" ? file.fileName : "file",
    mediaType: typeof file.mediaType === "string" ? file.mediaType : "application/octet-stream",
    bytes,
  };
}

/**
 * The card of a file the user sent with its message `messageId`, stored. The mock has no
 * transfer, but it reports the file as the engine does (docs/engine.md § Attachments): first the
 * upload, without its message (what the command returns), then, complete, linked to its message;
 * that link is what makes the open conversation load the message.
 */
function sentAttachment(
  file: { name: string; mediaType: string; bytes: Uint8Array },
  owner: Pick<Attachment, "contactId" | "groupId">,
  messageId: string,
): Attachment {
  const upload: Attachment = {
    id: nextId("a_"),
    ...owner,
    messageId: null,
    outgoing: true,
    fileName: file.name,
    mediaType: file.mediaType,
    size: file.bytes.length,
    isImage: ["image/png", "image/jpeg", "image/webp"].includes(file.mediaType),
    state: "uploading",
    doneChunks: 0,
    totalChunks: 1,
    error: null,
  };
  emit("attachment-updated", { attachment: { ...upload } });
  const done: Attachment = { ...upload, messageId, state: "complete", doneChunks: 1 };
  mockAttachments.push(done);
  emit("attachment-updated", { attachment: { ...done } });
  return upload;
}

function contact(contactId: unknown): ContactRecord {
  const record = typeof contactId === "string" ? state.contacts.get(contactId) : undefined;
  if (record === undefined) fail("contact_not_found", "no such contact");
  return record;
}

function requireOnboarded(): void {
  if (!state.onboarded) fail("not_onboarded", "profile has no keys yet");
}

function str(args: Record<string, unknown>, key: string): string {
  const value = args[key];
  if (typeof value !== "string") fail("invalid_input", `${key} must be a string`);
  return value;
}

function validDisplayName(raw: string): string {
  const name = raw.trim();
  if (name.length === 0 || name.length > 64) fail("display_name_invalid", "display name must be 1-64 chars");
  return name;
}

function validRelayUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    fail("relay_url_invalid", "not a URL");
  }
  const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
  if (url.protocol === "wss:" || (url.protocol === "ws:" && loopback)) return url.toString().replace(/\/$/, "");
  fail("relay_url_invalid", "relay must be wss:// (or ws:// on loopback)");
}

function scheduleDelivery(record: ContactRecord, message: Message): void {
  const contactId = record.chat.contactId;
  const step = (delay: number, next: MessageState): void => {
    setTimeout(() => {
      if (!state.contacts.has(contactId) || message.state === "failed") return;
      message.state = next;
      emit("message-state", { contactId, messageId: message.id, state: next });
    }, delay);
  };
  const offline = state.connections.every((c) => c.state !== "connected");
  if (offline) return;
  step(500, "on_relay");
  step(1500, "delivered");
  if (record.replies) {
    step(3000, "read");
    setTimeout(() => {
      if (!state.contacts.has(contactId) || record.chat.blocked) return;
      const reply = pushMessage(record, false, replyTo(message.text), Date.now(), "delivered");
      emit("message-received", { contactId, message: { ...reply } });
    }, 4200);
  }
}

function replyTo(text: string): string {
  if (text.trim().endsWith("?")) return "Good question — let me think about it.";
  if (text.length > 80) return "That's a lot to read, thank you!";
  return "👍";
}

function toInvitePreview(text: string): InvitePreview {
  const trimmed = text.trim();
  if (!trimmed.startsWith("sealpost:")) fail("invite_corrupt", "not a sealpost: link");
  if (state.invites.some((i) => i.text === trimmed)) fail("invite_own", "this is your own invite");
  const match = /^sealpost:\/\/invite\/v1\/([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{8,})(?:\.(\d+))?$/.exec(trimmed);
  if (match === null) fail("invite_corrupt", "invite does not decode");
  const name = fromBase64url(match[1] ?? "");
  if (name === null || name.length === 0) fail("invite_corrupt", "invite name does not decode");
  const expiresAt = match[3] !== undefined ? Number(match[3]) : Date.now() + INVITE_LIFETIME;
  if (expiresAt < Date.now()) fail("invite_expired", "invite expired");
  if (state.spentInvites.has(trimmed)) fail("invite_used", "invite already used");
  const groups = digitsFrom(`id-${name}`, 15).match(/.{5}/g) ?? [];
  return {
    displayName: name,
    safetyPreview: groups.join(" "),
    relays: [LOCAL_RELAY_URL],
    expiresAt,
  };
}

/** Makes a well-formed mock invite text for a given inviter name. */
export function mockInviteText(name: string, expiresAt?: number): string {
  const suffix = expiresAt === undefined ? "" : `.${expiresAt}`;
  return `sealpost://invite/v1/${base64url(name)}.${digitsFrom(name, 24)}${suffix}`;
}

const handlers: Record<string, (args: Record<string, unknown>) => unknown> = {
  app_status: (): AppStatus => ({
    profile: state.profile.profile,
    onboarded: state.onboarded,
    localRelay: {
      enabled: state.settings.localRelay.enabled,
      running: state.onboarded && state.settings.localRelay.enabled,
      url: state.onboarded && state.settings.localRelay.enabled ? LOCAL_RELAY_URL : null,
    },
    connections: state.connections.map((c) => ({ ...c })),
  }),

  onboard: (args): Profile => {
    if (state.onboarded) fail("already_onboarded", "profile already has keys");
    const displayName = validDisplayName(str(args, "displayName"));
    const relay = args.relay as { kind?: unknown; url?: unknown; password?: unknown } | undefined;
    let relayUrl: string;
    if (relay?.kind === "local") {
      relayUrl = LOCAL_RELAY_URL;
      state.settings.localRelay.enabled = true;
    } else if (relay?.kind === "remote" && typeof relay.url === "string") {
      relayUrl = validRelayUrl(relay.url);
      state.settings.localRelay.enabled = false;
      state.settings.relays = [relayUrl];
      if (typeof relay.password === "string" && relay.password !== "") {
        state.relayPasswords.set(relayUrl, relay.password);
      }
    } else {
      fail("invalid_input", "relay must be {kind:'local'} or {kind:'remote', url}");
    }
    state.onboarded = true;
    state.profile = { displayName, profile: state.profile.profile, relays: [relayUrl] };
    state.connections = [{ relayUrl, state: "connecting", retryInSeconds: null }];
    setTimeout(() => {
      state.connections = [{ relayUrl, state: "connected", retryInSeconds: null }];
      emit("connection-state", { connections: state.connections.map((c) => ({ ...c })) });
    }, 700);
    return { ...state.profile, relays: [...state.profile.relays] };
  },

  get_profile: (): Profile => {
    requireOnboarded();
    return { ...state.profile, relays: [...state.profile.relays] };
  },

  set_display_name: (args): Profile => {
    requireOnboarded();
    state.profile.displayName = validDisplayName(str(args, "displayName"));
    return { ...state.profile, relays: [...state.profile.relays] };
  },

  list_chats: (): Chat[] => {
    requireOnboarded();
    return sortedChats();
  },

  get_messages: (args): MessagePage => {
    const record = contact(args.contactId);
    const before = typeof args.beforeSeq === "number" ? args.beforeSeq : Number.POSITIVE_INFINITY;
    const limit = typeof args.limit === "number" && args.limit > 0 ? Math.min(args.limit, 200) : 50;
    const older = record.messages.filter((m) => m.seq < before).sort((a, b) => a.seq - b.seq);
    const page = older.slice(Math.max(0, older.length - limit));
    return { messages: page.map((m) => ({ ...m })), hasMore: older.length > page.length };
  },

  send_attachment: (args): Attachment => {
    const record = contact(args.contactId);
    const file = outgoingFile(args);
    const message = pushMessage(record, true, file.name, Date.now(), "queued");
    scheduleDelivery(record, message);
    return sentAttachment(file, { contactId: record.chat.contactId, groupId: null }, message.id);
  },

  get_attachments: (args): Attachment[] =>
    mockAttachments.filter((a) => a.contactId === args.contactId).map((a) => ({ ...a })),

  download_attachment: (args): Attachment => mockAttachment(args.attachmentId),

  cancel_attachment: (args): Attachment => mockAttachment(args.attachmentId),

  save_attachment: (args): string => `~/Downloads/${mockAttachment(args.attachmentId).fileName}`,

  attachment_preview: (): ArrayBuffer => fail("invalid_input", "no preview in the mock"),

  send_message: (args): Message => {
    const record = contact(args.contactId);
    const text = str(args, "text");
    if (text.trim().length === 0) fail("invalid_input", "empty message");
    if (text.length > 16_000) fail("message_too_long", "message longer than 16000 characters");
    if (record.chat.keyChanged) fail("key_change_pending", "accept or verify the new key first");
    if (record.chat.blocked) fail("contact_blocked", "contact is blocked");
    const message = pushMessage(record, true, text, Date.now(), "queued");
    scheduleDelivery(record, message);
    return { ...message };
  },

  set_chat_timer: (args): Message => {
    const record = contact(args.contactId);
    const seconds = typeof args.seconds === "number" ? args.seconds : -1;
    if (![0, 300, 3600, 86400, 604800].includes(seconds)) fail("invalid_input", "timer seconds");
    record.chat.timerSeconds = seconds;
    const message: Message = {
      id: nextId("m_"),
      seq: record.nextSeq++,
      outgoing: true,
      text: "",
      sentAt: Date.now(),
      receivedAt: null,
      state: "queued",
      timerSeconds: null,
      expiresAt: null,
      timerChange: seconds,
    };
    record.messages.push(message);
    emit("contact-updated", { contactId: record.chat.contactId });
    return { ...message };
  },

  mark_read: (args): void => {
    const record = contact(args.contactId);
    const upTo = typeof args.upToSeq === "number" ? args.upToSeq : 0;
    let changed = false;
    for (const m of record.messages) {
      if (!m.outgoing && m.seq <= upTo && m.state !== "read") {
        m.state = "read";
        changed = true;
      }
    }
    const unread = record.messages.filter((m) => !m.outgoing && m.state !== "read").length;
    if (unread !== record.chat.unread) changed = true;
    record.chat.unread = unread;
    if (changed) emit("contact-updated", { contactId: record.chat.contactId });
  },

  create_invite: (): Invite => {
    requireOnboarded();
    const now = Date.now();
    const text = mockInviteText(state.profile.displayName, now + INVITE_LIFETIME).replace(
      /\.(\d{24})\./,
      `.${digitsFrom(String(now + state.counter), 24)}.`,
    );
    const invite: Invite = {
      id: nextId("inv_"),
      text,
      qrSvg: fakeQrSvg(text),
      createdAt: now,
      expiresAt: now + INVITE_LIFETIME,
    };
    state.invites.unshift(invite);
    return { ...invite };
  },

  list_invites: (): Invite[] => {
    requireOnboarded();
    const now = Date.now();
    return state.invites.filter((i) => i.expiresAt > now).map((i) => ({ ...i }));
  },

  revoke_invite: (args): void => {
    const id = str(args, "id");
    const before = state.invites.length;
    state.invites = state.invites.filter((i) => i.id !== id);
    if (state.invites.length === before) fail("invite_revoked", "no open invite with that id");
  },

  preview_invite: (args): InvitePreview => {
    requireOnboarded();
    return toInvitePreview(str(args, "text"));
  },

  accept_invite: (args): Chat => {
    requireOnboarded();
    const text = str(args, "text").trim();
    const preview = toInvitePreview(text);
    const displayName = validDisplayName(str(args, "displayName"));
    const existing = [...state.contacts.values()].find((r) => r.identity === `id-${preview.displayName}`);
    if (existing !== undefined) fail("contact_exists", "you already have this contact");
    state.spentInvites.add(text);
    const record = addContact(displayName);
    record.identity = `id-${preview.displayName}`;
    return { ...record.chat };
  },

  get_safety_number: (args): SafetyNumber => {
    const record = contact(args.contactId);
    const mine = `id-${state.profile.displayName}`;
    // While a key change is pending the number is the NEW key's (the one accepting installs).
    const current = [mine, record.identity].sort().join("|");
    const shown = record.chat.keyChanged ? [mine, `${record.identity}+new`].sort().join("|") : current;
    return {
      digits: digitsFrom(shown, 60),
      qrSvg: fakeQrSvg(shown),
      isPendingKey: record.chat.keyChanged,
      previousDigits: record.chat.keyChanged ? digitsFrom(current, 60) : null,
    };
  },

  set_verified: (args): void => {
    const record = contact(args.contactId);
    record.chat.verified = args.verified === true;
    emit("contact-updated", { contactId: record.chat.contactId });
  },

  accept_key_change: (args): void => {
    const record = contact(args.contactId);
    if (!record.chat.keyChanged) fail("invalid_input", "no key change is pending");
    record.chat.keyChanged = false;
    record.chat.verified = false;
    record.identity = `${record.identity}+new`;
    emit("contact-updated", { contactId: record.chat.contactId });
  },

  reject_key_change: (args): void => {
    const record = contact(args.contactId);
    if (!record.chat.keyChanged) fail("invalid_input", "no key change is pending");
    record.chat.keyChanged = false;
    record.chat.verified = false;
    emit("contact-updated", { contactId: record.chat.contactId });
  },

  block_contact: (args): void => {
    const record = contact(args.contactId);
    record.chat.blocked = args.blocked === true;
    emit("contact-updated", { contactId: record.chat.contactId });
  },

  repair_session: (args): void => {
    const record = contact(args.contactId);
    if (record.chat.blocked) fail("contact_blocked", "the contact is blocked");
    emit("contact-updated", { contactId: record.chat.contactId });
  },

  delete_contact: (args): void => {
    const record = contact(args.contactId);
    state.contacts.delete(record.chat.contactId);
    emit("contact-updated", { contactId: record.chat.contactId });
  },

  rename_contact: (args): void => {
    const record = contact(args.contactId);
    record.chat.displayName = validDisplayName(str(args, "displayName"));
    emit("contact-updated", { contactId: record.chat.contactId });
  },

  take_pending_invite: (): string | null => {
    const text = state.pendingInvite;
    state.pendingInvite = null;
    return text;
  },

  get_settings: (): Settings => settingsView(),

  set_socks_proxy: (args): Settings => {
    const address = args.address;
    if (address === null || address === "") state.settings.socksProxy = null;
    else if (typeof address === "string" && /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d{1,5}$/.test(address.trim()))
      state.settings.socksProxy = address.trim();
    else fail("invalid_input", "the proxy must be IP:port");
    return settingsView();
  },

  set_relay_password: (args): Settings => {
    const url = validRelayUrl(str(args, "url"));
    const password = args.password;
    if (password === null || password === "") state.relayPasswords.delete(url);
    else if (typeof password === "string") state.relayPasswords.set(url, password);
    else fail("invalid_input", "password must be a string or null");
    return settingsView();
  },

  update_settings: (args): Settings => {
    const next = args as unknown as Settings;
    if (
      typeof next.notifications?.enabled !== "boolean" ||
      typeof next.notifications.showText !== "boolean" ||
      typeof next.readReceipts !== "boolean" ||
      typeof next.localRelay?.enabled !== "boolean" ||
      !Array.isArray(next.relays)
    ) {
      fail("invalid_input", "settings are incomplete");
    }
    const relays = next.relays.map((r) => validRelayUrl(String(r)));
    state.settings = {
      notifications: { enabled: next.notifications.enabled, showText: next.notifications.showText },
      readReceipts: next.readReceipts,
      localRelay: { enabled: next.localRelay.enabled, port: next.localRelay.port },
      relays: [...new Set(relays)],
      relaysWithPassword: [],
      socksProxy: state.settings.socksProxy,
    };
    const urls = [...(state.settings.localRelay.enabled ? [LOCAL_RELAY_URL] : []), ...state.settings.relays];
    state.profile.relays = urls;
    state.connections = urls.map((relayUrl) => {
      const old = state.connections.find((c) => c.relayUrl === relayUrl);
      return old ?? { relayUrl, state: "connecting", retryInSeconds: null };
    });
    emit("connection-state", { connections: state.connections.map((c) => ({ ...c })) });
    setTimeout(() => {
      state.connections = state.connections.map((c) =>
        c.relayUrl === LOCAL_RELAY_URL
          ? { ...c, state: "connected", retryInSeconds: null }
          : c.state === "connecting"
            ? { ...c, state: "offline", retryInSeconds: 30 }
            : c,
      );
      emit("connection-state", { connections: state.connections.map((c) => ({ ...c })) });
    }, 900);
    return settingsView();
  },
};

/** Case and accents folded, keeping one UTF-16 unit per precomposed letter (close to the engine). */
function foldForSearch(text: string): string {
  return Array.from(text, (ch) => {
    const folded = ch.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
    return folded.length === ch.length ? folded : ch;
  }).join("");
}

/** The mock's search: every word of the query must occur in the text (as a prefix of a word,
 * or anywhere for CJK); ranges are where they occur. Any query is data. */
function searchHits(query: string): SearchHit[] {
  const terms = foldForSearch(query.slice(0, 1024))
    .split(/[^\p{L}\p{N}]+/u)
    .filter((term) => term.length > 0)
    .slice(0, 16);
  if (terms.length === 0) return [];
  const hits: SearchHit[] = [];
  type Where = Pick<SearchHit, "messageId" | "contactId" | "groupId" | "seq" | "outgoing" | "authorKey" | "at">;
  const consider = (text: string, where: Where) => {
    const folded = foldForSearch(text);
    const matches: TextRange[] = [];
    const all = terms.every((term) => {
      let found = false;
      for (let at = folded.indexOf(term); at >= 0; at = folded.indexOf(term, at + term.length)) {
        const before = at === 0 ? "" : (folded[at - 1] ?? "");
        const cjk = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u.test(term);
        if (cjk || before === "" || !/[\p{L}\p{N}]/u.test(before)) {
          matches.push({ start: at, end: at + term.length });
          found = true;
        }
      }
      return found;
    });
    if (!all) return;
    matches.sort((a, b) => a.start - b.start);
    const first = matches[0]?.start ?? 0;
    const start = Math.max(0, first - 40);
    const end = Math.min(text.length, start + 160);
    hits.push({
      ...where,
      snippet: text.slice(start, end),
      snippetMatches: matches
        .filter((m) => m.end > start && m.start < end)
        .map((m) => ({ start: Math.max(m.start, start) - start, end: Math.min(m.end, end) - start })),
      cutBefore: start > 0,
      cutAfter: end < text.length,
      matches,
    });
  };
  for (const [contactId, record] of state.contacts) {
    for (const message of record.messages) {
      consider(message.text, {
        messageId: message.id,
        contactId,
        groupId: null,
        seq: message.seq,
        outgoing: message.outgoing,
        authorKey: null,
        at: message.receivedAt ?? message.sentAt,
      });
    }
  }
  for (const { group, texts, at } of searchableGroups()) {
    consider(group.name, { messageId: null, contactId: null, groupId: group.id, seq: 0, outgoing: false, authorKey: null, at });
    for (const message of texts) {
      consider(message.text, {
        messageId: message.id,
        contactId: null,
        groupId: group.id,
        seq: message.seq,
        outgoing: message.outgoing,
        authorKey: message.authorKey,
        at: message.sentAt,
      });
    }
  }
  return hits.sort((a, b) => b.at - a.at);
}

handlers.search_messages = (args): SearchResults => {
  requireOnboarded();
  const query = typeof args.query === "string" ? args.query : "";
  const limit = typeof args.limit === "number" && args.limit > 0 ? Math.min(args.limit, 100) : 20;
  const offset = typeof args.before === "string" ? Number.parseInt(args.before, 10) || 0 : 0;
  const all = searchHits(query);
  const hits = all.slice(offset, offset + limit);
  return { hits, next: offset + limit < all.length ? String(offset + limit) : null };
};
/** The mock's backup: progress events, then a summary; no file is written. A typed passphrase
 * shorter than 20 characters stands for one the engine's strength check refuses. */
handlers.export_backup = (args): BackupSummary => {
  requireOnboarded();
  const passphrase = str(args, "passphrase");
  const path = str(args, "path");
  if (passphrase.length < 20) fail("backup_passphrase_weak", "the passphrase is too weak");
  const total = 4 * 1024 * 1024;
  for (const done of [0, total / 2, total]) {
    emit("backup-progress", { phase: done === 0 ? "preparing" : "sealing", done, total });
  }
  return { path: path === "" ? "/home/mock/Documents/sealpost-backup.sealpost" : path, bytes: total + 79 };
};
/** The mock's restore: "wrong" in the passphrase is a wrong one, "damaged" in the path a damaged
 * file; otherwise the profile becomes onboarded (the real app relaunches instead). */
handlers.restore_backup = (args): null => {
  if (state.onboarded) fail("already_onboarded", "profile already has keys");
  const passphrase = str(args, "passphrase");
  const path = str(args, "path");
  if (path.includes("damaged")) fail("backup_damaged", "the backup file is damaged or was changed");
  if (passphrase.includes("wrong")) fail("backup_wrong_passphrase", "the passphrase does not open this backup");
  emit("backup-progress", { phase: "finishing", done: 1, total: 1 });
  state.onboarded = true;
  return null;
};
Object.assign(handlers, groupHandlers(groupContext));
// A group's file: its message (the file name) through the group mock, the card here.
handlers.send_group_attachment = (args): Attachment => {
  const file = outgoingFile(args);
  const sendText = handlers.send_group_message;
  if (sendText === undefined) fail("invalid_input", "no group mock");
  const message = sendText({ groupId: args.groupId, text: file.name }) as { id: string };
  return sentAttachment(file, { contactId: null, groupId: String(args.groupId) }, message.id);
};
handlers.get_group_attachments = (args): Attachment[] =>
  mockAttachments.filter((a) => a.groupId === args.groupId).map((a) => ({ ...a }));

/** The mock's `invoke`: same command names and argument shapes as the engine. */
export async function mockInvoke<T>(command: string, args: Record<string, unknown>): Promise<T> {
  const delay = latencyMs();
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  if (openFailure !== null) fail(openFailure, `the profile could not be opened (${openFailure})`);
  const handler = handlers[command];
  if (handler === undefined) fail("internal", `unknown command ${command}`);
  return handler(args) as T;
}

/** The mock's `listen`. */
export function mockListen<E extends EngineEventName>(
  name: E,
  handler: (payload: EngineEvents[E]) => void,
): () => void {
  let set = listeners.get(name);
  if (set === undefined) {
    set = new Set();
    listeners.set(name, set);
  }
  const h = handler as Handler;
  set.add(h);
  return () => set.delete(h);
}

/** Hooks for scripts and tests to drive the mock. */
export interface MockControls {
  /** Resets to the scenario in the URL (or the given one). */
  reset(scenario?: string): void;
  /** Emits an engine event as if the engine did. */
  emit<E extends EngineEventName>(name: E, payload: EngineEvents[E]): void;
  /** Stores an incoming message from a contact and emits 'message-received'. */
  receive(contactId: string, text: string): void;
  /** Marks a contact's key as changed and emits 'key-changed'. */
  changeKey(contactId: string): void;
  /** Replaces the connection list and emits 'connection-state'. */
  setConnections(connections: RelayConnection[]): void;
  /** A valid invite text from someone else, for the add-contact form. */
  inviteFrom(name: string, expiresAt?: number): string;
  /** Stores an incoming text in a group from the member with `authorKey`. */
  receiveGroup(groupId: string, authorKey: string, text: string): void;
  /** Contact ID for a display name. */
  contactIdOf(name: string): string | undefined;
  /** Sets the link returned once by `take_pending_invite` (an app started by a deep link). */
  setPendingInvite(text: string | null): void;
  /**
   * Makes every command fail with `kind` (e.g. `identity_missing`, `keychain_unavailable`), as the
   * shell does while it cannot open the profile; `null` lets the next command open it.
   */
  setOpenFailure(kind: string | null): void;
}

export const controls: MockControls = {
  reset(scenario?: string) {
    if (scenario !== undefined && typeof history !== "undefined") {
      const url = new URL(location.href);
      url.searchParams.set("mock", scenario);
      history.replaceState(null, "", url);
    }
    reset();
  },
  emit,
  receive(contactId, text) {
    const record = contact(contactId);
    const message = pushMessage(record, false, text, Date.now(), "delivered");
    emit("message-received", { contactId, message: { ...message } });
  },
  changeKey(contactId) {
    const record = contact(contactId);
    record.chat.keyChanged = true;
    emit("key-changed", { contactId });
  },
  setConnections(connections) {
    state.connections = connections.map((c) => ({ ...c }));
    emit("connection-state", { connections: state.connections.map((c) => ({ ...c })) });
  },
  inviteFrom: (name, expiresAt) => mockInviteText(name, expiresAt),
  receiveGroup: (groupId, authorKey, text) => receiveGroupText(groupId, authorKey, text, groupContext),
  contactIdOf: (name) => [...state.contacts.values()].find((r) => r.chat.displayName === name)?.chat.contactId,
  setPendingInvite(text) {
    state.pendingInvite = text;
  },
  setOpenFailure(kind) {
    openFailure = kind;
  },
};

if (typeof window !== "undefined") {
  (window as unknown as { __sealpostMock?: MockControls }).__sealpostMock = controls;
}
