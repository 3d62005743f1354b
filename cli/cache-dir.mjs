// Where OANIX keeps caches: $OANIX_CACHE_DIR, else $XDG_CACHE_HOME/oanix, else ~/.cache/oanix.
// Plain JavaScript: the entry (cli/oanix.mjs) needs it before any TypeScript is loaded.
export function cacheDir() {
  const env = process.env;
  if (env.OANIX_CACHE_DIR) return env.OANIX_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return `${env.XDG_CACHE_HOME}/oanix`;
  // HOME is what os.homedir() reads first; node:os itself is loaded only when HOME is unset.
  const home = env.HOME || process.getBuiltinModule("node:os").homedir();
  return `${home}/.cache/oanix`;
}
