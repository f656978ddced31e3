// The contract as the Rust side must implement it: every wrapper calls Tauri's invoke with the
// snake_case command name and camelCase arguments, and rejections become {kind, message}.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
const listen = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: (...args: unknown[]) => listen(...args) }));

const commands = await import("./commands");
const events = await import("./events");

beforeAll(() => {
  window.__TAURI_INTERNALS__ = {};
});
afterAll(() => {
  delete window.__TAURI_INTERNALS__;
});
beforeEach(() => {
  invoke.mockReset();
  invoke.mockResolvedValue("ok");
  listen.mockReset();
});

const settings = {
  notifications: { enabled: true, showText: false },
  readReceipts: true,
  localRelay: { enabled: true, port: 47800 },
  relays: ["wss://relay.example.org"],
  relaysWithPassword: [],
  socksProxy: null,
};

const cases: Array<[string, () => Promise<unknown>, string, Record<string, unknown> | undefined]> = [
  ["appStatus", () => commands.appStatus(), "app_status", undefined],
  [
    "onboard local",
    () => commands.onboard({ displayName: "Mika", relay: { kind: "local" } }),
    "onboard",
    { displayName: "Mika", relay: { kind: "local" } },
  ],
  [
    "onboard remote",
    () => commands.onboard({ displayName: "Mika", relay: { kind: "remote", url: "wss://r.example.org" } }),
    "onboard",
    { displayName: "Mika", relay: { kind: "remote", url: "wss://r.example.org" } },
  ],
  ["getProfile", () => commands.getProfile(), "get_profile", undefined],
  ["setDisplayName", () => commands.setDisplayName({ displayName: "M" }), "set_display_name", { displayName: "M" }],
  ["listChats", () => commands.listChats(), "list_chats", undefined],
  [
    "getMessages",
    () => commands.getMessages({ contactId: "c1", beforeSeq: null, limit: 40 }),
    "get_messages",
    { contactId: "c1", beforeSeq: null, limit: 40 },
  ],
  [
    "searchMessages",
    () => commands.searchMessages({ query: "café", limit: 20, before: null }),
    "search_messages",
    { query: "café", limit: 20, before: null },
  ],
  [
    "sendMessage",
    () => commands.sendMessage({ contactId: "c1", text: "hi" }),
    "send_message",
    { contactId: "c1", text: "hi" },
  ],
  [
    "setChatTimer",
    () => commands.setChatTimer({ contactId: "c1", seconds: 3600 }),
    "set_chat_timer",
    { contactId: "c1", seconds: 3600 },
  ],
  ["getAttachments", () => commands.getAttachments({ contactId: "c1" }), "get_attachments", { contactId: "c1" }],
  [
    "downloadAttachment",
    () => commands.downloadAttachment({ attachmentId: "a1" }),
    "download_attachment",
    { attachmentId: "a1" },
  ],
  ["cancelAttachment", () => commands.cancelAttachment({ attachmentId: "a1" }), "cancel_attachment", { attachmentId: "a1" }],
  ["saveAttachment", () => commands.saveAttachment({ attachmentId: "a1" }), "save_attachment", { attachmentId: "a1" }],
  ["markRead", () => commands.markRead({ contactId: "c1", upToSeq: 9 }), "mark_read", { contactId: "c1", upToSeq: 9 }],
  ["createInvite", () => commands.createInvite(), "create_invite", undefined],
  ["listInvites", () => commands.listInvites(), "list_invites", undefined],
  ["revokeInvite", () => commands.revokeInvite({ id: "i1" }), "revoke_invite", { id: "i1" }],
  ["previewInvite", () => commands.previewInvite({ text: "sealpost:x" }), "preview_invite", { text: "sealpost:x" }],
  [
    "acceptInvite",
    () => commands.acceptInvite({ text: "sealpost:x", displayName: "Sam" }),
    "accept_invite",
    { text: "sealpost:x", displayName: "Sam" },
  ],
  ["getSafetyNumber", () => commands.getSafetyNumber({ contactId: "c1" }), "get_safety_number", { contactId: "c1" }],
  [
    "setVerified",
    () => commands.setVerified({ contactId: "c1", verified: true }),
    "set_verified",
    { contactId: "c1", verified: true },
  ],
  ["acceptKeyChange", () => commands.acceptKeyChange({ contactId: "c1" }), "accept_key_change", { contactId: "c1" }],
  ["rejectKeyChange", () => commands.rejectKeyChange({ contactId: "c1" }), "reject_key_change", { contactId: "c1" }],
  [
    "blockContact",
    () => commands.blockContact({ contactId: "c1", blocked: true }),
    "block_contact",
    { contactId: "c1", blocked: true },
  ],
  ["repairSession", () => commands.repairSession({ contactId: "c1" }), "repair_session", { contactId: "c1" }],
  ["deleteContact", () => commands.deleteContact({ contactId: "c1" }), "delete_contact", { contactId: "c1" }],
  [
    "renameContact",
    () => commands.renameContact({ contactId: "c1", displayName: "B" }),
    "rename_contact",
    { contactId: "c1", displayName: "B" },
  ],
  ["takePendingInvite", () => commands.takePendingInvite(), "take_pending_invite", undefined],
  ["getSettings", () => commands.getSettings(), "get_settings", undefined],
  ["updateSettings", () => commands.updateSettings(settings), "update_settings", settings],
  ["setSocksProxy", () => commands.setSocksProxy({ address: null }), "set_socks_proxy", { address: null }],
  [
    "createGroup",
    () => commands.createGroup({ name: "Trip", description: "", contactIds: ["c1", "c2"] }),
    "create_group",
    { name: "Trip", description: "", contactIds: ["c1", "c2"] },
  ],
  ["listGroups", () => commands.listGroups(), "list_groups", undefined],
  ["getGroup", () => commands.getGroup({ groupId: "g1" }), "get_group", { groupId: "g1" }],
  [
    "getGroupMessages",
    () => commands.getGroupMessages({ groupId: "g1", beforeSeq: null, limit: 40 }),
    "get_group_messages",
    { groupId: "g1", beforeSeq: null, limit: 40 },
  ],
  [
    "sendGroupMessage",
    () => commands.sendGroupMessage({ groupId: "g1", text: "hi" }),
    "send_group_message",
    { groupId: "g1", text: "hi" },
  ],
  [
    "getGroupAttachments",
    () => commands.getGroupAttachments({ groupId: "g1" }),
    "get_group_attachments",
    { groupId: "g1" },
  ],
  [
    "addGroupMember",
    () => commands.addGroupMember({ groupId: "g1", contactId: "c1" }),
    "add_group_member",
    { groupId: "g1", contactId: "c1" },
  ],
  [
    "removeGroupMember",
    () => commands.removeGroupMember({ groupId: "g1", memberKey: "ab" }),
    "remove_group_member",
    { groupId: "g1", memberKey: "ab" },
  ],
  [
    "promoteGroupMember",
    () => commands.promoteGroupMember({ groupId: "g1", memberKey: "ab" }),
    "promote_group_member",
    { groupId: "g1", memberKey: "ab" },
  ],
  [
    "renameGroup",
    () => commands.renameGroup({ groupId: "g1", name: "New", description: "d" }),
    "rename_group",
    { groupId: "g1", name: "New", description: "d" },
  ],
  [
    "setGroupTimer",
    () => commands.setGroupTimer({ groupId: "g1", seconds: 300 }),
    "set_group_timer",
    { groupId: "g1", seconds: 300 },
  ],
  ["leaveGroup", () => commands.leaveGroup({ groupId: "g1" }), "leave_group", { groupId: "g1" }],
  ["markGroupRead", () => commands.markGroupRead({ groupId: "g1" }), "mark_group_read", { groupId: "g1" }],
  [
    "exportBackup",
    () => commands.exportBackup({ path: "", passphrase: "ABCD-EFGH" }),
    "export_backup",
    { path: "", passphrase: "ABCD-EFGH" },
  ],
  [
    "restoreBackup",
    () => commands.restoreBackup({ path: "/tmp/a.sealpost", passphrase: "ABCD-EFGH" }),
    "restore_backup",
    { path: "/tmp/a.sealpost", passphrase: "ABCD-EFGH" },
  ],
  [
    "setRelayPassword",
    () => commands.setRelayPassword({ url: "wss://relay.example.org", password: "pw" }),
    "set_relay_password",
    { url: "wss://relay.example.org", password: "pw" },
  ],
];

describe("command wrappers", () => {
  it.each(cases)("%s → invoke(%s)", async (_name, call, command, args) => {
    await expect(call()).resolves.toBe("ok");
    expect(invoke).toHaveBeenCalledTimes(1);
    expect(invoke).toHaveBeenCalledWith(command, args);
  });

  it("covers every exported wrapper exactly", () => {
    const exported = Object.keys(commands).sort();
    const tested = [...new Set([...cases.map(([name]) => name.split(" ")[0]), ...rawWrappers])].sort();
    expect(tested).toEqual(exported);
  });

  it("command names are snake_case and argument names camelCase", () => {
    for (const [, , command, args] of cases) {
      expect(command).toMatch(/^[a-z]+(_[a-z]+)*$/);
      for (const key of Object.keys(args ?? {})) expect(key).toMatch(/^[a-z][a-zA-Z]*$/);
    }
  });

  it("rejects with {kind, message} when the engine returns an error", async () => {
    invoke.mockRejectedValueOnce({ kind: "invite_expired", message: "expired" });
    await expect(commands.previewInvite({ text: "x" })).rejects.toEqual({ kind: "invite_expired", message: "expired" });
  });

  it("turns a plain string rejection into an internal error", async () => {
    invoke.mockRejectedValueOnce("Command foo not found");
    await expect(commands.appStatus()).rejects.toEqual({ kind: "internal", message: "Command foo not found" });
  });
});

// Files cross IPC as raw bytes (ui/CONTRACT.md § Files across IPC), tested below.
const rawWrappers = ["sendAttachment", "sendGroupAttachment", "attachmentPreview"];

/** The headers `invoke` was called with, as a plain object. */
function sentHeaders(): Record<string, string> {
  const options = invoke.mock.calls[0]?.[2] as { headers: Record<string, string> };
  return options.headers;
}

describe("raw byte wrappers", () => {
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 255]);

  it("sendAttachment sends the bytes as the raw body and the rest as headers", async () => {
    await expect(
      commands.sendAttachment({ contactId: "c1", file: { fileName: "a.txt", mediaType: "text/plain", bytes: png } }),
    ).resolves.toBe("ok");
    expect(invoke).toHaveBeenCalledTimes(1);
    const [command, body] = invoke.mock.calls[0] ?? [];
    expect(command).toBe("send_attachment");
    // The very bytes, not a JSON array of numbers.
    expect(body).toBe(png);
    expect(sentHeaders()).toEqual({
      "Sealpost-Contact-Id": "c1",
      "Sealpost-File-Name": "a.txt",
      "Sealpost-Media-Type": "text%2Fplain",
    });
  });

  it("sendGroupAttachment names the group in its own header", async () => {
    await expect(
      commands.sendGroupAttachment({ groupId: "g1", file: { fileName: "a.txt", mediaType: "text/plain", bytes: png } }),
    ).resolves.toBe("ok");
    const [command, body] = invoke.mock.calls[0] ?? [];
    expect(command).toBe("send_group_attachment");
    expect(body).toBe(png);
    expect(sentHeaders()).toEqual({
      "Sealpost-Group-Id": "g1",
      "Sealpost-File-Name": "a.txt",
      "Sealpost-Media-Type": "text%2Fplain",
    });
  });

  // The same encodings are decoded in src-tauri/src/file_ipc.rs's tests.
  it.each([
    ["a Japanese name", "写真 (1).png", "%E5%86%99%E7%9C%9F%20(1).png"],
    ["a name with bidi controls", "\u202Egnp.exe\u202C", "%E2%80%AEgnp.exe%E2%80%AC"],
    ["a lone surrogate", "a\uD800b.txt", "a%EF%BF%BDb.txt"],
  ])("sendAttachment percent-encodes %s into visible ASCII", async (_what, name, encoded) => {
    await commands.sendAttachment({ contactId: "c1", file: { fileName: name, mediaType: "image/png", bytes: png } });
    const header = sentHeaders()["Sealpost-File-Name"] ?? "";
    expect(header).toBe(encoded);
    expect(header).toMatch(/^[\x21-\x7e]*$/);
    expect(decodeURIComponent(header)).toBe(name.replace("\uD800", "\uFFFD"));
    // A real Headers object takes it (a raw non-ASCII value would throw).
    expect(new Headers({ "Sealpost-File-Name": header }).get("Sealpost-File-Name")).toBe(encoded);
  });

  it("attachmentPreview turns the raw response into bytes", async () => {
    invoke.mockResolvedValueOnce(png.slice().buffer);
    const preview = await commands.attachmentPreview({ attachmentId: "a1" });
    expect(invoke).toHaveBeenCalledWith("attachment_preview", { attachmentId: "a1" });
    expect(preview).toBeInstanceOf(Uint8Array);
    expect(Array.from(preview)).toEqual(Array.from(png));
  });

  it("rejections of raw byte commands become {kind, message}", async () => {
    invoke.mockRejectedValueOnce({ kind: "attachment_too_large", message: "too large" });
    await expect(
      commands.sendAttachment({ contactId: "c1", file: { fileName: "a", mediaType: "", bytes: png } }),
    ).rejects.toEqual({ kind: "attachment_too_large", message: "too large" });
  });
});

describe("event wrappers", () => {
  it("listens through Tauri and hands over only the payload", async () => {
    const unlisten = vi.fn();
    let registered: ((event: { payload: unknown }) => void) | undefined;
    listen.mockImplementation(async (_name: string, handler: (event: { payload: unknown }) => void) => {
      registered = handler;
      return unlisten;
    });
    const seen: unknown[] = [];
    const stop = await events.onEngineEvent("message-state", (payload) => seen.push(payload));
    expect(listen).toHaveBeenCalledWith("message-state", expect.any(Function));
    registered?.({ payload: { contactId: "c1", messageId: "m1", state: "read" } });
    expect(seen).toEqual([{ contactId: "c1", messageId: "m1", state: "read" }]);
    stop();
    expect(unlisten).toHaveBeenCalled();
  });

  it("subscribeAll stops listeners even if stopped before they were set up", async () => {
    const unlisten = vi.fn();
    listen.mockResolvedValue(unlisten);
    const stop = events.subscribeAll({ "key-changed": () => undefined, "open-invite": () => undefined });
    stop();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(listen).toHaveBeenCalledTimes(2);
    expect(unlisten).toHaveBeenCalledTimes(2);
  });
});
