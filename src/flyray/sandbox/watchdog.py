"""A process that outlives its owner only long enough to remove what the owner started.

The owner starts it with a pipe on its stdin and keeps the write end; the kernel closes that
end however the owner ends (exit, SIGTERM, SIGKILL, a CI timeout). End of input is the signal:
the watchdog then cleans the owner's folder by its records (``owner.clean``). It runs in a
session of its own, so a signal sent to the owner's process group does not reach it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from flyray.sandbox.owner import clean

__all__ = ["Watchdog"]

RELEASE_TIMEOUT_S = 60.0


class Watchdog:
    """The watchdog of one session folder; ``release()`` when the owner cleaned up itself."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self._pipe = -1

    def start(self) -> Watchdog:
        """Start ``python -m flyray.sandbox.watchdog FOLDER`` holding the read end of a pipe."""
        read_end, self._pipe = os.pipe()  # both non-inheritable: no other child holds them
        try:
            with (self.folder / "watchdog.log").open("ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "flyray.sandbox.watchdog", str(self.folder)],
                    stdin=read_end,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        finally:
            os.close(read_end)
        return self

    def release(self, timeout: float = RELEASE_TIMEOUT_S) -> None:
        """Close the pipe: the watchdog removes whatever is still recorded, then exits."""
        if self._pipe >= 0:
            os.close(self._pipe)
            self._pipe = -1
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main(argv: list[str]) -> int:
    """Wait for the end of stdin, then clean the folder named by ``argv[1]``."""
    folder = Path(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the owner
    while os.read(0, 4096):
        pass
    clean(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
