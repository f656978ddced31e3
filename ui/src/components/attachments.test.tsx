// Attachment cards (docs/engine.md § Attachments): a peer's file name is a text node without
// bidirectional controls, so "\u202Egnp.exe" shows its real ".exe"; progress with Cancel while a
// transfer runs, Download for an offered file, Save for a complete one, and the words for a
// tampered or expired file.
import { cleanup, render, screen } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Attachment } from "../api/types";
import { AttachmentCard } from "./Attachments";

const base: Attachment = {
  id: "a1",
  contactId: "c1",
  groupId: null,
  messageId: "m1",
  outgoing: false,
  fileName: "\u202Egnp.exe\u202C",
  mediaType: "application/octet-stream",
  size: 200_000,
  isImage: false,
  state: "offered",
  doneChunks: 0,
  totalChunks: 4,
  error: null,
};

beforeEach(() => {
  localStorage.setItem("sealpost.locale", "en");
  history.replaceState(null, "", "/?mock=demo&latency=0");
});
afterEach(() => cleanup());

describe("attachment cards", () => {
  it("show a lying file name in its real order, as text", () => {
    render(<AttachmentCard attachment={{ ...base, fileName: "\u202Egnp.exe\u202C<img src=x>" }} />);
    const name = screen.getByTestId("attachment-name");
    expect(name.textContent).toBe("gnp.exe<img src=x>");
    expect(name.querySelector("img")).toBeNull();
    expect(screen.getByTestId("attachment-download")).toBeTruthy();
  });

  it("show progress with Cancel while downloading, and Save when complete", () => {
    const { rerender } = render(<AttachmentCard attachment={{ ...base, state: "downloading", doneChunks: 2 }} />);
    expect(screen.getByRole("progressbar")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Cancel" })).toBeTruthy();
    rerender(<AttachmentCard attachment={{ ...base, state: "complete", doneChunks: 4 }} />);
    expect(screen.queryByRole("progressbar")).toBeNull();
    expect(screen.getByTestId("attachment-save")).toBeTruthy();
  });

  it("say why a file was refused or is gone", () => {
    const { rerender } = render(
      <AttachmentCard attachment={{ ...base, state: "failed", error: "attachment_tampered" }} />,
    );
    expect(document.body.textContent).toContain("changed on the way");
    rerender(<AttachmentCard attachment={{ ...base, state: "failed", error: "attachment_expired" }} />);
    expect(document.body.textContent).toContain("expired");
  });
});
