// The key-change flow (T8) against the mock backend: the banner leads to the verify screen,
// which shows the NEW key's safety number labelled as new (with the previous one), and offers
// both Accept and Reject; each releases sending, and the key kept is the right one.
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { mockInvoke } from "../api/mock";
import type { Chat, SafetyNumber } from "../api/types";
import { startMock } from "../test/support";

function digitsOf(group: HTMLElement): string {
  return [...group.querySelectorAll(".safety-group")].map((g) => g.textContent).join("");
}

async function benId(): Promise<string> {
  const chats = await mockInvoke<Chat[]>("list_chats", {});
  const ben = chats.find((c) => c.displayName === "Ben Ortiz");
  if (ben === undefined) throw new Error("no Ben");
  return ben.contactId;
}

/** Opens Ben's chat (his key changed in the demo), then the verify screen from the banner. */
async function openVerifyFromBanner() {
  render(<App />);
  fireEvent.click(await screen.findByText("Ben Ortiz"));
  const banner = await screen.findByTestId("key-banner");
  expect(banner.textContent).toContain("Ben Ortiz");
  expect(within(banner).getByRole("button", { name: "Accept new key" })).toBeTruthy();
  expect(within(banner).getByRole("button", { name: "Reject new key" })).toBeTruthy();
  fireEvent.click(within(banner).getByRole("button", { name: "Compare safety numbers" }));
  const dialog = await screen.findByRole("dialog");
  const fresh = await within(dialog).findByRole("group", { name: "New safety number" });
  const previous = within(dialog).getByRole("group", { name: "Previous safety number" });
  return { dialog, fresh, previous };
}

beforeEach(() => startMock("demo"));
afterEach(() => cleanup());

describe("key change", () => {
  it("banner → verify shows the new key's number as new, the old as previous; Reject keeps the old key", async () => {
    const contactId = await benId();
    const offered = await mockInvoke<SafetyNumber>("get_safety_number", { contactId });
    expect(offered.isPendingKey).toBe(true);
    const { dialog, fresh, previous } = await openVerifyFromBanner();
    expect(digitsOf(fresh)).toBe(offered.digits);
    expect(digitsOf(previous)).toBe(offered.previousDigits);
    expect(offered.previousDigits).not.toBe(offered.digits);
    fireEvent.click(within(dialog).getByRole("button", { name: "Reject new key" }));
    await waitFor(() => expect(screen.queryByTestId("key-banner")).toBeNull());
    const kept = await mockInvoke<SafetyNumber>("get_safety_number", { contactId });
    expect(kept.isPendingKey).toBe(false);
    expect(kept.digits).toBe(offered.previousDigits);
    expect(await screen.findByLabelText("Message to Ben Ortiz")).toBeTruthy();
  });

  it("banner → verify → Accept installs the key whose number was shown", async () => {
    const contactId = await benId();
    const offered = await mockInvoke<SafetyNumber>("get_safety_number", { contactId });
    const { dialog, fresh } = await openVerifyFromBanner();
    expect(digitsOf(fresh)).toBe(offered.digits);
    fireEvent.click(within(dialog).getByRole("button", { name: "Accept new key" }));
    await waitFor(() => expect(screen.queryByTestId("key-banner")).toBeNull());
    const accepted = await mockInvoke<SafetyNumber>("get_safety_number", { contactId });
    expect(accepted.isPendingKey).toBe(false);
    expect(accepted.digits).toBe(offered.digits);
    expect(accepted.previousDigits).toBeNull();
  });
});
