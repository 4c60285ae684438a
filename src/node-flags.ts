/**
 * The Node flags pgland is meant to run with (docs/configuration.md, "Memory").
 *
 * Node sizes V8's young generation for throughput: under a loader's steady
 * stream of short-lived strings and objects (a line, its parsed record, its
 * encoded row) it grows to two 16 MB semi-spaces, about 20 MB of resident
 * memory that holds nothing but garbage between scavenges. Capped at 4 MB
 * each, a load's peak resident set measured 11-22 MB lower at the same CPU
 * time (1M records, docs/benchmarks.md); 2 MB cost 15-40% more CPU.
 *
 * V8 reads the flag only when the process starts (v8.setFlagsFromString is
 * too late), so it is passed on Node's command line or in NODE_OPTIONS: by
 * npm run demo and the Docker image (a test checks both), the benchmark's
 * pgland child (its default) and the deployment examples in the docs.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
