// JavaScript Promise Integration (JSPI): on by default in Chromium >= 137, workerd and Node >= 24,
// not yet in TypeScript's lib.
declare namespace WebAssembly {
  class Suspending {
    constructor(fn: (...args: never[]) => unknown);
  }
  function promising<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => Promise<R>;
}
