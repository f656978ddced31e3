// UI behaviour against the mock backend: text stays text, the composer's keys, the key-change
// block, the verify screen's grouping, dialogs closing on Esc, and onboarding to the empty state.
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { controls, mockInvoke } from "../api/mock";
import type { Chat } from "../api/types";
import { I18nProvider } from "../i18n";
import { useScenario } from "../test/support";
import { ChatView } from "./ChatView";
import { VerifyDialog } from "./VerifyDialog";

async function chatNamed(name: string): Promise<Chat> {
  const chats = await mockInvoke<Chat[]>("list_chats", {});
  const chat = chats.find((c) => c.displayName === name);
  if (chat === undefined) throw new Error(`no chat ${name}`);
  return chat;
}

function renderChat(chat: Chat) {
  const noop = () => undefined;
  return render(
    <I18nProvider>
      <ChatView chat={chat} onOpenVerify={noop} onRename={noop} onDelete={noop} onRepair={noop} onChanged={noop} notify={noop} />
    </I18nProvider>,
  );
}

beforeEach(() => {
  localStorage.setItem("sealpost.locale", "en");
});
afterEach(() => cleanup());

describe("ChatView", () => {
  beforeEach(() => useScenario("demo"));

  it("renders message text as text: markup in a message creates no element", async () => {
    const { container } = renderChat(await chatNamed("田中 愛子 (Aiko)"));
    await screen.findByText("Also: <b>this is not bold</b>, it is just text.");
    expect(container.querySelector(".message-text b")).toBeNull();
    expect(container.querySelector("a")).toBeNull(); // links are shown as text, never made live
    expect(screen.getByText(/https:\/\/example\.com\/trails\/takao/)).toBeTruthy();
  });

  it("labels delivery states for screen readers", async () => {
    renderChat(await chatNamed("田中 愛子 (Aiko)"));
    expect(await screen.findByRole("img", { name: "Waiting to send" })).toBeTruthy();
    expect(screen.getByRole("img", { name: "On relay" })).toBeTruthy();
    expect(screen.getAllByRole("img", { name: "Read" }).length).toBeGreaterThan(0);
  });

  it("Enter sends, Shift+Enter does not, and focus stays in the composer", async () => {
    renderChat(await chatNamed("田中 愛子 (Aiko)"));
    const box = (await screen.findByLabelText("Message to 田中 愛子 (Aiko)")) as HTMLTextAreaElement;
    box.focus();
    fireEvent.input(box, { target: { value: "line one" } });
    const settle = () => new Promise((resolve) => setTimeout(resolve, 30));
    fireEvent.keyDown(box, { key: "Enter", shiftKey: true });
    await settle();
    expect(screen.queryByText("line one")).toBeNull();
    fireEvent.keyDown(box, { key: "Enter", isComposing: true });
    await settle();
    expect(screen.queryByText("line one")).toBeNull();
    expect(box.value).toBe("line one");
    fireEvent.keyDown(box, { key: "Enter" });
    await screen.findByText("line one");
    await waitFor(() => expect(box.value).toBe(""));
    expect(document.activeElement).toBe(box);
  });

  it("a key change shows the banner and blocks the composer", async () => {
    renderChat(await chatNamed("Ben Ortiz"));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Ben Ortiz's safety number changed");
    expect(screen.queryByRole("textbox")).toBeNull();
    expect(screen.getByText(/Sending is paused/)).toBeTruthy();
  });
});

describe("VerifyDialog", () => {
  beforeEach(() => useScenario("demo"));

  it("shows the safety number as 12 groups of 5 and closes on Esc", async () => {
    const chat = await chatNamed("田中 愛子 (Aiko)");
    let closed = false;
    const { container } = render(
      <I18nProvider>
        <VerifyDialog chat={chat} onClose={() => (closed = true)} onChanged={() => undefined} />
      </I18nProvider>,
    );
    await screen.findByRole("group", { name: "Safety number" });
    const groups = [...container.querySelectorAll(".safety-group")].map((g) => g.textContent);
    expect(groups).toHaveLength(12);
    expect(groups.every((g) => /^[0-9]{5}$/.test(g ?? ""))).toBe(true);
    const img = container.querySelector("img.qr");
    expect(img?.getAttribute("src")?.startsWith("data:image/svg+xml")).toBe(true);
    // Focus moves into the dialog, onto its main action once it is enabled.
    await waitFor(() => expect(document.activeElement?.textContent).toBe("Clear verification"));
    fireEvent.keyDown(screen.getByRole("dialog"), { key: "Escape" });
    expect(closed).toBe(true);
  });
});

describe("App", () => {
  it("onboards with the local relay and lands on an empty state that says what to do", async () => {
    useScenario("fresh");
    render(<App />);
    const name = await screen.findByLabelText("Your name");
    expect((screen.getByLabelText(/Local test relay/) as HTMLInputElement).checked).toBe(true);
    fireEvent.input(name, { target: { value: "Mika" } });
    fireEvent.submit(name.closest("form") as HTMLFormElement);
    expect(await screen.findByRole("heading", { name: "No chats yet" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Show my invite" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Paste an invite" })).toBeTruthy();
  });

  it("shows an onboarding error in words, where it happened", async () => {
    useScenario("fresh");
    render(<App />);
    const name = await screen.findByLabelText("Your name");
    fireEvent.input(name, { target: { value: "   " } });
    fireEvent.submit(name.closest("form") as HTMLFormElement);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Please enter a name of 1 to 64 characters.");
  });

  it("a deep link opens the add-contact form filled in, and adds nothing by itself", async () => {
    useScenario("demo");
    render(<App />);
    await screen.findByText("Chloé Martin");
    const before = (await mockInvoke<Chat[]>("list_chats", {})).length;
    controls.emit("open-invite", { text: controls.inviteFrom("Rosa Díaz") });
    expect(await screen.findByRole("heading", { name: "Invite from Rosa Díaz" })).toBeTruthy();
    expect((await mockInvoke<Chat[]>("list_chats", {})).length).toBe(before);
  });

  it("a deep link that started the app is picked up once and fills the form", async () => {
    useScenario("demo");
    controls.setPendingInvite(controls.inviteFrom("Kenji Sato"));
    render(<App />);
    expect(await screen.findByRole("heading", { name: "Invite from Kenji Sato" })).toBeTruthy();
    expect(await mockInvoke("take_pending_invite", {})).toBeNull();
  });

  it("Ctrl+N opens Add contact and Esc closes it", async () => {
    useScenario("demo");
    render(<App />);
    await screen.findByText("Chloé Martin");
    fireEvent.keyDown(window, { key: "n", ctrlKey: true });
    const dialog = await screen.findByRole("dialog", { name: "Add a contact" });
    fireEvent.keyDown(dialog, { key: "Escape" });
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
  });

  it("keyboard first: Ctrl+K focuses search, arrows walk the chat list, Enter on search opens a chat", async () => {
    useScenario("demo");
    const { container } = render(<App />);
    await screen.findByText("Chloé Martin");
    fireEvent.keyDown(window, { key: "k", ctrlKey: true });
    const search = screen.getByLabelText("Search chats");
    expect(document.activeElement).toBe(search);
    fireEvent.keyDown(search, { key: "ArrowDown" });
    const rows = [...container.querySelectorAll<HTMLElement>(".chat-row")];
    expect(document.activeElement).toBe(rows[0]);
    fireEvent.keyDown(rows[0] as HTMLElement, { key: "ArrowDown" });
    expect(document.activeElement).toBe(rows[1]);
    fireEvent.keyDown(rows[1] as HTMLElement, { key: "End" });
    expect(document.activeElement).toBe(rows[rows.length - 1]);
    search.focus();
    fireEvent.input(search, { target: { value: "chlo" } });
    fireEvent.keyDown(search, { key: "Enter" });
    expect(await screen.findByRole("heading", { name: "Chloé Martin", level: 2 })).toBeTruthy();
  });

  it("renders in Japanese when chosen", async () => {
    localStorage.setItem("sealpost.locale", "ja");
    useScenario("empty");
    render(<App />);
    expect(await screen.findByRole("heading", { name: "まだチャットがありません" })).toBeTruthy();
  });
});
