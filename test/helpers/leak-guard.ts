// Mocha root hook (.mocharc.json "require"): the run is not forced to exit, so a test that leaves a
// socket, server, timer or child open keeps the process alive. Instead of hanging CI, a timer that
// does not itself keep the process alive fires only in that case: it names what is still open and
// fails the run.

const GRACE_MS = 15_000;

export const mochaHooks = {
  afterAll(): void {
    setTimeout(() => {
      const open = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
      console.error(`\nleak guard: the run ended ${GRACE_MS / 1000} s ago but these are still open: ${open.join(', ') || '(none listed)'}`);
      console.error('leak guard: a test did not close what it opened; failing the run.');
      // Mocha sets the exit code (its failure count) in an 'exit' listener; this one runs after it.
      process.on('exit', () => {
        process.exitCode = 1;
      });
      process.exit(1);
    }, GRACE_MS).unref();
  },
};
