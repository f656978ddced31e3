// The mock follows the same contract, so the UI exercised in a browser behaves like the engine.
import { beforeEach, describe, expect, it } from "vitest";
import { controls, mockInvoke } from "./mock";
import type { Chat, InvitePreview, MessagePage } from "./types";

const call = <T>(command: string, args: Record<string, unknown> = {}) => mockInvoke<T>(command, args);

describe("mock backend", () => {
  beforeEach(() => controls.reset("demo"));

  it("pages back through history by seq with hasMore", async () => {
    const id = controls.contactIdOf("Chloé Martin");
    expect(id).toBeDefined();
    const seen = new Set<number>();
    let before: number | null = null;
    let pages = 0;
    for (;;) {
      const page: MessagePage = await call("get_messages", { contactId: id, beforeSeq: before, limit: 50 });
      pages += 1;
      const seqs = page.messages.map((m) => m.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      for (const s of seqs) {
        expect(seen.has(s)).toBe(false);
        seen.add(s);
      }
      if (!page.hasMore) break;
      before = Math.min(...seqs);
    }
    expect(pages).toBe(3);
    expect(seen.size).toBe(118);
  });

  it("refuses corrupt, expired and own invites with their kinds", async () => {
    await expect(call("preview_invite", { text: "hello" })).rejects.toMatchObject({ kind: "invite_corrupt" });
    const expired = controls.inviteFrom("Old", Date.now() - 1);
    await expect(call("preview_invite", { text: expired })).rejects.toMatchObject({ kind: "invite_expired" });
    const own = await call<{ text: string }>("create_invite");
    await expect(call("preview_invite", { text: own.text })).rejects.toMatchObject({ kind: "invite_own" });
  });

  it("previews before accepting, and an invite works once", async () => {
    const text = controls.inviteFrom("Sam Lee");
    const preview = await call<InvitePreview>("preview_invite", { text });
    expect(preview.displayName).toBe("Sam Lee");
    expect((await call<Chat[]>("list_chats")).some((c) => c.displayName === "Sam")).toBe(false);
    const chat = await call<Chat>("accept_invite", { text, displayName: "Sam" });
    expect(chat.displayName).toBe("Sam");
    await expect(call("accept_invite", { text, displayName: "Sam again" })).rejects.toMatchObject({
      kind: "invite_used",
    });
  });

  it("blocks sending while a key change is pending, until accepted", async () => {
    const id = controls.contactIdOf("Ben Ortiz");
    await expect(call("send_message", { contactId: id, text: "hi" })).rejects.toMatchObject({
      kind: "key_change_pending",
    });
    await call("accept_key_change", { contactId: id });
    await expect(call("send_message", { contactId: id, text: "hi" })).resolves.toMatchObject({ state: "queued" });
  });

  it("gives a 60-digit safety number", async () => {
    const id = controls.contactIdOf("田中 愛子 (Aiko)");
    const safety = await call<{ digits: string }>("get_safety_number", { contactId: id });
    expect(safety.digits).toMatch(/^[0-9]{60}$/);
  });

  it("defaults to notifications without message text", async () => {
    controls.reset("fresh");
    const settings = await call<{ notifications: { showText: boolean } }>("get_settings");
    expect(settings.notifications.showText).toBe(false);
  });

  it("rejects unknown commands as the engine would", async () => {
    await expect(call("nope")).rejects.toMatchObject({ kind: "internal" });
  });
});
