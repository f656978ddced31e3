// Names that lie (docs/threat-model.md): a peer's name with bidirectional controls is drawn
// without them, in the chat list, the chat header and the add-contact preview, so
// "\u202Egnp.exe" shows its real ".exe" instead of posing as "exe.png".
import { cleanup, fireEvent, render, screen, within } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { controls, mockInvoke } from "../api/mock";
import { neutraliseBidi } from "../lib/names";
import { startMock } from "../test/support";

const LYING = "\u202Egnp.exe\u202C";
const CONTROLS = /[\u202A-\u202E\u2066-\u2069]/;

beforeEach(() => startMock("demo"));
afterEach(() => cleanup());

describe("names with bidirectional controls", () => {
  it("neutraliseBidi removes every embedding, override and isolate control and keeps RTL letters", () => {
    expect(neutraliseBidi(LYING)).toBe("gnp.exe");
    expect(neutraliseBidi("\u202A\u202B\u202D\u2066\u2067\u2068\u2069Bob")).toBe("Bob");
    expect(neutraliseBidi("שלום")).toBe("שלום");
  });

  it("a contact named with a right-to-left override shows its real order in the list and the header", async () => {
    await mockInvoke("accept_invite", { text: controls.inviteFrom("Mallory"), displayName: LYING });
    render(<App />);
    const rows = await screen.findAllByTestId("chat-row-name");
    const names = rows.map((row) => row.textContent ?? "");
    expect(names).toContain("gnp.exe");
    expect(names.some((name) => CONTROLS.test(name))).toBe(false);
    const row = rows.find((r) => r.textContent === "gnp.exe");
    fireEvent.click(row?.closest("[data-testid='chat-row']") ?? document.body);
    const header = await screen.findByRole("heading", { level: 2, name: "gnp.exe" });
    expect(CONTROLS.test(header.textContent ?? "")).toBe(false);
    expect(CONTROLS.test(document.body.textContent ?? "")).toBe(false);
  });

  it("the add-contact preview shows the inviter's name without controls", async () => {
    render(<App />);
    await screen.findByText("Chloé Martin");
    fireEvent.keyDown(window, { key: "n", ctrlKey: true });
    const dialog = await screen.findByRole("dialog", { name: "Add a contact" });
    const box = within(dialog).getByRole("textbox");
    fireEvent.input(box, { target: { value: controls.inviteFrom(LYING) } });
    fireEvent.keyDown(box, { key: "Enter" });
    await within(dialog).findByText(/gnp\.exe/);
    expect(CONTROLS.test(dialog.textContent ?? "")).toBe(false);
  });
});
