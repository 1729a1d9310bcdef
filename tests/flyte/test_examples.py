"""examples/flyte/: each program runs under flyray and, with its imports changed back, under flyte.

Both runs must print the same lines, except the few listed in ``ALLOWED_DIFFERENCES``: where
Flyte's local mode ignores ``env_vars`` or ``runtime_env``, flyray gives what Flyte gives on a
cluster, and that line of flyray's output is asserted instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.procs import wait_until_gone

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "flyte"
TIMEOUT = 240  # seconds per program; Ray starts in each

# example -> {line number in stdout: what flyray prints there}. Flyte's local mode prints
# something else on these lines because it ignores the setting; the value here is what Flyte
# prints on a cluster, where the setting applies.
ALLOWED_DIFFERENCES: dict[str, dict[int, str]] = {
    # TaskEnvironment(env_vars=...) reaches the Ray workers on a cluster; Flyte's local mode
    # prints ActionOutputs(o0="unset") and unset.
    "env_vars_secrets": {1: 'ActionOutputs(o0="hello")', 2: "hello"},
    # RayJobConfig(runtime_env={"env_vars": ...}) applies on a cluster; Flyte's local mode calls
    # ray.init() without it and prints "unset" twice.
    "runtime_env": {0: "ActionOutputs(o0=['small', 'small'])", 1: "['small', 'small']"},
}


def to_flyte(source: str) -> str:
    """The program with flyray's imports changed back to Flyte's (the three renames of issue 15)."""
    source = re.sub(r"\bflyray\.plugins\.ray\b", "flyteplugins.ray", source)
    return re.sub(r"\bflyray\b", "flyte", source)  # import flyray, flyray.X, flyray.errors


def example_names() -> list[str]:
    return sorted(path.stem for path in EXAMPLES.glob("*.py"))


def start_program(path: Path, ray_tmpdir: str) -> subprocess.Popen[str]:
    """Start ``path`` with this interpreter in its own session (its own Ray temp dir)."""
    env = {
        **os.environ,
        "RAY_TMPDIR": ray_tmpdir,
        "PYTHONPATH": str(ROOT / "src"),
        # Flyte's rich log handler writes to stdout; its plain handler writes to stderr.
        "DISABLE_RICH_LOGGING": "1",
    }
    return subprocess.Popen(
        [sys.executable, str(path)],
        cwd=path.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish_program(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a started program; end whatever Ray it leaves behind."""
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        _end_group(process)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _end_group(process: subprocess.Popen[str]) -> None:
    """TERM, then KILL, the process group the program started (Ray's agents ignore TERM)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if sig == signal.SIGTERM:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
    process.wait()


@pytest.fixture
def private_tmp():
    """A short private directory for the two programs' Ray temp dirs and the Flyte copy."""
    path = tempfile.mkdtemp(prefix="frc-")  # short: Ray's unix socket paths must fit 107 bytes
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def test_to_flyte_changes_only_the_imports():
    source = (
        "import flyray\n"
        "import flyray.errors\n"
        "from flyray.plugins.ray import RayJobConfig\n"
        "from flyray.plugins.ray.task import HeadNodeConfig\n"
        "env = flyray.TaskEnvironment(name='x', resources=flyray.Resources(cpu=1))\n"
        "except flyray.errors.RuntimeUserError:\n"
        "flyrays = 1  # a name that only starts like the module stays\n"
    )
    assert to_flyte(source) == (
        "import flyte\n"
        "import flyte.errors\n"
        "from flyteplugins.ray import RayJobConfig\n"
        "from flyteplugins.ray.task import HeadNodeConfig\n"
        "env = flyte.TaskEnvironment(name='x', resources=flyte.Resources(cpu=1))\n"
        "except flyte.errors.RuntimeUserError:\n"
        "flyrays = 1  # a name that only starts like the module stays\n"
    )


def test_every_example_imports_flyray_and_no_flyte():
    for name in example_names():
        source = (EXAMPLES / f"{name}.py").read_text()
        assert "import flyray" in source, name
        assert not re.search(r"\bflyte(plugins)?\b", source.split('"""', 2)[2]), name


def test_allowed_differences_name_existing_examples():
    assert set(ALLOWED_DIFFERENCES) <= set(example_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", example_names())
def test_example_prints_what_flyte_prints(name, private_tmp):
    pytest.importorskip("flyte", reason="the real flyte is installed by the 'flyte' extra")
    pytest.importorskip("flyteplugins.ray", reason="flyteplugins-ray comes with the 'flyte' extra")
    original = EXAMPLES / f"{name}.py"
    flyte_copy = private_tmp / "flyte" / original.name
    flyte_copy.parent.mkdir()
    flyte_copy.write_text(to_flyte(original.read_text()))
    (private_tmp / "r1").mkdir()
    (private_tmp / "r2").mkdir()

    # Both at once: each starts its own Ray, and the two waits overlap.
    started = [
        start_program(original, str(private_tmp / "r1")),
        start_program(flyte_copy, str(private_tmp / "r2")),
    ]
    try:
        flyray_run = finish_program(started[0])
    finally:
        flyte_run = finish_program(started[1])

    assert flyte_run.returncode == 0, f"flyte failed on {name}:\n{flyte_run.stderr[-3000:]}"
    assert flyray_run.returncode == 0, f"flyray failed on {name}:\n{flyray_run.stderr[-3000:]}"
    ours, theirs = flyray_run.stdout.splitlines(), flyte_run.stdout.splitlines()
    assert len(ours) == len(theirs), (ours, theirs)
    allowed = ALLOWED_DIFFERENCES.get(name, {})
    for i, (line, flyte_line) in enumerate(zip(ours, theirs, strict=True)):
        assert line == allowed.get(i, flyte_line), f"line {i}: flyte printed {flyte_line!r}"
    assert wait_until_gone(str(private_tmp)) == [], "a Ray process outlived its program"
