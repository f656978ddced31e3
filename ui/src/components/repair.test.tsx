// The chat menu's "Repair session…" asks for confirmation and only then calls the
// `repair_session` command (through its typed wrapper) for the open chat.
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const repairSession = vi.fn((_args: { contactId: string }) => Promise.resolve());
vi.mock("../api/commands", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../api/commands")>()),
  repairSession: (args: { contactId: string }) => repairSession(args),
}));

const { App } = await import("../App");
const { controls } = await import("../api/mock");
const { startMock } = await import("../test/support");

beforeEach(() => {
  startMock("demo");
  repairSession.mockClear();
});
afterEach(() => cleanup());

async function openRepairDialog() {
  render(<App />);
  fireEvent.click(await screen.findByText("Chloé Martin"));
  await screen.findByRole("heading", { name: "Chloé Martin", level: 2 });
  fireEvent.click(screen.getByRole("button", { name: "Contact options" }));
  fireEvent.click(await screen.findByRole("menuitem", { name: "Repair session…" }));
  return screen.findByRole("dialog", { name: "Repair the session with Chloé Martin?" });
}

describe("Repair session", () => {
  it("the menu item calls repair_session for the open chat after confirmation", async () => {
    await openRepairDialog();
    expect(repairSession).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole("button", { name: "Repair" }));
    await waitFor(() => expect(repairSession).toHaveBeenCalledTimes(1));
    expect(repairSession).toHaveBeenCalledWith({ contactId: controls.contactIdOf("Chloé Martin") });
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
  });

  it("cancel calls nothing", async () => {
    await openRepairDialog();
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(repairSession).not.toHaveBeenCalled();
  });
});
