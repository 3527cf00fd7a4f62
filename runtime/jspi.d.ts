// JavaScript Promise Integration (JSPI), shipped in V8 13.7 / Node 24; TypeScript's lib does not
// declare it yet.
declare namespace WebAssembly {
  class Suspending {
    constructor(fn: (...args: never[]) => unknown);
  }
  function promising<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => Promise<R>;
}
