// Groups in the UI against the mock backend: Ctrl+G makes a group from picked contacts, each text
// shows its author's name in a stable colour, peers' names stay text (no markup, no bidi
// controls), "delivered to N of M" on own texts, roles in the member list, remove and leave only
// after a confirmation, and system lines for roster changes.
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { controls, mockInvoke } from "../api/mock";
import { groupText, mockMemberKey } from "../api/mockGroups";
import type { Chat, Group, GroupMessage } from "../api/types";
import { I18nProvider, translate } from "../i18n";
import { AUTHOR_TONES, authorTone, rosterLineText } from "../lib/groups";
import { GroupMessageRow } from "./GroupView";
import { offeredFile, openGroup, startMock } from "../test/support";

const CONTROLS = /[\u202A-\u202E\u2066-\u2069]/;
const t = (key: Parameters<typeof translate>[1], params?: Record<string, string | number>) =>
  translate("en", key, params);

beforeEach(() => startMock("demo"));
afterEach(() => cleanup());

async function contactId(name: string): Promise<string> {
  const chats = await mockInvoke<Chat[]>("list_chats", {});
  const chat = chats.find((c) => c.displayName === name);
  if (chat === undefined) throw new Error(`no contact ${name}`);
  return chat.contactId;
}

function message(fields: Partial<GroupMessage>): GroupMessage {
  return groupText({ id: "gm1", authorKey: "k_a", outgoing: false, seq: 1, text: "hi", sentAt: Date.now(), state: "delivered", ...fields });
}

describe("group helpers", () => {
  it("an author keeps one colour, and different authors spread over the palette", () => {
    expect(authorTone("k_alice")).toBe(authorTone("k_alice"));
    const tones = new Set(Array.from({ length: 64 }, (_, i) => authorTone(`key-${i}`)));
    expect(tones.size).toBe(AUTHOR_TONES);
  });

  it("roster changes are worded with the names known, a leaver's removal reads as leaving", () => {
    const known = new Map([
      ["k_bob", "Bob"],
      ["k_carol", "Carol"],
    ]);
    const line = (text: string, authorKey: string, outgoing = false) =>
      rosterLineText(message({ isRosterChange: true, text, authorKey, authorName: known.get(authorKey) ?? null, outgoing }), known, "k_me", t);
    expect(line("created", "k_me", true)).toBe("You created the group");
    expect(line("removed:k_carol", "k_me", true)).toBe("You removed Carol");
    expect(line("removed:k_bob", "k_bob")).toBe("Bob left the group");
    expect(line("removed:k_me", "k_bob")).toBe("Bob removed you from the group");
    expect(line("added:k_carol promoted:k_carol", "k_bob")).toBe("Bob added Carol Bob made Carol an admin");
    expect(line("removed:k_gone", "k_bob")).toBe("Bob removed a former member");
    expect(line("timer:3600", "k_me", true)).toBe("You set disappearing messages to 1 hour.");
    expect(line("timer:0", "k_bob")).toBe("Bob set disappearing messages to Off.");
  });
});

describe("GroupMessageRow", () => {
  it("a member name with markup or a bidi override is drawn as plain text", () => {
    const { container } = render(
      <I18nProvider>
        <ol>
          <GroupMessageRow
            message={message({ text: "<img src=x onerror=alert(1)>", authorName: "<b>Eve</b>" })}
            continued={false}
            author={"<b>Eve</b>"}
          />
        </ol>
      </I18nProvider>,
    );
    const author = screen.getByTestId("group-message-author");
    expect(author.textContent).toBe("<b>Eve</b>");
    expect(container.querySelector("b")).toBeNull();
    expect(container.querySelector("img")).toBeNull();
    expect(screen.getByTestId("group-message-text").textContent).toBe("<img src=x onerror=alert(1)>");
  });

  it("a member's file shows its author and the attachment card, its name as text", () => {
    render(
      <I18nProvider>
        <ol>
          <GroupMessageRow
            message={message({ text: "report.pdf", authorName: "Bob" })}
            continued={false}
            author="Bob"
            attachment={offeredFile({ contactId: null, groupId: "g1", messageId: "gm1" })}
          />
        </ol>
      </I18nProvider>,
    );
    expect(screen.getByTestId("group-message-author").textContent).toBe("Bob");
    expect(screen.getByTestId("attachment-name").textContent).toBe("gnp.exe");
    expect(screen.getByTestId("attachment-download")).toBeTruthy();
    expect(screen.queryByTestId("group-message-text")).toBeNull();
  });

  it("an own text says to how many members it was delivered", () => {
    render(
      <I18nProvider>
        <ol>
          <GroupMessageRow
            message={message({ outgoing: true, authorKey: "k_me", state: "on_relay", recipients: 4, deliveredTo: 3 })}
            continued={false}
            author="You"
          />
        </ol>
      </I18nProvider>,
    );
    expect(screen.getByTestId("group-delivery").textContent).toBe("Delivered to 3 of 4");
    expect(screen.getByRole("img", { name: "On relay" })).toBeTruthy();
  });

  it("an own text whose every copy was delivered shows the delivered tick, even if its stored state lags", () => {
    render(
      <I18nProvider>
        <ol>
          <GroupMessageRow
            message={message({ outgoing: true, authorKey: "k_me", state: "queued", recipients: 2, deliveredTo: 2 })}
            continued={false}
            author="You"
          />
        </ol>
      </I18nProvider>,
    );
    expect(screen.getByRole("img", { name: "Delivered" })).toBeTruthy();
    expect(screen.queryByTestId("group-message-author")).toBeNull();
  });
});

describe("groups in the app", () => {
  it("Ctrl+G makes a group from picked contacts and opens it with a system line", async () => {
    render(<App />);
    await screen.findByText("Chloé Martin");
    fireEvent.keyDown(window, { key: "g", ctrlKey: true });
    const dialog = await screen.findByRole("dialog", { name: "New group" });
    const create = within(dialog).getByTestId("new-group-create") as HTMLButtonElement;
    expect(create.disabled).toBe(true);
    fireEvent.input(within(dialog).getByLabelText("Group name"), { target: { value: "Book club" } });
    const boxes = within(dialog).getAllByTestId("new-group-contact");
    const chloe = boxes.find((box) => box.closest("label")?.textContent?.includes("Chloé Martin"));
    fireEvent.click(chloe ?? document.body);
    expect(create.disabled).toBe(false);
    fireEvent.click(create);
    const view = await screen.findByTestId("group-view");
    expect(within(view).getByTestId("group-title").textContent).toBe("Book club");
    await within(view).findByText("You created the group");
    expect(screen.getAllByTestId("group-row-name").map((n) => n.textContent)).toContain("Book club");
  });

  it("the demo group shows each author's name with a colour, unread in the list, delivery counts", async () => {
    render(<App />);
    const badge = await screen.findByTestId("group-row-unread");
    expect(badge.textContent).toBe("1");
    const view = await openGroup("Weekend hike 🥾");
    const authors = await within(view).findAllByTestId("group-message-author");
    const byName = new Map(authors.map((a) => [a.textContent, a.className]));
    expect([...byName.keys()]).toEqual(expect.arrayContaining(["Chloé Martin", "田中 愛子 (Aiko)", "Ben Ortiz"]));
    const chloeKey = mockMemberKey(await contactId("Chloé Martin"));
    expect(byName.get("Chloé Martin")).toContain(`author-tone-${authorTone(chloeKey)}`);
    const delivery = within(view).getAllByTestId("group-delivery").map((d) => d.textContent);
    expect(delivery).toContain("Delivered to 2 of 3");
    expect(delivery).toContain("Read by 3 of 3");
    await within(view).findByText("You made 田中 愛子 (Aiko) an admin");
  });

  it("a member whose name carries markup and a bidi override is shown as text, neutralised", async () => {
    await mockInvoke("accept_invite", { text: controls.inviteFrom("Eve"), displayName: "<b>Eve</b>\u202Egnp.exe" });
    const eve = await contactId("<b>Eve</b>\u202Egnp.exe");
    const group = await mockInvoke<Group>("create_group", { name: "\u202Eputer", description: "", contactIds: [eve] });
    controls.receiveGroup(group.id, mockMemberKey(eve), "hello <i>all</i>");
    render(<App />);
    const view = await openGroup("puter");
    const author = await within(view).findByTestId("group-message-author");
    expect(author.textContent).toBe("<b>Eve</b>gnp.exe");
    expect(view.querySelector("b, i")).toBeNull();
    expect(within(view).getByTestId("group-message-text").textContent).toBe("hello <i>all</i>");
    expect(CONTROLS.test(document.body.textContent ?? "")).toBe(false);
  });

  it("the member list shows roles; removing asks first and leaves a system line", async () => {
    render(<App />);
    const view = await openGroup("Weekend hike 🥾");
    fireEvent.keyDown(window, { key: "M", ctrlKey: true, shiftKey: true });
    const dialog = await screen.findByRole("dialog", { name: "Members of Weekend hike 🥾" });
    const rows = within(dialog).getAllByTestId("group-member");
    const roles = new Map(
      rows.map((row) => [
        within(row).getByTestId("group-member-name").textContent,
        within(row).getByTestId("group-member-role").textContent,
      ]),
    );
    expect(roles.get("You")).toBe("Admin");
    expect(roles.get("田中 愛子 (Aiko)")).toBe("Admin");
    expect(roles.get("Ben Ortiz")).toBe("Member");
    const ben = rows.find((row) => row.textContent?.includes("Ben Ortiz"));
    fireEvent.click(within(ben ?? document.body).getByTestId("group-member-remove"));
    const confirm = await screen.findByRole("dialog", { name: "Remove Ben Ortiz from the group?" });
    // Nothing happened yet: Ben is still a member until the confirmation.
    const before = await mockInvoke<Group>("get_group", { groupId: view.dataset.groupId });
    expect(before.members.some((m) => m.displayName === "Ben Ortiz")).toBe(true);
    fireEvent.click(within(confirm).getByTestId("group-remove-confirm"));
    await within(view).findByText("You removed Ben Ortiz");
    const after = await mockInvoke<Group>("get_group", { groupId: view.dataset.groupId });
    expect(after.members.some((m) => m.displayName === "Ben Ortiz")).toBe(false);
  });

  it("an admin sets the group's disappearing timer: a system line, the header says so, texts carry it", async () => {
    render(<App />);
    const view = await openGroup("Weekend hike 🥾");
    expect(within(view).queryByTestId("group-timer")).toBeNull();
    fireEvent.click(within(view).getByRole("button", { name: "Group actions" }));
    fireEvent.click(await screen.findByRole("menuitem", { name: "Disappearing messages: 1 hour" }));
    await within(view).findByText("You set disappearing messages to 1 hour.");
    expect((await within(view).findByTestId("group-timer")).textContent).toBe("Disappearing messages: 1 hour");
    fireEvent.click(within(view).getByRole("button", { name: "Group actions" }));
    expect(await screen.findByRole("menuitem", { name: "Disappearing messages: 1 hour ✓" })).toBeTruthy();
  });

  it("a text whose timer ran out leaves the open group at once", async () => {
    render(<App />);
    const view = await openGroup("Weekend hike 🥾");
    const text = await within(view).findByText("Forecast says sunny ☀️");
    const row = text.closest("[data-testid='group-message']") as HTMLElement;
    controls.emit("group-messages-expired", { groupId: view.dataset.groupId ?? "", messageIds: [row.dataset.messageId ?? ""] });
    await waitFor(() => expect(within(view).queryByText("Forecast says sunny ☀️")).toBeNull());
  });

  it("leaving asks first, then closes the composer and says so", async () => {
    render(<App />);
    const view = await openGroup("Weekend hike 🥾");
    fireEvent.click(within(view).getByRole("button", { name: "Group actions" }));
    fireEvent.click(await screen.findByRole("menuitem", { name: "Leave group" }));
    const confirm = await screen.findByRole("dialog", { name: "Leave “Weekend hike 🥾”?" });
    fireEvent.click(within(confirm).getByRole("button", { name: "Cancel" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(screen.queryByTestId("group-not-member")).toBeNull();

    fireEvent.click(within(view).getByRole("button", { name: "Group actions" }));
    fireEvent.click(await screen.findByRole("menuitem", { name: "Leave group" }));
    fireEvent.click(within(await screen.findByRole("dialog")).getByTestId("group-leave-confirm"));
    await screen.findByTestId("group-not-member");
    await within(view).findByText("You left the group");
  });
});

describe("group events (no polling)", () => {
  async function demoGroup(): Promise<Group> {
    const groups = await mockInvoke<Group[]>("list_groups", {});
    const group = groups.find((g) => g.name === "Weekend hike 🥾");
    if (group === undefined) throw new Error("no demo group");
    return group;
  }

  it("an open group shows a member's text when the engine reports it", async () => {
    render(<App />);
    const view = await openGroup("Weekend hike 🥾");
    const group = await demoGroup();
    const chloe = group.members.find((m) => m.displayName === "Chloé Martin");
    // Only in the event, not in the mock's store: it can only have come from the event.
    controls.emit("group-message-received", {
      groupId: group.id,
      message: message({ id: "gm_event", authorKey: chloe?.key ?? "", authorName: "Chloé Martin", seq: 999, text: "seen via the event" }),
    });
    await within(view).findByText("seen via the event");
  });

  it("an own text's delivery count follows group-message-state", async () => {
    render(<App />);
    const view = await openGroup("Weekend hike 🥾");
    await within(view).findByText("Delivered to 2 of 3");
    const group = await demoGroup();
    const page = await mockInvoke<GroupMessage[]>("get_group_messages", { groupId: group.id, beforeSeq: null, limit: 60 });
    const ours = page.find((m) => m.text === "Forecast says sunny ☀️");
    controls.emit("group-message-state", {
      groupId: group.id,
      messageId: ours?.id ?? "",
      state: "read",
      recipients: 3,
      deliveredTo: 3,
      readBy: 3,
    });
    await waitFor(() =>
      expect(within(view).getAllByTestId("group-delivery").map((d) => d.textContent)).not.toContain("Delivered to 2 of 3"),
    );
    expect(within(view).getAllByTestId("group-delivery").filter((d) => d.textContent === "Read by 3 of 3")).toHaveLength(2);
  });

  it("a roster change refreshes the open group and the list", async () => {
    render(<App />);
    const view = await openGroup("Weekend hike 🥾");
    await within(view).findByText("Forecast says sunny ☀️");
    // Opening it marked it read, which refreshed the list once: wait for that to settle.
    await waitFor(() => expect(screen.queryByTestId("group-row-unread")).toBeNull());
    const group = await demoGroup();
    // Changed behind the UI's back (as another admin's message would), then reported.
    await mockInvoke("rename_group", { groupId: group.id, name: "Mountain day", description: "" });
    controls.emit("group-roster-changed", { groupId: group.id, isMember: true });
    await waitFor(() => expect(within(view).getByTestId("group-title").textContent).toBe("Mountain day"));
    await waitFor(() => expect(screen.getAllByTestId("group-row-name").map((n) => n.textContent)).toContain("Mountain day"));
  });

  it("a member's text in another group refreshes the list's unread count", async () => {
    render(<App />);
    const badge = await screen.findByTestId("group-row-unread");
    expect(badge.textContent).toBe("1");
    const group = await demoGroup();
    const chloe = group.members.find((m) => m.displayName === "Chloé Martin");
    controls.receiveGroup(group.id, chloe?.key ?? "", "one more");
    await waitFor(() => expect(screen.getByTestId("group-row-unread").textContent).toBe("2"));
  });
});
