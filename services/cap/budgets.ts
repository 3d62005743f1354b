// The budgets each capability keeps (`--budget CAP:KIND=N` in the CLI, `budgets` of an edge run):
// past one, the capability answers EDQUOT.
export const BUDGET_KINDS: Record<string, string[]> = { http: ["calls", "bytes"], ws: ["calls", "bytes"], llm: ["tokens", "calls"], nostr: ["calls"] };

/** Every "cap:kind" name, for messages. */
export const budgetNames = (): string => Object.entries(BUDGET_KINDS).map(([c, ks]) => ks.map((k) => `${c}:${k}`).join(", ")).join(", ");
