import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concat, equal, fromHex, hex } from "./bytes.ts";

describe("bytes", () => {
  it("concat joins in order, and cuts at a given total", () => {
    expect(concat([Uint8Array.of(1, 2), Uint8Array.of(), Uint8Array.of(3)])).toEqual(Uint8Array.of(1, 2, 3));
    expect(concat([Uint8Array.of(1, 2), Uint8Array.of(3, 4)], 3)).toEqual(Uint8Array.of(1, 2, 3));
    expect(concat([])).toEqual(new Uint8Array(0));
  });

  it("hex and fromHex round-trip; bad hex is null", () => {
    fc.assert(fc.property(fc.uint8Array(), (b) => {
      expect(equal(fromHex(hex(b))!, b)).toBe(true);
    }));
    expect(hex(Uint8Array.of(0, 15, 255))).toBe("000fff");
    expect(fromHex("abc")).toBeNull();
    expect(fromHex("zz")).toBeNull();
  });

  it("equal compares contents", () => {
    expect(equal(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(equal(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(equal(Uint8Array.of(1), Uint8Array.of(1, 2))).toBe(false);
  });
});
