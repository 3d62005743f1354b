// Markers read from any text: documented defaults, never a throw.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ACCEPT_SCORE, DEFAULT_REVISIT_MONTHS, parseLine, parseReview, parseRevisit, parseScore, parseVerdict } from "./markers.ts";

describe("markers", () => {
  it("read the first valid occurrence, case-insensitive, through Markdown emphasis", () => {
    expect(parseVerdict("intro\n**Verdict:** pivot\nVERDICT: KILL")).toEqual({ verdict: "PIVOT", defaulted: false });
    expect(parseVerdict("verdict: Continue")).toEqual({ verdict: "GO", defaulted: false });
    expect(parseVerdict("VERDICT: maybe\nVERDICT: KILL").verdict).toBe("KILL");
    expect(parseReview("Review: revise\nSCORE: 8/10\nREVIEW: ACCEPT")).toEqual({ review: "REVISE", score: 8, defaulted: false });
    expect(parseScore("SCORE: 11\nscore: 7.5.")).toBe(7.5);
    expect(parseLine("REFINED:\nREFINED: **bread by bike**  \n", "REFINED")).toBe("bread by bike");
    expect(parseLine("REASON: no market", "REASON")).toBe("no market");
    expect(parseRevisit("REVISIT: 18 months")).toBe(18);
  });

  it("take documented defaults when a marker is missing or not a marker", () => {
    expect(parseVerdict("VERDICTS: KILL, XVERDICT: KILL, verdict: gone")).toEqual({ verdict: "GO", defaulted: true });
    expect(parseReview(`SCORE: ${ACCEPT_SCORE}`)).toEqual({ review: "ACCEPT", score: ACCEPT_SCORE, defaulted: true });
    expect(parseReview(`SCORE: ${ACCEPT_SCORE - 1}`).review).toBe("REVISE");
    expect(parseReview("looks fine")).toEqual({ review: "REVISE", score: null, defaulted: true });
    expect(parseScore("SCORE: -1 SCORE: 1.2.3 SCORE: ten")).toBeNull();
    expect(parseRevisit("REVISIT: soon")).toBe(DEFAULT_REVISIT_MONTHS);
    expect(parseLine("no reason", "REASON")).toBeUndefined();
  });

  it("never throw on arbitrary text and always answer in their domain", () => {
    const noise = fc.oneof(fc.string({ unit: "binary" }), fc.constantFrom("VERDICT:", "REVIEW:", "SCORE:", "**", " ", "\n", "go", "PIVOT", "accept", "10", "-3", "7.5", "/10", "REFINED:", "REVISIT: 9"));
    const text = fc.array(noise, { maxLength: 40 }).map((xs) => xs.join(""));
    fc.assert(fc.property(text, (t) => {
      expect(["GO", "PIVOT", "KILL"]).toContain(parseVerdict(t).verdict);
      const r = parseReview(t);
      expect(["ACCEPT", "REVISE"]).toContain(r.review);
      if (r.score !== null) expect(r.score >= 0 && r.score <= 10).toBe(true);
      expect(Number.isInteger(parseRevisit(t))).toBe(true);
      const refined = parseLine(t, "REFINED");
      if (refined !== undefined) expect(refined).not.toMatch(/[\r\n]/);
    }), { numRuns: 500 });
  });

  it("find a marker planted anywhere in arbitrary text before any other", () => {
    fc.assert(fc.property(fc.string(), fc.constantFrom("GO", "PIVOT", "KILL"), fc.string(), (before, v, after) => {
      fc.pre(!/verdict/i.test(before));
      expect(parseVerdict(`${before}\nverdict: ${v.toLowerCase()}\n${after}`).verdict).toBe(v);
    }));
  });
});
