"""A tiny real HTTP server that answers like a Ray dashboard, or fails like a broken one.

Ray's own ``JobSubmissionClient`` talks to it over a real socket, so the errors flyray
translates are the ones Ray raises. ``FakeDashboard(ray_version=..., jobs=..., fail=...)``:
``/api/version`` answers ``ray_version``; ``/api/jobs/<id>`` answers ``jobs[id]`` (a
``JobStatus`` name) or 404 as Ray does; ``fail`` maps a path prefix to a status code answered
instead (e.g. ``{"/api/jobs/": 500}``). ``requests`` lists the paths asked, with whether an
Authorization header came along.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeDashboard:
    """A Ray dashboard's Jobs API on 127.0.0.1, in a thread; a context manager."""

    ray_version: str = ""
    jobs: dict[str, str] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.ray_version:
            from flyray.config.ray_images import ray_version

            self.ray_version = ray_version()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeDashboard:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def answer(self, path: str) -> tuple[int, object]:
        """The status and JSON body for a GET or POST of ``path``."""
        for prefix, status in self.fail.items():
            if path.startswith(prefix):
                return status, {"error": f"injected {status}"}
        if path == "/api/version":
            return 200, {"version": "4", "ray_version": self.ray_version, "ray_commit": "x"}
        if path.startswith("/api/jobs/"):
            job, _, rest = path[len("/api/jobs/") :].partition("/")
            if job not in self.jobs:
                return 404, f"Job {job} does not exist."
            if rest == "logs":
                return 200, {"logs": f"log of {job}\n"}
            return 200, {
                "type": "SUBMISSION",
                "submission_id": job,
                "status": self.jobs[job],
                "entrypoint": "python -m flyray.entrypoint",
            }
        return 404, "Not Found"


def _handler(dashboard: FakeDashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            dashboard.requests.append((self.path, "Authorization" in self.headers))
            status, body = dashboard.answer(self.path)
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads ``requests`` instead."""

    return Handler
