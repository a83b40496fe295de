"""MongoDB's unified-format specification tests, run by pymongo's own runner against Monarch.

Downloads the pinned pymongo source release (checked against its sha256, cached in .cache/),
runs the unified tests of each area with pytest against DB_IP/DB_PORT, and holds the outcome
to two committed files:

- expected-failures.txt: the tests that fail today, each with the words its failure message
  must contain and the issue or reason behind it;
- skip-baseline.txt: how many tests each area skips, by skip reason.

The run fails (exit 1) on any of: a failure that is not listed; a listed test that fails with
another message; a listed test that passes, is skipped or no longer exists; more skips than
the baseline for an area and reason, or a reason the baseline does not have; fewer skips than
the baseline (lower it, so a later rise is seen); nothing passing. Each problem is printed with
the line to change. Prints a table per area, writes results.json, and ends with
"spec: N passed, N failed, N skipped".

`--areas replica-set` runs the areas that need a replica set (retryable writes and reads, change streams,
sessions, transactions) instead of the standalone ones, against a server started with --replSet and
initiated; each run is held to the lines of its own areas in the two files.

`python3 spec.py --self-test` checks these gates on made-up results, without a server.

`--results FILE` names the results file. With `--compare-with OTHER --differences LIST` the run
is instead held to another run's results (the pass with authentication against the pass
without): every test must end as it did there (passed, failed or skipped) unless LIST names it
with the reason; a listed test that no longer differs fails the run too.

Nothing of pymongo is committed: its test files are fetched at run time.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import typing
import urllib.request
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
CACHE = HERE / ".cache"
PYMONGO_VERSION = "4.20.1"
PYMONGO_SHA256 = "1ac112b3ffa3d010cfc2fc54e3ae677a12c63d18c6115db4451df64f1a1175eb"
AREAS: dict[str, list[str]] = {
    "crud": ["test/test_crud_unified.py"],
    "collection_management": ["test/test_collection_management.py"],
    "run_command": ["test/test_run_command.py"],
    "command_monitoring": ["test/test_command_monitoring.py"],
    # pymongo's own (not unified-format) aggregation tests: collection and database aggregate,
    # cursors, and the documentation's aggregation examples.
    "aggregation": ["test/test_collection.py", "test/test_database.py", "test/test_examples.py", "-k", "aggregat"],
}
# The areas that need a replica set, run against a server started with --replSet and initiated
# (`--areas replica-set`).
REPLICA_SET_AREAS: dict[str, list[str]] = {
    "retryable_writes": ["test/test_retryable_writes_unified.py"],
    "retryable_reads": ["test/test_retryable_reads_unified.py"],
    "sessions": ["test/test_sessions_unified.py"],
    # The unified change-stream tests and pymongo's own change-stream tests.
    "change_streams": ["test/test_change_stream.py"],
    # The unified transactions and convenient-API (with_transaction) tests, and pymongo's own.
    "transactions": ["test/test_transactions_unified.py", "test/test_transactions.py"],
}
AREA_SETS = {"standalone": AREAS, "replica-set": REPLICA_SET_AREAS}


def fetch_sources() -> pathlib.Path:
    """The extracted pymongo source tree, downloaded and verified once."""
    root = CACHE / f"pymongo-{PYMONGO_VERSION}"
    if (root / "test" / "unified_format.py").exists():
        return root
    CACHE.mkdir(exist_ok=True)
    archive = CACHE / f"pymongo-{PYMONGO_VERSION}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"pymongo=={PYMONGO_VERSION}", "--no-binary", ":all:",
             "--no-deps", "--quiet", "--disable-pip-version-check", "-d", str(CACHE)],
            check=True,
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != PYMONGO_SHA256:
        archive.unlink()
        sys.exit(f"pymongo source archive has sha256 {digest}, expected {PYMONGO_SHA256}")
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return root


class Listed(typing.NamedTuple):
    """An expected failure: the words its message must contain, and why it fails."""

    message: str
    why: str


def entries(text: str):
    """The (line number, stripped line) of every line of a list file that is not blank or a
    '#' comment."""
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def parse_expected_failures(text: str) -> dict[str, Listed]:
    """`<test id> | <words of the failure message> | <issue or reason>`, one per line."""
    listed = {}
    for number, line in entries(text):
        parts = [part.strip() for part in line.split(" | ")]
        if len(parts) != 3 or not all(parts):
            sys.exit(f"expected-failures.txt:{number}: want '<test id> | <message words> | <why>', got: {line}")
        listed[parts[0]] = Listed(parts[1], parts[2])
    return listed


def parse_skip_baseline(text: str) -> dict[tuple[str, str], int]:
    """`<area> <count> <reason>`, one per line: how many tests an area skips for a reason."""
    baseline = {}
    for number, line in entries(text):
        area, count, reason = (line.split(" ", 2) + ["", ""])[:3]
        if not count.isdigit():
            sys.exit(f"skip-baseline.txt:{number}: want '<area> <count> <reason>', got: {line}")
        baseline[(area, reason.strip())] = int(count)
    return baseline


def skip_counts(results: list[dict]) -> collections.Counter:
    """Skips per (area, reason)."""
    return collections.Counter((r["area"], r["detail"]) for r in results if r["outcome"] == "skipped")


def judge(results: list[dict], listed: dict[str, Listed], baseline: dict[tuple[str, str], int]) -> list[str]:
    """Every reason the run must fail, each with what to change; empty when the run is good."""
    problems = []
    by_id = {r["id"]: r for r in results}
    for r in results:
        entry = listed.get(r["id"])
        if r["outcome"] != "failed":
            continue
        if entry is None:
            problems.append(f"UNEXPECTED FAILURE {r['id']}: {r['detail']}")
        elif entry.message not in r["detail"]:
            problems.append(
                f"FAILS FOR ANOTHER REASON {r['id']}: expected a message containing {entry.message!r}, "
                f"got: {r['detail']} (fix the regression, or update its line in expected-failures.txt)"
            )
    for test_id, entry in listed.items():
        found = by_id.get(test_id)
        if found is None:
            problems.append(f"NO SUCH TEST (remove from expected-failures.txt) {test_id}")
        elif found["outcome"] == "passed":
            problems.append(f"NOW PASSING (remove from expected-failures.txt) {test_id}")
        elif found["outcome"] == "skipped":
            problems.append(f"NOW SKIPPED ({found['detail']}; remove from expected-failures.txt) {test_id}")
    counts = skip_counts(results)
    for key in sorted(set(counts) | set(baseline)):
        area, reason = key
        now, then = counts.get(key, 0), baseline.get(key, 0)
        line = f"'{area} {now} {reason}'" if now else "nothing"
        if now > then:
            problems.append(
                f"MORE SKIPS in {area} for {reason!r}: {now}, baseline {then} (find what stopped these tests "
                f"from running; if intended, put {line} in skip-baseline.txt)"
            )
        elif now < then:
            problems.append(
                f"FEWER SKIPS in {area} for {reason!r}: {now}, baseline {then} (lower the baseline: "
                f"put {line} in skip-baseline.txt)"
            )
    return problems


def parse_differences(text: str) -> dict[str, str]:
    """auth-differences.txt: '<test id> <reason>' per line; '#' starts a comment."""
    listed = {}
    for number, line in entries(text):
        test_id, _, reason = line.partition(" ")
        if not reason.strip():
            sys.exit(f"differences:{number}: want '<test id> <reason>', got: {line}")
        listed[test_id] = reason.strip()
    return listed


def compare(results: list[dict], other: list[dict], listed: dict[str, str]) -> list[str]:
    """Every test that ends otherwise than in `other` and is not listed, and every listed test
    that no longer differs; empty when the two runs agree."""
    problems = []
    before = {r["id"]: r for r in other}
    now = {r["id"]: r for r in results}
    for test_id in sorted(set(before) | set(now)):
        a, b = before.get(test_id), now.get(test_id)
        was = a["outcome"] if a else "absent"
        became = b["outcome"] if b else "absent"
        differs = was != became
        if differs and test_id not in listed:
            detail = f": {b['detail']}" if b and b["detail"] else ""
            problems.append(f"DIFFERS {test_id}: {was} before, {became} now{detail}")
        elif not differs and test_id in listed:
            problems.append(f"NO LONGER DIFFERS (remove from the differences file) {test_id}")
    for test_id in sorted(set(listed) - set(before) - set(now)):
        problems.append(f"NO SUCH TEST (remove from the differences file) {test_id}")
    return problems


def self_test() -> int:
    """Checks `judge` on made-up results: each gate must trip, and a matching run must pass."""
    def result(test_id, outcome, detail=""):
        return {"id": test_id, "area": test_id.split("::")[0], "outcome": outcome, "detail": detail}

    listed = {"a::T::f": Listed("not supported yet", "#1")}
    baseline = {("a", "runOnRequirements not satisfied"): 1}
    good = [result("a::T::p", "passed"), result("a::T::f", "failed", "stage $out is not supported yet"),
            result("a::T::s", "skipped", "runOnRequirements not satisfied")]
    cases = {
        "a matching run": (good, 0),
        "a new failure": (good + [result("a::T::x", "failed", "boom")], 1),
        "a listed test failing for another reason": ([good[0], result("a::T::f", "failed", "boom"), good[2]], 1),
        "a listed test passing": ([good[0], result("a::T::f", "passed"), good[2]], 1),
        "a listed test skipped": ([good[0], result("a::T::f", "skipped", "x"), good[2]], 2),
        "a listed test gone": ([good[0], good[2]], 1),
        "a pass turned into a skip": ([result("a::T::p", "skipped", "runOnRequirements not satisfied")] + good[1:], 1),
        "a skip with a new reason": (good + [result("a::T::q", "skipped", "new reason")], 1),
        "a skip turned into a pass": (good[:2] + [result("a::T::s", "passed")], 1),
    }
    other = [result("a::T::p", "passed"), result("a::T::n", "passed")]
    differences = {"a::T::n": "needs auth: false"}
    comparisons = {
        "a comparison that agrees": ([other[0], result("a::T::n", "skipped", "x")], 0),
        "a test that ends otherwise": ([result("a::T::p", "failed", "boom"), result("a::T::n", "skipped", "x")], 1),
        "a listed difference gone": (other, 1),
        "a test missing from one run": ([result("a::T::n", "skipped", "x")], 1),
    }
    failed = 0
    for name, (results, expected) in comparisons.items():
        problems = compare(results, other, differences)
        if len(problems) != expected:
            failed += 1
            print(f"not ok - spec gate: {name}: {len(problems)} problems, expected {expected}: {problems}")
        else:
            print(f"ok - spec gate: {name}")
    for name, (results, expected) in cases.items():
        problems = judge(results, listed, baseline)
        if len(problems) != expected:
            failed += 1
            print(f"not ok - spec gate: {name}: {len(problems)} problems, expected {expected}: {problems}")
        else:
            print(f"ok - spec gate: {name}")
    return 1 if failed else 0


def run_area(root: pathlib.Path, area: str, selection: list[str], workdir: pathlib.Path) -> list[dict]:
    """Runs one area's tests (pytest paths and options) and returns one record per test."""
    report = workdir / f"{area}.xml"
    env = dict(os.environ, PYTHONPATH=str(root))
    subprocess.run(
        # A test waiting for an event that never comes fails after a minute instead of
        # holding the run.
        [sys.executable, "-m", "pytest", *selection, "-p", "no:cacheprovider", "-q", "-o", "addopts=",
         "--timeout=60", f"--junitxml={report}"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )
    if not report.exists():
        sys.exit(f"{area}: pytest produced no report")
    results = []
    for case in ET.parse(report).iter("testcase"):
        test_id = f"{area}::{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcome, detail = "passed", ""
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                outcome = "skipped" if kind == "skipped" else "failed"
                detail = (element.get("message") or "").splitlines()[0][:300] if element.get("message") else ""
                break
        results.append({"id": test_id, "area": area, "outcome": outcome, "detail": detail})
    return results


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    options = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    unknown = set(options) - {"--results", "--compare-with", "--differences", "--areas"}
    usage = "usage: spec.py [--self-test] [--areas standalone|replica-set] [--results FILE] [--compare-with FILE --differences FILE]"
    if unknown or len(sys.argv[1:]) % 2 or ("--compare-with" in options) != ("--differences" in options):
        sys.exit(usage)
    areas = AREA_SETS.get(options.get("--areas", "standalone"))
    if areas is None:
        sys.exit(usage)
    results_file = pathlib.Path(options.get("--results", HERE / "results.json"))
    # One list and one baseline for every area; a run is held to the lines of its own areas.
    listed = {test_id: entry for test_id, entry in parse_expected_failures((HERE / "expected-failures.txt").read_text()).items()
              if test_id.split("::")[0] in areas}
    baseline = {key: n for key, n in parse_skip_baseline((HERE / "skip-baseline.txt").read_text()).items()
                if key[0] in areas}
    root = fetch_sources()
    workdir = pathlib.Path(os.environ.get("SPEC_WORKDIR", HERE / ".cache" / "reports"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for area, selection in areas.items():
        results.extend(run_area(root, area, selection, workdir))
    for r in results:
        entry = listed.get(r["id"])
        r["expected_failure"] = entry is not None and r["outcome"] == "failed" and entry.message in r["detail"]
        if entry is not None:
            r["tracked_by"] = entry.why

    print(f"{'area':<24}{'run':>6}{'passed':>8}{'failed':>8}{'skipped':>9}{'expected':>10}")
    for area in areas:
        mine = [r for r in results if r["area"] == area]
        count = collections.Counter(r["outcome"] for r in mine)
        known = sum(1 for r in mine if r["expected_failure"])
        run = count["passed"] + count["failed"]
        print(f"{area:<24}{run:>6}{count['passed']:>8}{count['failed']:>8}{count['skipped']:>9}{known:>10}")
    skips = skip_counts(results)
    if skips:
        print("\nskipped, by area and reason (held to skip-baseline.txt):")
        for (area, reason), n in sorted(skips.items()):
            print(f"  {n:>4}  {area}: {reason or '(no reason given)'}")

    if "--compare-with" in options:
        other = json.loads(pathlib.Path(options["--compare-with"]).read_text())["tests"]
        differences = parse_differences(pathlib.Path(options["--differences"]).read_text())
        problems = compare(results, other, differences)
        print(f"\ncompared with {options['--compare-with']}: {len(differences)} listed differences")
    else:
        problems = judge(results, listed, baseline)
    for problem in problems:
        print(problem)
    total = collections.Counter(r["outcome"] for r in results)
    known = sum(1 for r in results if r["expected_failure"])
    unexpected = total["failed"] - known
    summary = {"pymongo": PYMONGO_VERSION, "totals": dict(total), "expected_failures": known,
               "unexpected_failures": unexpected, "problems": len(problems), "tests": results}
    results_file.write_text(json.dumps(summary, indent=1))
    print(f"\nspec: {total['passed']} passed, {total['failed']} failed ({known} expected), {total['skipped']} skipped")
    if total["passed"] == 0:
        print("nothing passed: is the server reachable?")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
