import { describe, expect, it } from "vitest";
import { groupSafetyNumber, safetyRows, svgDataUrl } from "./safety";

const digits = "123456789012345678901234567890123456789012345678901234567890";

describe("safety number grouping", () => {
  it("makes 12 groups of 5 digits in order", () => {
    const groups = groupSafetyNumber(digits);
    expect(groups).toHaveLength(12);
    expect(groups?.every((g) => /^[0-9]{5}$/.test(g))).toBe(true);
    expect(groups?.join("")).toBe(digits);
    expect(groups?.[0]).toBe("12345");
    expect(groups?.[11]).toBe("67890");
  });

  it.each([
    ["too short", digits.slice(1)],
    ["too long", `${digits}0`],
    ["letters", `${digits.slice(0, 59)}a`],
    ["spaces", digits.replace(/(.{5})/g, "$1 ").trim()],
    ["empty", ""],
    ["full-width digits", "１".repeat(60)],
  ])("refuses %s", (_name, value) => {
    expect(groupSafetyNumber(value)).toBeNull();
  });

  it("lays the groups out as 3 rows of 4", () => {
    const rows = safetyRows(groupSafetyNumber(digits) ?? []);
    expect(rows.map((r) => r.length)).toEqual([4, 4, 4]);
  });
});

describe("svgDataUrl", () => {
  it("encodes the SVG into a data: URL (never markup in the page)", () => {
    const url = svgDataUrl('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    expect(url.startsWith("data:image/svg+xml;charset=utf-8,")).toBe(true);
    expect(url).not.toContain("<");
    expect(url).not.toContain('"');
  });
});
