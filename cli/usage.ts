// The two ways a command fails on purpose, each reported as one line on stderr.
import { homedir } from "node:os";
import { join } from "node:path";

/** A command-line mistake or a setup problem (bad flag, bad key, unreadable module): exit 2. */
export class UsageError extends Error {}

/** The command was well formed but did not succeed (the edge refused, a file is missing): exit 1. */
export class CommandError extends Error {}

/** Where OANIX keeps caches: $OANIX_CACHE_DIR, else $XDG_CACHE_HOME/oanix, else ~/.cache/oanix. */
export function cacheDir(): string {
  const env = process.env;
  return env.OANIX_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "oanix");
}
