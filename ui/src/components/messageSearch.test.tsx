// Message search against the mock backend: Ctrl+F opens it, results show the chat, the snippet is
// text with <mark> elements only (a message holding markup creates no element), and Enter opens
// the chat at that message with its words marked.
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { mockInvoke } from "../api/mock";
import type { Chat } from "../api/types";
import { Highlighted } from "./Highlighted";
import { startMock } from "../test/support";

const HOSTILE = "<img src=x onerror=alert(1)> Café Lumière at 8";

beforeEach(() => startMock("demo"));
afterEach(() => cleanup());

async function sendToChloe(text: string): Promise<Chat> {
  const chats = await mockInvoke<Chat[]>("list_chats", {});
  const chloe = chats.find((c) => c.displayName === "Chloé Martin");
  if (chloe === undefined) throw new Error("no Chloé");
  await mockInvoke("send_message", { contactId: chloe.contactId, text });
  return chloe;
}

describe("Highlighted", () => {
  it("builds marks from UTF-16 offsets and keeps the rest as text", () => {
    const { container } = render(<Highlighted text="😀 a <b>café</b>" ranges={[{ start: 8, end: 12 }]} />);
    expect(container.querySelector("b")).toBeNull();
    expect(container.querySelector("mark")?.textContent).toBe("café");
    expect(container.textContent).toBe("😀 a <b>café</b>");
  });

  it("ignores ranges out of the text", () => {
    const { container } = render(<Highlighted text="abc" ranges={[{ start: 2, end: 99 }, { start: 50, end: 60 }]} />);
    expect(container.querySelectorAll("mark")).toHaveLength(1);
    expect(container.textContent).toBe("abc");
  });
});

describe("MessageSearch", () => {
  it("Ctrl+F finds a message, shows it as text with marks, and Enter opens the chat there", async () => {
    await sendToChloe(HOSTILE);
    const { container } = render(<App />);
    await screen.findByText("Chloé Martin");
    fireEvent.keyDown(window, { key: "f", ctrlKey: true });
    const dialog = await screen.findByRole("dialog", { name: "Search messages" });
    const field = within(dialog).getByLabelText("Words to find in your messages");
    await waitFor(() => expect(document.activeElement).toBe(field));
    fireEvent.input(field, { target: { value: "cafe lumiere" } });

    const hit = await within(dialog).findByTestId("search-hit");
    expect(hit.textContent).toContain("Chloé Martin");
    const snippet = within(hit).getByTestId("search-snippet");
    expect(snippet.textContent).toContain(HOSTILE);
    expect(container.ownerDocument.querySelector("img")).toBeNull();
    expect([...snippet.querySelectorAll("mark")].map((m) => m.textContent)).toEqual(["Café", "Lumière"]);

    fireEvent.keyDown(field, { key: "Enter" });
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(await screen.findByRole("heading", { name: "Chloé Martin", level: 2 })).toBeTruthy();
    const found = await waitFor(() => {
      const row = container.querySelector(".message.found");
      if (row === null) throw new Error("not yet");
      return row;
    });
    expect(found.querySelector(".message-text")?.textContent).toBe(HOSTILE);
    expect([...found.querySelectorAll("mark")].map((m) => m.textContent)).toEqual(["Café", "Lumière"]);
    expect(container.querySelector("img")).toBeNull();
  });

  it("Ctrl+Shift+F opens it too, and a query of operators and junk is just data", async () => {
    render(<App />);
    await screen.findByText("Chloé Martin");
    fireEvent.keyDown(window, { key: "F", ctrlKey: true, shiftKey: true });
    const dialog = await screen.findByRole("dialog", { name: "Search messages" });
    const field = within(dialog).getByLabelText("Words to find in your messages");
    fireEvent.input(field, { target: { value: 'NEAR("x" *) "' + "(".repeat(5000) + " zzzz" } });
    expect(await within(dialog).findByRole("status")).toBeTruthy();
    expect(within(dialog).queryByTestId("search-hit")).toBeNull();
  });

  it("finds a group text and a group name, and opens the group at the text with its words marked", async () => {
    const { container } = render(<App />);
    await screen.findByText("Chloé Martin");
    fireEvent.keyDown(window, { key: "f", ctrlKey: true });
    const dialog = await screen.findByRole("dialog", { name: "Search messages" });
    const field = within(dialog).getByLabelText("Words to find in your messages");

    fireEvent.input(field, { target: { value: "hike" } });
    const named = await within(dialog).findByTestId("search-hit");
    expect(within(named).getByTestId("search-snippet").textContent).toBe("Weekend hike 🥾");

    fireEvent.input(field, { target: { value: "stove" } });
    await waitFor(() => expect(within(dialog).getByTestId("search-snippet").textContent).toContain("stove"));
    const hit = within(dialog).getByTestId("search-hit");
    expect(hit.textContent).toContain("Weekend hike");
    fireEvent.click(hit);

    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const found = await waitFor(() => {
      const row = container.querySelector("[data-testid=group-view] .message.found");
      if (row === null) throw new Error("not yet");
      return row;
    });
    expect(found.querySelector(".message-text")?.textContent).toBe("Who's bringing the stove?");
    expect([...found.querySelectorAll("mark")].map((m) => m.textContent)).toEqual(["stove"]);
  });
});
