// Shared by the mongosh scripts (loaded with `load(__dirname + "/mongosh_checks.js")`):
// makeCheck(area) returns check(what, condition, detail), which prints "ok - <area>: what"
// or "not ok - <area>: what <detail>" and counts failures; finish() quits non-zero after any.
globalThis.failures = 0;

function makeCheck(area) {
  return function check(what, condition, detail) {
    if (condition) {
      print(`ok - ${area}: ${what}`);
    } else {
      globalThis.failures += 1;
      print(`not ok - ${area}: ${what} ${EJSON.stringify(detail)}`);
    }
  };
}

function finish() {
  if (globalThis.failures > 0) {
    quit(1);
  }
}
