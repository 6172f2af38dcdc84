// Prints the plain closing line CI reads: "N passed, N failed", as the very last line. Jest adds its
// own summary reporter after the configured ones, so the line waits for the process to exit (writes
// to a pipe, file or terminal are synchronous there on Linux).
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const suiteErrors = results.numRuntimeErrorTestSuites;
    const failed = results.numFailedTests + suiteErrors;
    const line = `\n${results.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`;
    process.once('exit', () => process.stdout.write(line));
  }
}
module.exports = SummaryReporter;
