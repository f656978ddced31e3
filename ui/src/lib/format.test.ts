import { describe, expect, it } from "vitest";
import { avatarTone, dayLabel, daysUntil, initials, searchKey } from "./format";

describe("initials", () => {
  it.each([
    ["Ben Ortiz", "BO"],
    ["chloé martin", "CM"],
    ["Mika", "M"],
    ["田中 愛子 (Aiko)", "田"],
    ["(Aiko) Tanaka", "AT"],
    ["  ", "?"],
    ["<script>", "S"],
    ["😀", "?"],
  ])("%s → %s", (name, expected) => expect(initials(name)).toBe(expected));
});

describe("format helpers", () => {
  it("avatar tone is stable and within the palette", () => {
    expect(avatarTone("c_1")).toBe(avatarTone("c_1"));
    for (const id of ["a", "b", "c_123", ""]) expect(avatarTone(id)).toBeGreaterThanOrEqual(0);
    for (const id of ["a", "b", "c_123", ""]) expect(avatarTone(id)).toBeLessThan(8);
  });

  it("search matches full-width and case variants", () => {
    expect(searchKey("ＡＩＫＯ")).toBe(searchKey("aiko"));
  });

  it("labels today and yesterday", () => {
    const now = new Date(2026, 10, 25, 12, 0).getTime();
    const words = { today: "T", yesterday: "Y" };
    expect(dayLabel(new Date(2026, 10, 25, 0, 5).getTime(), "en", words, now)).toBe("T");
    expect(dayLabel(new Date(2026, 10, 24, 23, 59).getTime(), "en", words, now)).toBe("Y");
    expect(dayLabel(new Date(2026, 10, 20, 9, 0).getTime(), "en", words, now)).toContain("20");
  });

  it("counts whole days until expiry", () => {
    const now = 1_000_000;
    expect(daysUntil(now + 7 * 86_400_000, now)).toBe(7);
    expect(daysUntil(now + 1, now)).toBe(1);
    expect(daysUntil(now - 1, now)).toBe(0);
  });
});
