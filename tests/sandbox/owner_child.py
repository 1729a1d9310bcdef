"""A session owner for the watchdog tests: records two process groups, then waits to die.

Run as ``python -m tests.sandbox.owner_child FOLDER``; prints the group ids on one line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from flyray.sandbox.owner import Owner
from flyray.sandbox.process import ManagedProcess
from flyray.sandbox.watchdog import Watchdog

SLEEPER = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"


def main(folder: Path) -> None:
    owner = Owner(folder).claim()
    Watchdog(folder).start()
    pgids = []
    for name in ("first", "second"):  # each leads a group holding a grandchild too
        process = ManagedProcess(name, [sys.executable, "-c", SLEEPER], folder / f"{name}.log")
        owner.record_group(process.popen.pid, name)
        pgids.append(process.popen.pid)
    print(" ".join(map(str, pgids)), flush=True)
    time.sleep(300)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
