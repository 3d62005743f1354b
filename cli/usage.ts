// The two ways a command fails on purpose, each reported as one line on stderr.

/** A command-line mistake or a setup problem (bad flag, bad key, unreadable module): exit 2. */
export class UsageError extends Error {}

/** The command was well formed but did not succeed (the edge refused, a file is missing): exit 1. */
export class CommandError extends Error {}

export { cacheDir } from "./cache-dir.mjs";
