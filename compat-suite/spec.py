"""MongoDB's unified-format specification tests, run by pymongo's own runner against Monarch.

Downloads the pinned pymongo source release (checked against its sha256, cached in .cache/),
runs the unified tests of each area with pytest against DB_IP/DB_PORT, and compares the
outcome with expected-failures.txt. Prints a table per area, writes results.json, and ends
with "N passed, N failed, N skipped". Exits 1 when a test fails that is not listed as an
expected failure, when a listed test passes (so the list stays true), or when nothing ran.

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
import urllib.request
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
CACHE = HERE / ".cache"
PYMONGO_VERSION = "4.20.1"
PYMONGO_SHA256 = "1ac112b3ffa3d010cfc2fc54e3ae677a12c63d18c6115db4451df64f1a1175eb"
AREAS = {
    "crud": "test/test_crud_unified.py",
    "collection_management": "test/test_collection_management.py",
    "run_command": "test/test_run_command.py",
    "command_monitoring": "test/test_command_monitoring.py",
}


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


def expected_failures() -> dict[str, str]:
    """Test id -> the issue (or reason) that explains why it fails today."""
    listed = {}
    for line in (HERE / "expected-failures.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test_id, _, why = line.partition(" ")
        listed[test_id] = why.strip()
    return listed


def run_area(root: pathlib.Path, area: str, path: str, workdir: pathlib.Path) -> list[dict]:
    """Runs one area's tests and returns one record per test."""
    report = workdir / f"{area}.xml"
    env = dict(os.environ, PYTHONPATH=str(root))
    subprocess.run(
        [sys.executable, "-m", "pytest", path, "-p", "no:cacheprovider", "-q", "-o", "addopts=",
         f"--junitxml={report}"],
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
    root = fetch_sources()
    workdir = pathlib.Path(os.environ.get("SPEC_WORKDIR", HERE / ".cache" / "reports"))
    workdir.mkdir(parents=True, exist_ok=True)
    listed = expected_failures()
    results = []
    for area, path in AREAS.items():
        results.extend(run_area(root, area, path, workdir))

    unexpected = [r for r in results if r["outcome"] == "failed" and r["id"] not in listed]
    fixed = [r for r in results if r["outcome"] == "passed" and r["id"] in listed]
    for r in results:
        r["expected_failure"] = r["id"] in listed
        if r["id"] in listed:
            r["tracked_by"] = listed[r["id"]]

    print(f"{'area':<24}{'run':>6}{'passed':>8}{'failed':>8}{'skipped':>9}{'expected':>10}")
    for area in AREAS:
        mine = [r for r in results if r["area"] == area]
        count = collections.Counter(r["outcome"] for r in mine)
        known = sum(1 for r in mine if r["outcome"] == "failed" and r["expected_failure"])
        run = count["passed"] + count["failed"]
        print(f"{area:<24}{run:>6}{count['passed']:>8}{count['failed']:>8}{count['skipped']:>9}{known:>10}")
    skips = collections.Counter(r["detail"] for r in results if r["outcome"] == "skipped")
    if skips:
        print("\nskipped, by reason:")
        for reason, n in skips.most_common(12):
            print(f"  {n:>4}  {reason or '(no reason given)'}")
    for r in unexpected:
        print(f"UNEXPECTED FAILURE {r['id']}: {r['detail']}")
    for r in fixed:
        print(f"NOW PASSING (remove from expected-failures.txt) {r['id']}")

    total = collections.Counter(r["outcome"] for r in results)
    known = sum(1 for r in results if r["outcome"] == "failed" and r["expected_failure"])
    summary = {"pymongo": PYMONGO_VERSION, "totals": dict(total), "expected_failures": known,
               "unexpected_failures": len(unexpected), "now_passing": len(fixed), "tests": results}
    (HERE / "results.json").write_text(json.dumps(summary, indent=1))
    print(f"\nspec: {total['passed']} passed, {total['failed']} failed ({known} expected), {total['skipped']} skipped")
    if total["passed"] == 0:
        print("nothing passed: is the server reachable?")
        return 1
    return 1 if unexpected or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
