import { describe, expect, it } from "vitest";
import { markPlatform, platformOf } from "./platform";

describe("platformOf", () => {
  it.each([
    ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15", "linux"],
    ["Mozilla/5.0 (Wayland; Linux aarch64) AppleWebKit/605.1.15 (KHTML, like Gecko)", "linux"],
    ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", "macos"],
    ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "windows"],
    ["Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36", "other"],
    ["", "other"],
  ])("reads %s as %s", (userAgent, platform) => {
    expect(platformOf(userAgent)).toBe(platform);
  });
});

describe("markPlatform", () => {
  it("puts the platform on the root element", () => {
    expect(markPlatform(document, "Mozilla/5.0 (X11; Linux x86_64)")).toBe("linux");
    expect(document.documentElement.dataset.platform).toBe("linux");
    markPlatform(document, "Mozilla/5.0 (Windows NT 10.0; Win64; x64)");
    expect(document.documentElement.getAttribute("data-platform")).toBe("windows");
  });
});
