"""PASS/FAIL lines for the Python e2e tests, counted for their final `N passed, M failed`."""

import shutil
import time


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def record(self, label, problems):
        """Passes when `problems` (strings; None and "" are ignored) is empty."""
        problems = [p for p in problems if p]
        if problems:
            self.failed += 1
            print(f"FAIL  {label}: " + "; ".join(problems), flush=True)
        else:
            self.passed += 1
            print(f"PASS  {label}", flush=True)
        return not problems

    def check(self, label, condition, detail=""):
        return self.record(label, [] if condition else [detail or "condition is false"])

    def equal(self, label, actual, expected, detail=""):
        return self.check(f"{label} == {expected!r}", actual == expected,
                          f"got {actual!r}" + (f"; {detail}" if detail else ""))

    def finish(self, workdir=None):
        """Prints the totals; removes workdir when all passed, else keeps it and says where.
        Returns the exit status."""
        if workdir is not None:
            if self.failed == 0:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                print(f"      logs and data are kept in {workdir}", flush=True)
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1

    @staticmethod
    def skip(label, reason):
        print(f"SKIP  {label}: {reason}", flush=True)


def wait_for(condition, timeout, interval=0.2):
    """condition()'s first truthy result within timeout seconds, else its last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    return condition()
