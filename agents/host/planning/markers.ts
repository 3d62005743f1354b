// Reading model answers through marker lines any model can follow and a person can read:
//   VERDICT: GO | PIVOT | KILL   (CONTINUE counts as GO)     the kill test
//   REFINED: text                the refined idea of a PIVOT
//   REASON: text                 why a KILL
//   REVISIT: n                   months until a killed idea is worth another look
//   REVIEW: ACCEPT | REVISE      the reviewer
//   SCORE: n                     the reviewer, 0–10 (decimals and "n/10" allowed)
// Case-insensitive; Markdown emphasis around the name or value is allowed ("**Verdict:** go");
// the first occurrence with a valid value wins. A marker missing (or with no valid value) is never
// an error; it takes the default documented on each function and `defaulted` says so.

export type Verdict = "GO" | "PIVOT" | "KILL";
export type Review = "ACCEPT" | "REVISE";

/** A review counts as ACCEPT without a REVIEW marker when its score is at least this. */
export const ACCEPT_SCORE = 7;
/** Months to revisit a killed idea when the answer gives none. */
export const DEFAULT_REVISIT_MONTHS = 6;

/** NAME: then `value`, a pattern whose first group is the value. */
const marker = (name: string, value: string): RegExp => new RegExp(`(?:^|[^A-Za-z0-9_])${name}[*_ \\t]*:[*_ \\t]*${value}`, "gi");

function first(text: string, re: RegExp, valid: (v: string) => boolean = () => true): string | undefined {
  for (const m of text.matchAll(re)) if (valid(m[1]!)) return m[1]!;
  return undefined;
}

const VERDICT = marker("VERDICT", "(GO|PIVOT|KILL|CONTINUE)(?![A-Za-z0-9_])");
const REVIEW = marker("REVIEW", "(ACCEPT|REVISE)(?![A-Za-z0-9_])");
const SCORE = marker("SCORE", "([+-]?\\d+(?:\\.\\d+)?)(?!\\.?\\d)");
const REVISIT = marker("REVISIT", "(\\d+)");
const line = (name: string): RegExp => marker(name, "([^\\r\\n]*)");

/** The kill test's verdict; missing: GO (the run goes on, and `defaulted` is recorded). */
export function parseVerdict(text: string): { verdict: Verdict; defaulted: boolean } {
  const v = first(text, VERDICT)?.toUpperCase();
  if (v === undefined) return { verdict: "GO", defaulted: true };
  return { verdict: v === "CONTINUE" ? "GO" : (v as Verdict), defaulted: false };
}

/** SCORE: n in 0–10; missing or out of range: null (ranked below every scored version). */
export function parseScore(text: string): number | null {
  const s = first(text, SCORE, (v) => Number(v) >= 0 && Number(v) <= 10);
  return s === undefined ? null : Number(s);
}

/** REVIEW: ACCEPT|REVISE; missing: ACCEPT when the score is at least ACCEPT_SCORE, else REVISE. */
export function parseReview(text: string): { review: Review; score: number | null; defaulted: boolean } {
  const score = parseScore(text);
  const r = first(text, REVIEW)?.toUpperCase() as Review | undefined;
  if (r !== undefined) return { review: r, score, defaulted: false };
  return { review: score !== null && score >= ACCEPT_SCORE ? "ACCEPT" : "REVISE", score, defaulted: true };
}

/** A text marker's value (trimmed, emphasis stripped), or undefined when absent or empty. */
export function parseLine(text: string, name: "REFINED" | "REASON"): string | undefined {
  return first(text, line(name), (v) => v.replace(/[*_]/g, "").trim().length > 0)?.replace(/^[*_\s]+|[*_\s]+$/g, "");
}

/** REVISIT: n months; missing: DEFAULT_REVISIT_MONTHS. */
export function parseRevisit(text: string): number {
  const v = first(text, REVISIT, (s) => Number(s) <= 1200);
  return v === undefined ? DEFAULT_REVISIT_MONTHS : Number(v);
}
