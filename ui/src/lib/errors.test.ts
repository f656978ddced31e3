import { describe, expect, it } from "vitest";
import { toEngineError } from "../api/runtime";
import { translate } from "../i18n";
import { errorKey, errorText } from "./errors";

const en = (key: Parameters<typeof translate>[1], params?: Parameters<typeof translate>[2]) => translate("en", key, params);
const ja = (key: Parameters<typeof translate>[1], params?: Parameters<typeof translate>[2]) => translate("ja", key, params);

describe("error mapping", () => {
  it("maps a known kind to translated words, not the engine's message", () => {
    const error = { kind: "invite_expired", message: "invite expired at 1700000000" };
    expect(errorText(error, en)).toBe("This invite has expired. Ask for a new one.");
    expect(errorText(error, ja)).toBe("この招待は期限切れです。新しい招待をもらってください。");
  });

  it("falls back to the engine's message for an unknown kind", () => {
    expect(errorText({ kind: "relay_quota_full", message: "mailbox quota exceeded" }, en)).toBe(
      "Something went wrong: mailbox quota exceeded",
    );
  });

  it("uses the message for 'internal' errors, since it says more", () => {
    expect(errorText({ kind: "internal", message: "db locked" }, en)).toBe("Something went wrong: db locked");
  });

  it("falls back to a generic sentence when there is nothing to say", () => {
    expect(errorText({ kind: "mystery", message: "" }, en)).toBe("Something went wrong. Please try again.");
    expect(errorText(undefined, en)).toBe("Something went wrong. Please try again.");
  });

  it("normalises plain-string rejections (e.g. Tauri's unknown-command errors)", () => {
    expect(toEngineError("command foo not found")).toEqual({ kind: "internal", message: "command foo not found" });
    expect(errorText("command foo not found", en)).toBe("Something went wrong: command foo not found");
  });

  it("normalises malformed rejections", () => {
    expect(toEngineError({ kind: 5, message: null })).toEqual({ kind: "internal", message: "" });
    expect(toEngineError(new Error("x"))).toEqual({ kind: "internal", message: "x" });
    expect(toEngineError(null)).toEqual({ kind: "internal", message: "" });
  });

  it("knows only real keys", () => {
    expect(errorKey("invite_own")).toBe("error.invite_own");
    expect(errorKey("withDetail")).toBeNull();
    expect(errorKey("__proto__")).toBeNull();
    expect(errorKey("nope")).toBeNull();
  });
});
