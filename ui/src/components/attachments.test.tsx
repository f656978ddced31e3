// Attachment cards (docs/engine.md § Attachments): a peer's file name is a text node without
// bidirectional controls, so "\u202Egnp.exe" shows its real ".exe"; progress with Cancel while a
// transfer runs, Download for an offered file, Save for a complete one, and the words for a
// tampered or expired file.
import { cleanup, render, screen } from "@testing-library/preact";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { offeredFile, startMock } from "../test/support";
import { AttachmentCard, readFile, toDataUrl } from "./Attachments";

beforeEach(() => startMock("demo"));
afterEach(() => cleanup());

describe("attachment cards", () => {
  it("show a lying file name in its real order, as text", () => {
    render(<AttachmentCard attachment={offeredFile({ fileName: "\u202Egnp.exe\u202C<img src=x>" })} />);
    const name = screen.getByTestId("attachment-name");
    expect(name.textContent).toBe("gnp.exe<img src=x>");
    expect(name.querySelector("img")).toBeNull();
    expect(screen.getByTestId("attachment-download")).toBeTruthy();
  });

  it("show progress with Cancel while downloading, and Save when complete", () => {
    const { rerender } = render(<AttachmentCard attachment={offeredFile({ state: "downloading", doneChunks: 2 })} />);
    expect(screen.getByRole("progressbar")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Cancel" })).toBeTruthy();
    rerender(<AttachmentCard attachment={offeredFile({ state: "complete", doneChunks: 4 })} />);
    expect(screen.queryByRole("progressbar")).toBeNull();
    expect(screen.getByTestId("attachment-save")).toBeTruthy();
  });

  it("say why a file was refused or is gone", () => {
    const { rerender } = render(
      <AttachmentCard attachment={offeredFile({ state: "failed", error: "attachment_tampered" })} />,
    );
    expect(document.body.textContent).toContain("changed on the way");
    rerender(<AttachmentCard attachment={offeredFile({ state: "failed", error: "attachment_expired" })} />);
    expect(document.body.textContent).toContain("expired");
  });
});

describe("files as bytes", () => {
  it("readFile keeps the file's bytes as a Uint8Array (raw across IPC, not a number array)", async () => {
    const file = new File([new Uint8Array([1, 2, 255])], "写真.png", { type: "image/png" });
    const outgoing = await readFile(file);
    expect(outgoing.fileName).toBe("写真.png");
    expect(outgoing.mediaType).toBe("image/png");
    expect(outgoing.bytes).toBeInstanceOf(Uint8Array);
    expect(Array.from(outgoing.bytes)).toEqual([1, 2, 255]);
  });

  it("toDataUrl encodes a preview larger than one slice exactly", () => {
    const png = new Uint8Array(100_000).map((_, i) => (i * 7) % 256);
    const url = toDataUrl(png);
    expect(url.startsWith("data:image/png;base64,")).toBe(true);
    const decoded = Uint8Array.from(atob(url.slice("data:image/png;base64,".length)), (c) => c.charCodeAt(0));
    expect(decoded.length).toBe(png.length);
    expect(decoded.every((byte, i) => byte === png[i])).toBe(true);
  });
});
