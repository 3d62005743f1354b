/** Where OANIX keeps caches: $OANIX_CACHE_DIR, else $XDG_CACHE_HOME/oanix, else ~/.cache/oanix. */
export function cacheDir(): string;
