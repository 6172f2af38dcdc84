// Jest's order (longest first, from the durations its cache recorded), except for files it has no
// duration for: a fresh clone (CI) has none, and Jest then orders by file size, which puts the fault
// campaign (small files, each up to half a minute of retries) last, alone on one worker. Unrecorded
// files that are known to be long go first; the other unrecorded ones still go by size.
const Sequencer = require('@jest/test-sequencer').default;

const KNOWN_LONG = /[\\/]test[\\/]faults[\\/]/;

class LongestFirstSequencer extends Sequencer {
  sort(tests) {
    // As Jest's own sort does (its choice to run in band reads it).
    for (const test of tests) test.duration = this.time(test);
    const estimate = (test) =>
      test.duration ??
      (KNOWN_LONG.test(test.path) ? Infinity : (test.context.hasteFS.getSize(test.path) ?? 0));
    const keyed = tests.map((test) => ({ test, failed: this.hasFailed(test), estimate: estimate(test) }));
    keyed.sort((a, b) => (a.failed !== b.failed ? (a.failed ? -1 : 1) : b.estimate - a.estimate));
    return keyed.map((k) => k.test);
  }
}

module.exports = LongestFirstSequencer;
