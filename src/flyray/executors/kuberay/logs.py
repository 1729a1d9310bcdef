"""The log of a RayJob's submitter pod: streamed live, and kept whole for the run store.

In K8sJobMode the operator runs a Kubernetes Job named after the RayJob whose pod submits the
Ray job and then follows its logs (``ray job logs --follow``), so that pod's log is the job's
driver output. A background thread follows each submitter pod as it appears (a retry, or the
Job's own backoff, makes new ones) and hands new text to ``on_log``. ``collect`` then reads
every pod's log once more in full, so the stored log has no gaps even if a stream dropped.
"""

from __future__ import annotations

import codecs
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from flyray.errors import FlyrayError
from flyray.executors.kuberay.session import KubeSession

__all__ = ["SubmitterLogs"]

LOOK_AGAIN_S = 1.0  # how often the thread looks for a new submitter pod when not nudged
FOLLOW_READ_TIMEOUT_S = 300.0  # a log stream silent this long is reopened
_CHUNK = 65536
_WAITING_PHASES = ("Pending", "Unknown", None)
_ENDED_PHASES = ("Succeeded", "Failed")
_STARTING = ("ContainerCreating", "PodInitializing")  # waiting reasons of a normal start


class SubmitterLogs:
    """Follows the submitter pods of one RayJob in a daemon thread (start, finish, collect)."""

    def __init__(
        self,
        session: KubeSession,
        name: str,
        on_log: Callable[[str], None] | None,
        on_waiting: Callable[[str], None] | None = None,
    ) -> None:
        """``on_waiting`` hears once of each reason a pod's container waits for, such as a
        missing Secret (``CreateContainerConfigError``) or an image that cannot be pulled."""
        self.session, self.name, self.on_log, self.on_waiting = session, name, on_log, on_waiting
        self._waits: set[tuple[str, str]] = set()
        self._texts: dict[str, str] = {}  # pod name -> its log so far, in the order first seen
        self._ended: set[str] = set()  # pods whose log is complete
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._finishing = threading.Event()
        self._stopped = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"flyray-logs-{name}", daemon=True)

    def start(self) -> None:
        """Start following in the background (again: a no-op)."""
        if not self._thread.is_alive() and not self._stopped.is_set():
            with contextlib.suppress(RuntimeError):  # started and ended already
                self._thread.start()

    def nudge(self) -> None:
        """Look for new submitter pods now (the RayJob changed)."""
        self._wake.set()

    def finish(self, *, grace: float) -> None:
        """Let the thread read the pods' logs to their end for up to ``grace`` s, then stop it."""
        self._finishing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(grace)
        self.stop()

    def stop(self) -> None:
        """Stop following now (a blocked read is cut off)."""
        self._stopped.set()
        self._wake.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def collect(self) -> str:
        """Every submitter pod's whole log (pods already gone: what was streamed from them).

        Text the live stream missed is passed to ``on_log`` too.
        """
        with contextlib.suppress(FlyrayError):
            for pod in self.session.job_pods(self.name):
                self._texts.setdefault(pod.metadata.name, "")
        with self._lock:
            pods = list(self._texts)
        for pod in pods:
            try:
                full = self.session.pod_log(pod)
            except FlyrayError:
                continue  # gone with its Job (a retry): keep what was streamed
            with self._lock:
                seen = self._texts[pod]
                if len(full) >= len(seen):
                    self._texts[pod] = full
            if full.startswith(seen) and len(full) > len(seen) and self.on_log is not None:
                self.on_log(full[len(seen) :])
        with self._lock:
            texts = dict(self._texts)
        if len(texts) <= 1:
            return next(iter(texts.values()), "")
        return "".join(
            f"--- submitter pod {pod} ---\n{text}{'' if text.endswith(chr(10)) else chr(10)}"
            for pod, text in texts.items()
        )

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopped.is_set():
            pod = self._next_pod()
            if pod is not None and self._follow(pod):
                continue
            if pod is None and self._finishing.is_set():
                return
            self._wake.wait(LOOK_AGAIN_S)
            self._wake.clear()

    def _next_pod(self) -> str | None:
        """The oldest submitter pod whose log is not complete yet and can be read."""
        try:
            pods = self.session.job_pods(self.name)
        except FlyrayError:
            return None
        for pod in pods:
            name, phase = pod.metadata.name, getattr(pod.status, "phase", None)
            self._tell_waiting(pod)
            with self._lock:
                self._texts.setdefault(name, "")
                if name in self._ended:
                    continue
            if phase not in _WAITING_PHASES:
                return name
        return None

    def _tell_waiting(self, pod: Any) -> None:
        """Report why a pending pod's container waits, when it is not the usual start-up."""
        if self.on_waiting is None:
            return
        for status in getattr(pod.status, "container_statuses", None) or []:
            waiting = getattr(status.state, "waiting", None) if status.state else None
            reason = getattr(waiting, "reason", None)
            if not reason or reason in _STARTING or (pod.metadata.name, reason) in self._waits:
                continue
            self._waits.add((pod.metadata.name, reason))
            detail = f": {waiting.message}" if waiting.message else ""
            self.on_waiting(f"pod {pod.metadata.name} waits: {reason}{detail}")

    def _follow(self, pod: str) -> bool:
        """Stream ``pod``'s log until it ends; True if it gave text or the pod has finished."""
        with self._lock:
            before = len(self._texts.get(pod, ""))
        try:
            response = self.session.follow_pod_log(pod, read_timeout=FOLLOW_READ_TIMEOUT_S)
        except FlyrayError:
            return self._end_if_finished(pod)
        self._response = response
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with self._lock:
            skip = len(self._texts.get(pod, ""))  # a reopened stream starts from the beginning
        try:
            while not self._stopped.is_set():
                data = response.read1(_CHUNK)
                if not data:
                    break
                skip = self._add(pod, decoder.decode(data), skip)
            self._add(pod, decoder.decode(b"", final=True), skip)
        except Exception:  # a dropped or cut-off stream: reopened, or read in full at the end
            pass
        finally:
            self._response = None
            with contextlib.suppress(Exception):
                response.release_conn()
        ended = self._end_if_finished(pod)
        with self._lock:
            return ended or len(self._texts.get(pod, "")) > before

    def _add(self, pod: str, text: str, skip: int) -> int:
        """Append the part of ``text`` not seen before; returns how much is left to skip."""
        if skip >= len(text):
            return skip - len(text)
        new = text[skip:]
        with self._lock:
            self._texts[pod] = self._texts.get(pod, "") + new
        if self.on_log is not None:
            self.on_log(new)
        return 0

    def _end_if_finished(self, pod: str) -> bool:
        """Mark ``pod``'s log complete if the pod has ended (or is gone); True if so."""
        try:
            phase = self.session.pod_phase(pod) or "Gone"
        except FlyrayError:
            phase = "Unknown"
        if phase in (*_ENDED_PHASES, "Gone") or self._finishing.is_set():
            with self._lock:
                self._ended.add(pod)
            return True
        return False
