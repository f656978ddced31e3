// The composer's attach button in a group and in a 1:1 chat (docs/engine.md § Attachments), against
// the mock backend: the button opens the file chooser, a chosen file goes to the open
// conversation's own command (`sendGroupAttachment` with the group's id, `sendAttachment` with the
// contact's) with its name, type and bytes, an upload shows its progress above the composer, and
// the file's card then shows in its message.
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it, vi, type Mock } from "vitest";
import type { Attachment, OutgoingFile } from "../api/types";

type GroupFileArgs = { groupId: string; file: OutgoingFile };
type ContactFileArgs = { contactId: string; file: OutgoingFile };
const sendGroupAttachment = vi.fn<(args: GroupFileArgs) => Promise<Attachment>>();
const sendAttachment = vi.fn<(args: ContactFileArgs) => Promise<Attachment>>();
vi.mock("../api/commands", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../api/commands")>()),
  sendGroupAttachment: (args: GroupFileArgs) => sendGroupAttachment(args),
  sendAttachment: (args: ContactFileArgs) => sendAttachment(args),
}));

const commands = await vi.importActual<typeof import("../api/commands")>("../api/commands");
const { App } = await import("../App");
const { controls, mockInvoke } = await import("../api/mock");
const { offeredFile, openGroup, startMock } = await import("../test/support");

beforeEach(() => {
  startMock("demo");
  // By default the wrappers run for real (against the mock); the spies record the calls.
  sendGroupAttachment.mockReset().mockImplementation(commands.sendGroupAttachment);
  sendAttachment.mockReset().mockImplementation(commands.sendAttachment);
});
afterEach(() => cleanup());

/** The app with the demo group open, its first page of history drawn. */
async function demoGroup(): Promise<HTMLElement> {
  render(<App />);
  const view = await openGroup("Weekend hike 🥾");
  await within(view).findByText("Forecast says sunny ☀️");
  return view;
}

/** Chooses `file` in the view's file chooser (what the attach button opens). */
function choose(view: HTMLElement, file: File) {
  fireEvent.change(within(view).getByTestId("attach-input"), { target: { files: [file] } });
}

const plan = () => new File([new Uint8Array([1, 2, 3])], "plan.pdf", { type: "application/pdf" });

/** The arguments of the one call of `command`, whose file must be {@link plan}'s name, type and bytes. */
async function sentPlan<A extends { file: OutgoingFile }>(command: Mock<(args: A) => Promise<Attachment>>): Promise<A> {
  await waitFor(() => expect(command).toHaveBeenCalledTimes(1));
  const [args] = command.mock.calls[0] ?? [];
  expect(args?.file.fileName).toBe("plan.pdf");
  expect(args?.file.mediaType).toBe("application/pdf");
  expect(Array.from(args?.file.bytes ?? [])).toEqual([1, 2, 3]);
  return args as A;
}

describe("the group's attach button", () => {
  it("opens the file chooser", async () => {
    const view = await demoGroup();
    const input = within(view).getByTestId("attach-input") as HTMLInputElement;
    const opened = vi.spyOn(input, "click");
    fireEvent.click(within(view).getByRole("button", { name: "Attach a file" }));
    expect(opened).toHaveBeenCalledTimes(1);
  });

  it("sends a chosen file to the group with its name, type and bytes, and its card shows in its message", async () => {
    const view = await demoGroup();
    choose(view, plan());
    expect((await sentPlan(sendGroupAttachment)).groupId).toBe(view.dataset.groupId);
    expect(sendAttachment).not.toHaveBeenCalled();

    const name = await within(view).findByText("plan.pdf", { selector: "[data-testid='attachment-name']" });
    const row = name.closest("[data-testid='group-message']") as HTMLElement;
    expect(row.classList.contains("outgoing")).toBe(true);
    const card = within(row).getByTestId("attachment");
    expect(card.dataset.state).toBe("complete");
    expect(card.textContent).toContain("3 B");
    expect(within(card).getByTestId("attachment-save")).toBeTruthy();
  });

  it("shows an upload's progress above the composer until the file's message is there", async () => {
    // As the engine does: the upload starts without its message, reports progress, and is linked
    // to its message when it is done.
    sendGroupAttachment.mockImplementation(async ({ groupId, file }) => {
      const upload = offeredFile({
        id: "a_upload",
        contactId: null,
        groupId,
        messageId: null,
        outgoing: true,
        fileName: file.fileName,
        mediaType: file.mediaType,
        size: file.bytes.length,
        state: "uploading",
      });
      controls.emit("attachment-updated", { attachment: upload });
      return upload;
    });
    const view = await demoGroup();
    const groupId = view.dataset.groupId ?? "";
    choose(view, plan());
    const pending = await screen.findByTestId("pending-uploads");
    expect(within(pending).getByTestId("attachment-name").textContent).toBe("plan.pdf");
    const uploading = (await sendGroupAttachment.mock.results[0]?.value) as Attachment;

    controls.emit("attachment-updated", { attachment: { ...uploading, doneChunks: 2 } });
    await waitFor(() => expect((within(pending).getByRole("progressbar") as HTMLProgressElement).value).toBe(2));
    expect(within(pending).getByRole("progressbar", { name: "Uploading" })).toBeTruthy();
    expect(within(pending).getByRole("button", { name: "Cancel" })).toBeTruthy();

    const message = await mockInvoke<{ id: string }>("send_group_message", { groupId, text: "plan.pdf" });
    controls.emit("attachment-updated", {
      attachment: { ...uploading, messageId: message.id, state: "complete", doneChunks: 4 },
    });
    await waitFor(() => expect(screen.queryByTestId("pending-uploads")).toBeNull());
    const name = await within(view).findByText("plan.pdf", { selector: "[data-testid='attachment-name']" });
    const row = name.closest("[data-testid='group-message']") as HTMLElement;
    expect(row.dataset.messageId).toBe(message.id);
    expect(within(row).getByTestId("attachment").dataset.state).toBe("complete");
  });
});

describe("the 1:1 chat's attach button", () => {
  it("sends a chosen file to the contact with its name, type and bytes, and its card shows in its message", async () => {
    render(<App />);
    fireEvent.click(await screen.findByText("Chloé Martin"));
    const view = (await screen.findByRole("heading", { name: "Chloé Martin", level: 2 })).closest("section") as HTMLElement;
    choose(view, plan());
    expect((await sentPlan(sendAttachment)).contactId).toBe(controls.contactIdOf("Chloé Martin"));
    expect(sendGroupAttachment).not.toHaveBeenCalled();

    const name = await within(view).findByText("plan.pdf", { selector: "[data-testid='attachment-name']" });
    const row = name.closest("[data-testid='message']") as HTMLElement;
    expect(row.classList.contains("outgoing")).toBe(true);
    expect(within(row).getByTestId("attachment").dataset.state).toBe("complete");
  });
});
