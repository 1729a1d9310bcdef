"""runtime_env validation: one table, judged by flyray and by Ray 2.60's own ``RuntimeEnv``.

Ray is the oracle: every case that Ray accepts flyray accepts, and every case Ray refuses
flyray refuses, except the few rows marked ``STRICTER`` (Ray lets them through and fails
later, or never looks). When Ray's rules change, a row here fails and shows the drift.
Files (requirements, conda YAML, working_dir) live in a temporary folder that is the current
directory, where Ray reads them.
"""

from __future__ import annotations

import warnings

import pytest

from flyray import ConfigError
from flyray.plugins.ray import RayJobConfig
from flyray.plugins.ray.runtime_env import check_runtime_env, resolve_runtime_env
from flyray.warn import FlyrayWarning

OK, BAD, STRICTER = "accepted", "refused", "refused by flyray only"

CASES = [
    # (id, runtime_env, flyray's verdict, the field its error names)
    ("pip list", {"pip": ["humanize", "pyjokes==0.6.0"]}, OK, None),
    ("pip empty list", {"pip": []}, OK, None),
    ("pip none", {"pip": None}, OK, None),
    ("pip requirements file", {"pip": "requirements.txt"}, OK, None),
    ("pip missing file", {"pip": "missing.txt"}, BAD, "runtime_env['pip']"),
    ("pip int", {"pip": 5}, BAD, "runtime_env['pip']"),
    ("pip list of int", {"pip": ["a", 1]}, BAD, "runtime_env['pip'][1]"),
    ("pip dict", {"pip": {"packages": ["humanize"], "pip_check": False}}, OK, None),
    (
        "pip dict full",
        {
            "pip": {
                "packages": ["humanize"],
                "pip_check": True,
                "pip_version": "==24.0",
                "pip_install_options": ["--no-cache-dir"],
            }
        },
        OK,
        None,
    ),
    ("pip dict packages file", {"pip": {"packages": "requirements.txt"}}, OK, None),
    (
        "pip dict packages missing file",
        {"pip": {"packages": "missing.txt"}},
        BAD,
        "runtime_env['pip']['packages']",
    ),
    ("pip dict no packages", {"pip": {"pip_check": True}}, BAD, "runtime_env['pip']"),
    ("pip dict unknown key", {"pip": {"packages": [], "index": "x"}}, BAD, "runtime_env['pip']"),
    (
        "pip_check not bool",
        {"pip": {"packages": ["a"], "pip_check": "yes"}},
        BAD,
        "runtime_env['pip']['pip_check']",
    ),
    (
        "pip_version not str",
        {"pip": {"packages": ["a"], "pip_version": 24}},
        BAD,
        "runtime_env['pip']['pip_version']",
    ),
    (
        "pip_install_options not list",
        {"pip": {"packages": ["a"], "pip_install_options": "--pre"}},
        BAD,
        "runtime_env['pip']['pip_install_options']",
    ),
    (
        "pip_install_options item",
        {"pip": {"packages": ["a"], "pip_install_options": ["--pre", 3]}},
        BAD,
        "runtime_env['pip']['pip_install_options'][1]",
    ),
    ("pip packages int", {"pip": {"packages": 3}}, BAD, "runtime_env['pip']['packages']"),
    (
        "pip packages items not str",
        {"pip": {"packages": ["a", 3]}},
        STRICTER,  # Ray writes 3 into requirements.txt and leaves pip to fail on the node
        "runtime_env['pip']['packages'][1]",
    ),
    ("uv list", {"uv": ["humanize"]}, OK, None),
    ("uv requirements file", {"uv": "requirements.txt"}, OK, None),
    ("uv missing file", {"uv": "missing.txt"}, BAD, "runtime_env['uv']"),
    (
        "uv dict",
        {
            "uv": {
                "packages": ["humanize"],
                "uv_check": False,
                "uv_version": "==0.5",
                "uv_pip_install_options": ["--no-cache"],
            }
        },
        OK,
        None,
    ),
    ("uv dict packages file", {"uv": {"packages": "requirements.txt"}}, BAD, "uv']['packages']"),
    ("uv dict pip key", {"uv": {"packages": ["a"], "pip_check": True}}, BAD, "runtime_env['uv']"),
    ("uv dict no packages", {"uv": {"uv_check": True}}, BAD, "runtime_env['uv']"),
    ("uv_check not bool", {"uv": {"packages": [], "uv_check": 1}}, BAD, "['uv']['uv_check']"),
    ("uv packages item", {"uv": {"packages": ["a", None]}}, BAD, "['uv']['packages'][1]"),
    ("uv int", {"uv": 5}, BAD, "runtime_env['uv']"),
    ("conda dict", {"conda": {"dependencies": ["pip", {"pip": ["humanize"]}]}}, OK, None),
    ("conda env name", {"conda": "myenv"}, OK, None),
    ("conda yaml", {"conda": "environment.yaml"}, OK, None),
    ("conda missing yaml", {"conda": "missing.yml"}, BAD, "runtime_env['conda']"),
    ("conda missing abs dir", {"conda": "/no/such/conda/env"}, BAD, "runtime_env['conda']"),
    ("conda list", {"conda": ["numpy"]}, BAD, "runtime_env['conda']"),
    ("pip with conda", {"pip": ["a"], "conda": "myenv"}, BAD, "runtime_env"),
    ("uv with pip", {"pip": ["a"], "uv": ["a"]}, BAD, "runtime_env"),
    ("uv with conda", {"uv": ["a"], "conda": {"dependencies": []}}, BAD, "runtime_env"),
    ("pip none with conda", {"pip": None, "conda": "myenv"}, OK, None),
    ("env_vars", {"env_vars": {"A": "1"}}, OK, None),
    ("env_vars empty", {"env_vars": {}}, OK, None),
    ("env_vars int value", {"env_vars": {"A": 1}}, BAD, "runtime_env['env_vars']['A']"),
    ("env_vars list", {"env_vars": ["A=1"]}, BAD, "runtime_env['env_vars']"),
    ("env_vars empty list", {"env_vars": []}, STRICTER, "runtime_env['env_vars']"),
    ("working_dir folder", {"working_dir": "project"}, OK, None),
    ("working_dir missing", {"working_dir": "nowhere"}, BAD, "runtime_env['working_dir']"),
    ("working_dir zip uri", {"working_dir": "s3://bucket/code.zip"}, OK, None),
    ("working_dir uri not zip", {"working_dir": "s3://bucket/code"}, BAD, "['working_dir']"),
    ("working_dir bad scheme", {"working_dir": "ftp://h/code.zip"}, BAD, "['working_dir']"),
    ("working_dir list", {"working_dir": ["."]}, BAD, "runtime_env['working_dir']"),
    ("py_modules", {"py_modules": ["project", "s3://b/m.whl"]}, OK, None),
    ("py_modules str", {"py_modules": "project"}, BAD, "runtime_env['py_modules']"),
    ("py_modules item", {"py_modules": ["project", 3]}, BAD, "runtime_env['py_modules'][1]"),
    ("py_modules missing", {"py_modules": ["nowhere"]}, BAD, "runtime_env['py_modules'][0]"),
    ("excludes", {"excludes": ["*.csv", "data/"]}, OK, None),
    ("excludes empty", {"excludes": []}, OK, None),
    ("excludes str", {"excludes": "*.csv"}, BAD, "runtime_env['excludes']"),
    ("excludes item", {"excludes": ["a", 1]}, BAD, "runtime_env['excludes'][1]"),
    ("config", {"config": {"setup_timeout_seconds": 60, "eager_install": False}}, OK, None),
    ("config timeout zero", {"config": {"setup_timeout_seconds": 0}}, BAD, "timeout_seconds']"),
    ("config list", {"config": [1]}, BAD, "runtime_env['config']"),
    ("unknown key", {"my_plugin": {"x": 1}}, OK, None),
]


@pytest.fixture
def files(tmp_path, monkeypatch):
    """The current directory holds a requirements file, a conda file and a project folder."""
    (tmp_path / "requirements.txt").write_text("humanize\npyjokes\n")
    (tmp_path / "environment.yaml").write_text("dependencies:\n  - pip\n")
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _ray_accepts(env: dict) -> bool:
    from ray.runtime_env import RuntimeEnv

    try:
        RuntimeEnv(**env)
    except (TypeError, ValueError):
        return False
    return True


def _flyray(env: dict) -> ConfigError | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FlyrayWarning)
        try:
            resolve_runtime_env(env)
        except ConfigError as exc:
            return exc
    return None


@pytest.mark.parametrize(
    ("env", "verdict", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_flyray_and_ray_agree(files, env, verdict, field):
    error = _flyray(env)
    assert (error is None) == (verdict == OK), error
    assert _ray_accepts(env) == (verdict != BAD), "Ray's verdict changed: update the table"
    if error is not None:
        assert field in error.field, error
        assert error.rule in str(error)


def test_the_message_names_field_value_and_rule():
    with pytest.raises(ConfigError) as info:
        RayJobConfig(runtime_env={"pip": {"packages": ["a"], "pip_check": "yes"}})
    assert str(info.value) == "runtime_env['pip']['pip_check'] must be True or False; got 'yes'"


def test_construction_reads_no_files(tmp_path, monkeypatch):
    """The task module is imported again in the cluster, where the caller's files are not."""
    monkeypatch.chdir(tmp_path)
    check_runtime_env({"pip": "requirements.txt", "working_dir": "nowhere", "py_modules": ["m"]})
    check_runtime_env({"conda": "environment.yml"})
    with pytest.raises(ConfigError, match=r"runtime_env\['pip'\] must be an existing"):
        resolve_runtime_env({"pip": "requirements.txt"})


def test_resolving_reads_requirements_as_ray_does(files):
    resolved = resolve_runtime_env(
        {"pip": {"packages": "requirements.txt", "pip_check": False}, "env_vars": {"A": "1"}}
    )
    assert resolved == {
        "pip": {"packages": ["humanize", "pyjokes"], "pip_check": False},
        "env_vars": {"A": "1"},
    }
    assert resolve_runtime_env({"uv": "requirements.txt"}) == {"uv": ["humanize", "pyjokes"]}
    assert resolve_runtime_env({"conda": "environment.yaml"}) == {
        "conda": {"dependencies": ["pip"]}
    }


def test_unknown_keys_are_warned_about_and_kept():
    with pytest.warns(FlyrayWarning, match=r"runtime_env\['my_plugin'\] is not a field Ray"):
        config = RayJobConfig(runtime_env={"my_plugin": {"x": 1}})
    assert config.runtime_env == {"my_plugin": {"x": 1}}


def test_the_fields_flyray_knows_are_rays():
    from ray.runtime_env import RuntimeEnv

    from flyray.plugins.ray.runtime_env import KNOWN_FIELDS

    assert set(RuntimeEnv.known_fields) == KNOWN_FIELDS
