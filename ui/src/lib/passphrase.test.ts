import { describe, expect, it } from "vitest";
import { base32, generatePassphrase } from "./passphrase";

describe("generated backup passphrases", () => {
  it("encode like RFC 4648 base32", () => {
    // RFC 4648 § 10 test vector "fooba" → "MZXW6YTB".
    expect(base32(new TextEncoder().encode("fooba"))).toBe("MZXW6YTB");
  });

  it("are six groups of four base32 characters and differ each time", () => {
    const a = generatePassphrase();
    const b = generatePassphrase();
    expect(a).toMatch(/^[A-Z2-7]{4}(-[A-Z2-7]{4}){5}$/);
    expect(a).not.toBe(b);
  });
});
