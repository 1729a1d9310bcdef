"""The CLI as a thin adapter: parsing, help, exit codes, printing (plain tasks, no Ray)."""

import json
import textwrap

import pytest
from click.testing import CliRunner

import flyray
from flyray.cli.main import cli

TASKS = textwrap.dedent(
    '''
    import flyray

    env = flyray.TaskEnvironment("cli_env")


    @env.task
    def combine(count: int, ratio: float, label: str, flag: bool, items: list, opts: dict,
                batch_size: int = 4) -> dict:
        """Echo the parsed parameters back."""
        return {"count": count, "ratio": ratio, "label": label, "flag": flag,
                "items": items, "opts": opts, "batch_size": batch_size}


    @env.task
    async def greet(name: str = "world") -> str:
        return f"hello {name}"


    @env.task
    def explode(code: int) -> None:
        raise RuntimeError(f"exploded with {code}")
    '''
)


@pytest.fixture
def tasks_file(tmp_path):
    path = tmp_path / "cli_tasks.py"
    path.write_text(TASKS)
    return str(path)


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and flyray.__version__ in result.output


def test_run_help_and_task_list(tasks_file):
    assert "FILE TASK" in invoke("run", "--help").output
    listing = invoke("run", tasks_file, "--help").output
    assert "combine" in listing and "greet" in listing and "explode" in listing


def test_task_help_lists_parameters(tasks_file):
    help_text = invoke("run", tasks_file, "combine", "--help").output
    for option in ("--count", "--ratio", "--label", "--flag", "--items", "--opts", "--batch-size"):
        assert option in help_text
    assert "Echo the parsed parameters back." in help_text


def test_parameters_are_parsed_from_the_signature(tasks_file):
    result = invoke(
        "run", tasks_file, "combine",
        "--count", "3", "--ratio", "0.5", "--label", "x", "--flag", "true",
        "--items", "[1, 2]", "--opts", '{"a": 1}', "--batch_size", "8",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "count": 3, "ratio": 0.5, "label": "x", "flag": True,
        "items": [1, 2], "opts": {"a": 1}, "batch_size": 8,
    }  # fmt: skip


def test_async_task_and_default(tasks_file):
    result = invoke("run", tasks_file, "greet")
    assert result.exit_code == 0 and result.stdout == "hello world\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["combine", "--count", "x"], "'x' is not a valid integer"),
        (["combine", "--count", "1"], "Missing option '--ratio'"),
        (["combine", "--items", "{"], "is not valid JSON"),
        (["greet", "--nope", "1"], "No such option '--nope'"),
        (["missing_task"], "'missing_task' is not a task"),
    ],
)
def test_usage_errors_exit_2(tasks_file, args, message):
    result = invoke("run", tasks_file, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_missing_file_and_unknown_mode(tmp_path):
    result = invoke("run", str(tmp_path / "nope.py"), "t")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = invoke("run", "--mode", "elsewhere", str(tmp_path / "nope.py"), "t")
    assert (
        result.exit_code == 2
        and "'elsewhere' is not one of 'local', 'local-cluster'" in result.output
    )


def test_run_options_may_follow_the_task(tasks_file, tmp_path):
    store = str(tmp_path / "store")
    result = invoke(
        "run", tasks_file, "greet", "--name", "x", "--mode", "local", "--run-store", store
    )
    assert result.exit_code == 0 and result.stdout == "hello x\n"
    result = invoke("run", tasks_file, "--mode", "elsewhere", "greet")
    assert result.exit_code == 2 and "'elsewhere' is not one of 'local'" in result.output


def test_failing_task_exits_1_with_its_traceback(tasks_file):
    result = invoke("run", tasks_file, "explode", "--code", "7")
    assert result.exit_code == 1
    assert "Task cli_env.explode failed: RuntimeError: exploded with 7" in result.stderr
    assert 'raise RuntimeError(f"exploded with {code}")' in result.stderr
    assert "flyray/task/base.py" not in result.stderr, "flyray's own frames are noise here"
