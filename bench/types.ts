// One measurement, OANIX side by side with its peers, as bench/run.ts writes it to results.json.

export interface BenchResult {
  /** Stable identifier, e.g. "wasi-smallfile-ops". */
  name: string;
  /** Unit of `oanix` and of every peer value ("ops/s", "MB/s", "ms", "×", …). */
  unit: string;
  /** OANIX's value (a median over repetitions unless `note` says otherwise). */
  oanix: number;
  /** Each peer's value, measured in the same process run, in the same unit. */
  peers: Record<string, number>;
  /** Which direction is better for this measurement. */
  better: "higher" | "lower";
  /**
   * Per peer: oanix/peer when higher is better, peer/oanix when lower is better, so that > 1 always
   * means OANIX is better. bench/run.ts fills it in when a benchmark leaves it out.
   */
  ratio?: Record<string, number>;
  /** How it was measured, caveats, secondary numbers. */
  note?: string;
}

/** What a benchmark module in bench/ exports. */
export interface BenchModule {
  run(): Promise<BenchResult[]>;
}
