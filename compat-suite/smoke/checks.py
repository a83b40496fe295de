"""One "ok - ..." / "not ok - ..." line per check, and the exit status the run script reads."""

import sys


class Checks:
    """Prints each check under a label and remembers whether any failed."""

    def __init__(self, label):
        self.label = label
        self.failures = 0

    def check(self, what, condition, detail=""):
        if condition:
            print(f"ok - {self.label}: {what}")
        else:
            self.failures += 1
            print(f"not ok - {self.label}: {what} {detail}")

    def exit(self):
        sys.exit(1 if self.failures else 0)
