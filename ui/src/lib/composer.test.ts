import { describe, expect, it } from "vitest";
import { composerKeyAction, sendableText, type ComposerKey } from "./composer";

const key = (over: Partial<ComposerKey>): ComposerKey => ({
  key: "Enter",
  shiftKey: false,
  ctrlKey: false,
  metaKey: false,
  altKey: false,
  isComposing: false,
  ...over,
});

describe("composerKeyAction", () => {
  it("Enter sends", () => expect(composerKeyAction(key({}))).toBe("send"));
  it("Ctrl+Enter sends", () => expect(composerKeyAction(key({ ctrlKey: true }))).toBe("send"));
  it("Shift+Enter is a new line", () => expect(composerKeyAction(key({ shiftKey: true }))).toBe("newline"));
  it("Alt+Enter is a new line", () => expect(composerKeyAction(key({ altKey: true }))).toBe("newline"));
  it("Enter that confirms an IME conversion does not send", () =>
    expect(composerKeyAction(key({ isComposing: true }))).toBe("default"));
  it("keyCode 229 (IME processing) does not send", () =>
    expect(composerKeyAction(key({ keyCode: 229 }))).toBe("default"));
  it("other keys type normally", () => {
    expect(composerKeyAction(key({ key: "a" }))).toBe("default");
    expect(composerKeyAction(key({ key: "Escape" }))).toBe("default");
  });
});

describe("sendableText", () => {
  it("refuses empty and blank text", () => {
    expect(sendableText("")).toBeNull();
    expect(sendableText("  \n\t ")).toBeNull();
  });
  it("keeps inner new lines and leading spaces of the first line, trims the end", () => {
    expect(sendableText("  two\nlines\n\n")).toBe("  two\nlines");
  });
  it("drops a leading blank line", () => {
    expect(sendableText("\nhello")).toBe("hello");
  });
});
