#!/usr/bin/env python3
"""Browser test of monarchd's web console (src/net/console/assets/), in headless Chromium.

Usage: console_test.py <monarchd> [--screenshots DIR]

Starts monarchd on free ports with a temporary --dbpath, waits for /readyz, loads data with
pymongo (3000 documents in consoletest.things, a background load, a collection scan run a few
times), then opens every console page with Selenium and checks what it shows, that the browser
logged no error or warning, and saves a screenshot of each page (1400x1000).

Then, in the same browser, the operator scenario: a second monarchd with --adminTokenFile. The
console must ask for the token, refuse a wrong one, load the overview with the right one, and,
since a token holder is an operator, stop a long count on obs.big from the operations page (Kill,
then Confirm kill): the count fails with Interrupted (11601) and its row goes away. Chrome logs
each API call answered 401 as a SEVERE entry: those of the token server's /api/ calls are accepted
until the right token is submitted, and nothing else is.

Exits non-zero with a message on the first failure; the servers are stopped and their dbpaths
removed in any case.

.ci/browser-tests installs what this needs (Debian's chromium and chromium-driver, selenium and
pymongo in a venv) and runs it. The element ids and classes used here are listed at the top of
src/net/console/assets/console.js.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

from pymongo import MongoClient
from pymongo.errors import OperationFailure
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

DOCS = 3000
QUERY = {"x": {"$gt": 2990}}
QUERY_RETURNS = 9
READY_TIMEOUT = 60
WAIT = 30

# The operator scenario.
TOKEN = "console-test-token"
TOKEN_KEY = "monarch.console.token"  # console.js keeps the token under this sessionStorage key
BIG_DOCS = 20000
KILL_APP = "console-kill-test"
# The operation to stop is a count over obs.big with an $or of regexes that match nothing. Its
# cost grows with the number of clauses, which is sized from a probe count (a debug build is
# some 15 times slower than a release one) so that the count would run about COUNT_TARGET s.
PROBE_CLAUSES = 30
COUNT_TARGET = 20
MIN_CLAUSES = 300
MAX_CLAUSES = 20000


class TestFailure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(data[-lines:])
    except OSError as e:
        return f"(no server log: {e})"


class Server:
    """monarchd on free ports with a temporary dbpath."""

    def __init__(self, binary, root, extra_args=()):
        self.binary = binary
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.admin_port = free_port()
        while self.admin_port == self.port:
            self.admin_port = free_port()
        self.dbpath = os.path.join(root, "db")
        os.mkdir(self.dbpath)
        self.log_path = os.path.join(root, "monarchd.log")
        self.proc = None

    def start(self):
        args = [self.binary, "--port", str(self.port), "--adminPort", str(self.admin_port),
                "--dbpath", self.dbpath, "--bind_ip", "127.0.0.1"] + self.extra_args
        print("== starting", " ".join(args), flush=True)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT
        url = f"http://127.0.0.1:{self.admin_port}/readyz"
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure(f"monarchd exited with status {self.proc.returncode} before it was ready")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        print(f"== ready: port {self.port}, admin port {self.admin_port}", flush=True)
                        return
                    last = f"HTTP {r.status}"
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            time.sleep(0.2)
        raise TestFailure(f"{url} did not answer 200 within {READY_TIMEOUT} s (last: {last})")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            print(f"monarchd had exited with status {self.proc.returncode}", file=sys.stderr)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print("monarchd did not stop within 30 s of SIGTERM: killing it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        print(f"== monarchd stopped (status {self.proc.returncode})", flush=True)


class BackgroundLoad(threading.Thread):
    """Finds and inserts on consoletest.background (not on `things`, whose count is checked)."""

    def __init__(self, port):
        super().__init__(name="background-load", daemon=True)
        self.port = port
        self.stopping = threading.Event()
        self.error = None
        self.ops = 0

    def run(self):
        client = MongoClient("127.0.0.1", self.port, directConnection=True, appname="console-test-load",
                             serverSelectionTimeoutMS=10000)
        try:
            coll = client.consoletest.background
            i = 0
            while not self.stopping.is_set():
                coll.insert_one({"k": i, "at": time.time()})
                coll.find_one({"k": i})
                list(coll.find({"k": {"$lt": 5}}).limit(5))
                i += 1
                self.ops += 3
                self.stopping.wait(0.05)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            if not self.stopping.is_set():
                self.error = e
        finally:
            client.close()

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def load_data(port):
    client = MongoClient("127.0.0.1", port, directConnection=True, appname="console-test",
                         serverSelectionTimeoutMS=10000)
    try:
        things = client.consoletest.things
        things.insert_many([{"x": i, "pad": "p" * 100} for i in range(DOCS)])
        check(things.count_documents({}) == DOCS, f"consoletest.things should hold {DOCS} documents")
        for _ in range(5):
            got = list(things.find(QUERY))
            check(len(got) == QUERY_RETURNS, f"find({QUERY}) returned {len(got)} documents, not {QUERY_RETURNS}")
    finally:
        client.close()


class Console:
    """The browser, with a check of its log and a screenshot after each page."""

    def __init__(self, base, screenshots, chromium, chromedriver):
        self.base = base
        self.screenshots = screenshots
        opts = webdriver.ChromeOptions()
        if chromium:
            opts.binary_location = chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1400,1000", "--no-first-run", "--no-default-browser-check",
                  "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-features=Translate,MediaRouter,OptimizationHints"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
        self.driver.set_window_size(1400, 1000)
        # The pages redraw their tables as they poll: an element found may go stale, then retry.
        self.wait = WebDriverWait(self.driver, WAIT,
                                  ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))

    def quit(self):
        self.driver.quit()

    def open(self, route):
        self.driver.get(f"{self.base}/ui/#/{route}")

    def until(self, what, cond):
        try:
            return self.wait.until(lambda d: cond(d))
        except TimeoutException:
            raise TestFailure(f"timed out after {WAIT} s waiting for {what}") from None

    def find(self, css, root=None):
        return (root or self.driver).find_elements(By.CSS_SELECTOR, css)

    def one(self, what, css):
        """Waits for the first element matching css."""
        return self.until(what, lambda d: (d.find_elements(By.CSS_SELECTOR, css) or [False])[0])

    def screenshot(self, name):
        path = os.path.join(self.screenshots, f"{name}.png")
        self.driver.save_screenshot(path)
        return path

    def check_log(self, name, allow=None):
        """No browser error or warning since the last check but those allow(entry) accepts.
        Returns how many were accepted."""
        entries = self.driver.get_log("browser")
        noisy = [e for e in entries if e.get("level") in ("SEVERE", "WARNING")]
        bad = [e for e in noisy if not (allow and allow(e))]
        check(not bad, f"page {name}: the browser logged:\n" +
              "\n".join(f"  {e.get('level')} {e.get('source', '')}: {e.get('message')}" for e in bad))
        return len(noisy)

    def finish_page(self, name, allow=None):
        """No browser error or warning since the last page (but those allow accepts); the page's
        screenshot."""
        path = self.screenshot(name)
        self.check_log(name, allow)
        print(f"ok   {name} ({path})", flush=True)

    def click(self, what, css):
        """Clicks the element matching css, again when a redraw replaced it meanwhile."""
        def go(d):
            d.find_element(By.CSS_SELECTOR, css).click()
            return True
        self.until(what, go)

    def error_box(self):
        boxes = self.find("#error-box")
        return boxes[0].text if boxes and boxes[0].is_displayed() else ""


def numeric(el, attr="data-value"):
    v = el.get_attribute(attr)
    return None if v in (None, "") else float(v)


def stat(node, name):
    found = node.find_elements(By.CSS_SELECTOR, f'.stat[data-stat="{name}"]')
    return numeric(found[0]) if found else None


def test_overview(c):
    c.open("overview")
    c.one("#page-overview", "#page-overview")
    c.one("the overview tiles", "#tiles[data-loaded]")

    def version_shown(d):
        text = d.find_element(By.CSS_SELECTOR, '.tile[data-tile="version"] .tile-value').text.strip()
        return text if text[:1].isdigit() else False

    version = c.until("a version in the version tile", version_shown)
    for tile in ("uptime", "engine", "status", "connections", "cursors", "cache", "disk"):
        check(c.find(f'.tile[data-tile="{tile}"] .tile-value'), f"overview: no {tile} tile")
    for chart in ("chart-ops", "chart-latency", "chart-conns", "chart-journal"):
        c.one(f"the canvas of #{chart}", f"#{chart} canvas")
    check(version in c.driver.find_element(By.ID, "server-info").text,
          "overview: the header does not show the server's version")
    check(not c.error_box(), f"overview: error shown: {c.error_box()}")
    print(f"     version {version}")
    c.finish_page("overview")


def test_queries(c):
    c.open("queries")
    c.one("#shapes-table", "#shapes-table")

    def things_hash(d):
        # Read in one go: the table is redrawn every 5 s.
        rows = d.execute_script(
            "return [...document.querySelectorAll('#shapes-table tr.shape-row')].map((r) => ({"
            "hash: r.dataset.hash, ns: r.querySelector('td.ns').textContent.trim(),"
            "command: r.querySelector('td.command').textContent}));")
        rows = [r for r in rows if r["ns"] == "consoletest.things"]
        best = [r for r in rows if "$gt" in r["command"]]
        return (best or rows or [{"hash": False}])[0]["hash"]

    shape_hash = c.until("a query shape row for consoletest.things (the shapes table polls every 5 s)", things_hash)
    # Sorting by clicking a header keeps the rows.
    before = len(c.find("#shapes-table tr.shape-row"))
    c.driver.find_element(By.CSS_SELECTOR, '#shapes-table th[data-sort="count"]').click()
    c.one("the table sorted by count", '#shapes-table th[data-sort="count"].sorted-desc')
    check(len(c.find("#shapes-table tr.shape-row")) == before, "queries: sorting lost rows")
    check(not c.error_box(), f"queries: error shown: {c.error_box()}")
    c.finish_page("queries")

    def open_shape(d):
        d.find_element(By.CSS_SELECTOR, f'#shapes-table tr.shape-row[data-hash="{shape_hash}"] a.shape-link').click()
        return True

    c.until("a click on the shape's link", open_shape)
    c.one("the query shape page", "#page-shape")
    check(c.driver.current_url.endswith(f"#/queries/{shape_hash}"),
          f"queries: the row links to {c.driver.current_url}, not #/queries/{shape_hash}")
    c.one("the shape's summary", "#page-shape[data-loaded]")
    c.one("the latency histogram's bars", "#shape-histogram .hist-bar")

    def stage_names(d):
        if c.error_box():
            raise TestFailure(f"query shape page: error shown: {c.error_box()}")
        names = [e.text.strip() for e in d.find_elements(By.CSS_SELECTOR, "#plan-tree .plan-node .stage-name")]
        return names or False

    names = c.until("the shape's plan tree", stage_names)
    check("COLLSCAN" in names, f"query shape page: the plan tree's stages are {names}, without COLLSCAN")
    # The hint comes in the same /api/explain answer as the tree: it is drawn by now.
    suggested = check_hint(c, "query shape page", required=True)
    print(f"     shape {shape_hash}: stages {names}, suggested index {suggested}")
    c.finish_page("query-shape")


def check_hint(c, page, required):
    """The index the hint banner suggests, which must be {"x": 1}; None when there is no banner
    and none is required."""
    hints = c.find("#plan-hint .hint-index")
    check(hints or not required, f"{page}: no hint banner with a suggested index (#plan-hint .hint-index)")
    if not hints:
        return None
    suggested = json.loads(hints[0].get_attribute("data-index"))
    check(suggested == {"x": 1}, f"{page}: the hint suggests {suggested}, not {{'x': 1}}")
    return suggested


def test_plan(c):
    c.open("plan")
    c.one("#page-plan", "#page-plan")
    db = c.driver.find_element(By.ID, "plan-db")
    command = c.driver.find_element(By.ID, "plan-command")
    # Invalid JSON is refused in the page, in the error box.
    command.clear()
    command.send_keys('{"find": ')
    c.driver.find_element(By.ID, "plan-explain").click()
    c.until("the error box for invalid JSON", lambda d: "not valid JSON" in c.error_box())

    db.clear()
    db.send_keys("consoletest")
    command.clear()
    command.send_keys(json.dumps({"find": "things", "filter": QUERY}))
    Select(c.driver.find_element(By.ID, "plan-verbosity")).select_by_value("executionStats")
    c.driver.find_element(By.ID, "plan-explain").click()

    def collscan(d):
        if c.error_box():
            raise TestFailure(f"plan page: error shown: {c.error_box()}")
        return (d.find_elements(By.CSS_SELECTOR, '#plan-tree .plan-node[data-stage="COLLSCAN"]') or [False])[0]

    node = c.until("a COLLSCAN node in #plan-tree", collscan)
    check(node.find_element(By.CSS_SELECTOR, ".stage-name").text.strip() == "COLLSCAN", "plan page: stage name")
    examined, returned = stat(node, "docsExamined"), stat(node, "nReturned")
    check(examined == DOCS, f"plan page: COLLSCAN docsExamined is {examined}, not {DOCS}")
    check(returned == QUERY_RETURNS, f"plan page: COLLSCAN nReturned is {returned}, not {QUERY_RETURNS}")
    check(c.find("#rejected-plans"), "plan page: no #rejected-plans column")
    check_hint(c, "plan page", required=False)
    print(f"     COLLSCAN: docsExamined {examined:.0f}, nReturned {returned:.0f}")
    c.finish_page("plan")


def test_operations(c):
    c.open("operations")
    c.one("#page-operations", "#page-operations")
    table = c.one("the operations table", "#ops-table[data-loaded]")
    headers = [th.text.strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    check("opid" in headers and "namespace" in headers, f"operations: table headers {headers}")
    pause = c.driver.find_element(By.ID, "ops-pause")
    pause.click()
    c.until("the pause toggle pressed", lambda d: pause.get_attribute("aria-pressed") == "true")
    pause.click()
    c.until("the pause toggle released", lambda d: pause.get_attribute("aria-pressed") == "false")
    check(not c.error_box(), f"operations: error shown: {c.error_box()}")
    print(f"     {len(c.find('#ops-table tr.op-row'))} active operation(s)")
    c.finish_page("operations")


def test_collections(c):
    c.open("collections")
    c.one("#page-collections", "#page-collections")
    section = '#collections section.database[data-db="consoletest"]'
    row = c.one("the row of consoletest.things", f'{section} tr.collection-row[data-collection="things"]')
    count = numeric(row.find_element(By.CSS_SELECTOR, "td.col-count"))
    check(count == DOCS, f"collections: things has count {count}, not {DOCS}")
    check(c.find(f'{section} tr.collection-indexes[data-collection="things"] tr.index-row[data-index="_id_"]'),
          "collections: things shows no _id_ index")
    check(not c.error_box(), f"collections: error shown: {c.error_box()}")
    c.finish_page("collections")


def test_log(c):
    c.open("log")
    c.one("#page-log", "#page-log")
    c.one("log lines", '#log-table[data-loaded][data-level=""] tr.log-row')
    all_rows = c.driver.execute_script("return document.querySelectorAll('#log-table tr.log-row').length;")
    components = [o.get_attribute("value") for o in c.find("#log-component option")]
    check(len(components) > 1, "log: the component select lists no component")
    at_bottom = c.driver.execute_script(
        "const s = document.getElementById('log-scroll');"
        "return s.scrollHeight <= s.clientHeight || s.scrollTop + s.clientHeight >= s.scrollHeight - 4;")
    check(at_bottom, "log: the table is not scrolled to the newest line")
    Select(c.driver.find_element(By.ID, "log-level")).select_by_value("W")
    c.until("the log filtered to W", lambda d: d.find_element(By.ID, "log-table").get_attribute("data-level") == "W")
    sev = c.driver.execute_script(
        "return [...document.querySelectorAll('#log-table tr.log-row')].map((r) => r.dataset.severity);")
    check(all(s and s[0] in "WEF" for s in sev), f"log: level W shows severities {sorted(set(sev))}")
    check(not c.error_box(), f"log: error shown: {c.error_box()}")
    print(f"     {all_rows} line(s), {len(sev)} at W or worse, components {components[1:]}")
    c.finish_page("log")


# ------------------------------------------------------------------ the operator scenario


def refused_calls(base, before_ms=None):
    """Accepts the browser log entries of base's /api/ calls answered 401, which Chrome logs as
    SEVERE "<url> - Failed to load resource: the server responded with a status of 401
    (Unauthorized)"; with before_ms, only those logged before it (the page's clock, ms)."""
    pattern = re.compile(re.escape(f"{base}/api/") + r"\S* .*\b401\b")

    def allow(entry):
        return (entry.get("level") == "SEVERE" and pattern.match(entry.get("message") or "") is not None
                and (before_ms is None or entry.get("timestamp", before_ms + 1) <= before_ms))

    return allow


def slow_filter(clauses):
    return {"$or": [{"s": {"$regex": "^zz%d.*q+$" % i}} for i in range(clauses)]}


def load_big(port):
    """BIG_DOCS documents in obs.big; returns the number of $or clauses that make a count over
    them last about COUNT_TARGET s, from the time a count with PROBE_CLAUSES took."""
    client = MongoClient("127.0.0.1", port, directConnection=True, appname="console-test",
                         serverSelectionTimeoutMS=10000)
    try:
        big = client.obs.big
        big.insert_many([{"s": "value-%06d" % i} for i in range(BIG_DOCS)])
        start = time.monotonic()
        n = big.count_documents(slow_filter(PROBE_CLAUSES))
        probe = time.monotonic() - start
        check(n == 0, f"obs.big: the probe count matched {n} documents, not 0")
    finally:
        client.close()
    clauses = int(PROBE_CLAUSES * COUNT_TARGET / max(probe, 0.001))
    clauses = min(MAX_CLAUSES, max(MIN_CLAUSES, clauses))
    print(f"     obs.big: {BIG_DOCS} documents; a count with {PROBE_CLAUSES} regexes took {probe:.2f} s:"
          f" the one to stop gets {clauses} (about {probe * clauses / PROBE_CLAUSES:.0f} s)", flush=True)
    return clauses


class SlowCount(threading.Thread):
    """count_documents on obs.big under appName KILL_APP, which the test stops from the page."""

    def __init__(self, port, clauses):
        super().__init__(name="slow-count", daemon=True)
        self.port = port
        self.clauses = clauses
        self.result = None
        self.error = None
        self.seconds = None

    def run(self):
        client = MongoClient("127.0.0.1", self.port, directConnection=True, appname=KILL_APP,
                             retryReads=False, serverSelectionTimeoutMS=10000)
        start = time.monotonic()
        try:
            self.result = client.obs.big.count_documents(slow_filter(self.clauses))
        except Exception as e:  # noqa: BLE001 - checked by the main thread
            self.error = e
        finally:
            self.seconds = time.monotonic() - start
            client.close()

    def outcome(self):
        if self.seconds is None:
            return "is still running"
        if isinstance(self.error, OperationFailure):
            name = (self.error.details or {}).get("codeName")
            return f"failed after {self.seconds:.1f} s with OperationFailure code {self.error.code} ({name})"
        if self.error is not None:
            return f"failed after {self.seconds:.1f} s with {self.error!r}"
        return f"returned {self.result} after {self.seconds:.1f} s"


def submit_token(c, token):
    box = c.driver.find_element(By.ID, "token-input")
    box.clear()
    box.send_keys(token)
    c.driver.find_element(By.ID, "token-submit").click()


def test_token(c, base):
    """The token form on a server with --adminTokenFile: shown on the first 401, back after a
    wrong token saying it was refused, gone with the right one, and the overview loads."""
    c.base = base  # a new origin: its sessionStorage holds no token
    c.open("overview")
    form = c.one("#token-form", "#token-form")
    c.until("the token form to be shown (the API answers 401 without the token)", lambda d: form.is_displayed())
    message = c.driver.find_element(By.ID, "token-message").text
    check("requires the admin token" in message, f"token: the form says {message!r}")
    check(not c.find("#tiles[data-loaded]"), "token: the overview tiles were filled without the token")
    during_token_steps = refused_calls(base)
    accepted = c.check_log("token", during_token_steps)
    c.screenshot("token")

    submit_token(c, "not-" + TOKEN)

    def refused(d):
        text = d.find_element(By.ID, "token-message").text
        return text if form.is_displayed() and "refused" in text else False

    message = c.until("the token form back saying the wrong token was refused", refused)
    forgotten = c.driver.execute_script(f"return sessionStorage.getItem('{TOKEN_KEY}');")
    check(forgotten is None, f"token: the refused token is still kept ({forgotten!r})")
    accepted += c.check_log("token (wrong token)", during_token_steps)

    # From here on no 401 is expected: those logged later than this fail the test.
    submitted = c.driver.execute_script("return Date.now();")
    submit_token(c, TOKEN)
    c.until("the token form hidden after the right token", lambda d: not form.is_displayed())
    c.one("the overview tiles (with the right token)", "#tiles[data-loaded]")

    def version_shown(d):
        if form.is_displayed():
            raise TestFailure("token: the form is back after the right token: "
                              f"{d.find_element(By.ID, 'token-message').text!r}")
        text = d.find_element(By.CSS_SELECTOR, '.tile[data-tile="version"] .tile-value').text.strip()
        return text if text[:1].isdigit() else False

    version = c.until("a version in the version tile", version_shown)
    stored = c.driver.execute_script(f"return sessionStorage.getItem('{TOKEN_KEY}');")
    check(stored == TOKEN, f"token: sessionStorage holds {stored!r}, not the token given")
    check(c.driver.find_element(By.ID, "token-clear").is_displayed(), "token: no 'Forget token' button")
    check(not c.error_box(), f"overview (operator): error shown: {c.error_box()}")
    print(f"     refused token: {message!r}; version {version}; browser log entries"
          f" accepted for 401 answers: {accepted} before the right token", flush=True)
    print(f"ok   token ({os.path.join(c.screenshots, 'token.png')})", flush=True)
    c.finish_page("overview-operator", refused_calls(base, before_ms=submitted))


def test_kill(c, server, clauses):
    """Stops a long count from the operations page, as an operator: Kill, then Confirm kill."""
    count = SlowCount(server.port, clauses)
    count.start()
    c.open("operations")
    c.one("#page-operations", "#page-operations")
    c.one("the operations table", "#ops-table[data-loaded]")

    def big_row(d):
        if not count.is_alive():
            raise TestFailure(f"operations: the count on obs.big {count.outcome()}, before the page showed it "
                              f"(it should have lasted about {COUNT_TARGET} s)")
        if c.error_box():
            raise TestFailure(f"operations (operator): error shown: {c.error_box()}")
        # Read in one go: the table is redrawn every 2 s. The appName cell is the 6th.
        rows = d.execute_script(
            "return [...document.querySelectorAll('#ops-table tr.op-row')].map((r) => ({"
            "opid: r.dataset.opid, ns: r.querySelector('td.ns').textContent.trim(),"
            "app: r.children[5].textContent.trim()}));")
        return next((r for r in rows if r["ns"] == "obs.big" and r["app"] == KILL_APP), False)

    row = c.until(f"a row for the count on obs.big (appName {KILL_APP}; the table polls every 2 s)", big_row)
    opid = row["opid"]
    button = f'#ops-table tr.op-row[data-opid="{opid}"] button.kill-op'
    kill = c.one(f"the Kill button in the row of operation {opid} (this session holds the token: an operator)",
                 button)
    check(kill.text.strip() == "Kill", f"operations: the row's button says {kill.text!r}, not 'Kill'")
    c.screenshot("operations-operator")
    c.click("a click on Kill", button)
    c.one("the button turned into 'Confirm kill'", f"{button}.confirm")
    label = c.until("the confirm button's label", lambda d: d.find_element(By.CSS_SELECTOR, f"{button}.confirm").text)
    check(label.strip() == "Confirm kill", f"operations: after a click on Kill the button says {label!r}")
    check(count.is_alive(), f"operations: the count on obs.big {count.outcome()}, before Confirm kill")
    c.click("a click on Confirm kill", f"{button}.confirm")

    def answered(d):
        el = d.find_element(By.ID, "killop-result")
        classes = (el.get_attribute("class") or "").split()
        return (classes, el.text) if el.is_displayed() and ("ok" in classes or "failed" in classes) else False

    classes, text = c.until("the answer to killOp in #killop-result", answered)
    check("ok" in classes and f"killOp {opid}:" in text and '"ok": 1' in text,
          f"operations: #killop-result (class {' '.join(classes)}) says {text!r}, not a success")
    count.join(WAIT)
    check(not count.is_alive(), f"operations: the count on obs.big still runs {WAIT} s after killOp answered ok")
    code = getattr(count.error, "code", None)
    check(code == 11601,
          f"operations: the count on obs.big {count.outcome()}, not failed with code 11601 (Interrupted)")
    c.until(f"the row of the killed operation {opid} to go away",
            lambda d: not d.find_elements(By.CSS_SELECTOR, f'#ops-table tr.op-row[data-opid="{opid}"]'))
    check(not c.error_box(), f"operations (operator): error shown: {c.error_box()}")
    c.check_log("operations-operator")
    print(f"     killed operation {opid}: {text!r}; the count {count.outcome()}")
    print(f"ok   operations-operator ({os.path.join(c.screenshots, 'operations-operator.png')})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("monarchd", help="the monarchd binary")
    ap.add_argument("--screenshots", default=os.environ.get("CONSOLE_SCREENSHOTS", "target/console-screenshots"))
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    binary = os.path.abspath(args.monarchd)
    if not os.access(binary, os.X_OK):
        print(f"console test: {binary} is not an executable", file=sys.stderr)
        return 2
    os.makedirs(args.screenshots, exist_ok=True)

    root = tempfile.mkdtemp(prefix="monarch-console-")
    server = Server(binary, root)
    operator_server = None
    load = None
    console = None
    page = "setup"
    try:
        server.start()
        load_data(server.port)
        load = BackgroundLoad(server.port)
        load.start()
        console = Console(f"http://127.0.0.1:{server.admin_port}", args.screenshots, args.chromium, args.chromedriver)
        for page, test in (("overview", test_overview), ("queries", test_queries), ("plan", test_plan),
                           ("operations", test_operations), ("collections", test_collections), ("log", test_log)):
            test(console)
        page = "teardown"
        load.stop()
        check(load.error is None, f"the background load failed: {load.error!r}")
        check(load.ops > 0, "the background load did nothing")

        page = "operator"
        operator_root = os.path.join(root, "operator")
        os.mkdir(operator_root)
        token_file = os.path.join(operator_root, "admin-token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(TOKEN + "\n")
        operator_server = Server(binary, operator_root, ["--adminTokenFile", token_file])
        operator_server.start()
        page = "token"
        test_token(console, f"http://127.0.0.1:{operator_server.admin_port}")
        page = "operations-operator"
        test_kill(console, operator_server, load_big(operator_server.port))
        print(f"PASS: console test ({load.ops} background operations; screenshots in {args.screenshots})")
        return 0
    except Exception as e:  # noqa: BLE001 - every failure is reported alike
        kind = "" if isinstance(e, TestFailure) else f"{type(e).__name__}: "
        print(f"\nFAIL: console test, at {page}: {kind}{e}", file=sys.stderr)
        if not isinstance(e, TestFailure):
            traceback.print_exc()
        if console is not None:
            try:
                path = os.path.join(args.screenshots, f"failure-{page}.png")
                console.driver.save_screenshot(path)
                print(f"screenshot: {path}", file=sys.stderr)
                for entry in console.driver.get_log("browser"):
                    print(f"browser: {entry.get('level')} {entry.get('message')}", file=sys.stderr)
            except Exception:  # noqa: BLE001 - the browser may be gone
                pass
        print(f"--- the server's log, last lines:\n{tail(server.log_path)}", file=sys.stderr)
        if operator_server is not None:
            print(f"--- the token server's log (--adminTokenFile), last lines:\n{tail(operator_server.log_path)}",
                  file=sys.stderr)
        return 1
    finally:
        if console is not None:
            try:
                console.quit()
            except Exception:  # noqa: BLE001
                pass
        if load is not None and load.is_alive():
            load.stop()
        if operator_server is not None:
            operator_server.stop()
            shutil.rmtree(operator_server.dbpath, ignore_errors=True)
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
