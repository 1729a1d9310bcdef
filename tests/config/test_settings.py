import pytest
from click.testing import CliRunner

from flyray import ConfigError
from flyray.cli.main import cli
from flyray.config.settings import DEFAULT_RUN_STORE, Settings


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.flyray]\nmode = "local"\nimage = "example.com/ray:1"\n'
    )
    (tmp_path / "pkg").mkdir()
    return tmp_path


def test_defaults_without_a_project(tmp_path):
    settings = Settings.load(cwd=tmp_path, environ={})
    assert settings.run_store == DEFAULT_RUN_STORE and settings.mode == "local"
    assert set(settings.sources.values()) == {"default"}


def test_layers_override_in_order(project):
    settings = Settings.load(
        cwd=project / "pkg",
        environ={"FLYRAY_IMAGE": "env/ray:2", "FLYRAY_RUN_STORE": "s3://bucket/runs"},
        overrides={"image": "flag/ray:3", "namespace": None},
    )
    assert (settings.image, settings.sources["image"]) == ("flag/ray:3", "flag")
    assert (settings.run_store, settings.sources["run_store"]) == (
        "s3://bucket/runs",
        "env FLYRAY_RUN_STORE",
    )
    assert settings.sources["mode"] == str(project / "pyproject.toml")
    assert settings.sources["namespace"] == "default"


def test_unknown_key_in_pyproject_is_named(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.flyray]\nrunstore = "/x"\n')
    with pytest.raises(ConfigError, match=r"\[tool.flyray\].runstore is not a flyray setting"):
        Settings.load(cwd=tmp_path, environ={})


def test_run_store_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.load(cwd=tmp_path, environ={}).run_store_path() == f"{tmp_path}/.flyray/runs"


def test_config_command_prints_values_and_sources(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.setenv("FLYRAY_NAMESPACE", "ml")
    output = CliRunner().invoke(cli, ["config"]).output
    assert "example.com/ray:1" in output and "pyproject.toml" in output
    assert "env FLYRAY_NAMESPACE" in output


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), ("No", False), ("0", False), ("", False)]
)
def test_shared_run_store_is_a_flag(tmp_path, value, expected):
    environ = {"FLYRAY_SHARED_RUN_STORE": value} if value else {}
    assert Settings.load(cwd=tmp_path, environ=environ).shared_run_store is expected


def test_shared_run_store_from_pyproject_and_flags(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.flyray]\nshared_run_store = true\n")
    assert Settings.load(cwd=tmp_path, environ={}).shared_run_store is True
    flagged = Settings.load(cwd=tmp_path, environ={}, overrides={"shared_run_store": False})
    assert flagged.shared_run_store is False


def test_bad_shared_run_store_names_its_source(tmp_path):
    with pytest.raises(ConfigError, match=r"shared_run_store \(from env FLYRAY_SHARED_RUN_STORE\)"):
        Settings.load(cwd=tmp_path, environ={"FLYRAY_SHARED_RUN_STORE": "maybe"})


def test_context_setting(tmp_path):
    settings = Settings.load(cwd=tmp_path, environ={"FLYRAY_CONTEXT": "prod"})
    assert (settings.context, settings.sources["context"]) == ("prod", "env FLYRAY_CONTEXT")


def test_warm_cluster_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings.load(cwd=tmp_path, environ={})
    assert settings.clusters_dir_path() == tmp_path / ".flyray" / "clusters"
    assert settings.cluster_idle_timeout == 1800.0
    (tmp_path / "pyproject.toml").write_text("[tool.flyray]\ncluster_idle_timeout = 60\n")
    assert Settings.load(cwd=tmp_path, environ={}).cluster_idle_timeout == 60.0
    from_env = Settings.load(cwd=tmp_path, environ={"FLYRAY_CLUSTER_IDLE_TIMEOUT": "2.5"})
    assert from_env.cluster_idle_timeout == 2.5


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_bad_idle_timeout_names_its_source(tmp_path, value):
    with pytest.raises(
        ConfigError,
        match=r"cluster_idle_timeout \(from env FLYRAY_CLUSTER_IDLE_TIMEOUT\) must be a number",
    ):
        Settings.load(cwd=tmp_path, environ={"FLYRAY_CLUSTER_IDLE_TIMEOUT": value})


def test_accelerator_labels_default_to_flytes_and_can_be_set(tmp_path):
    settings = Settings.load(cwd=tmp_path, environ={})
    assert settings.accelerator_label == "k8s.amazonaws.com/accelerator"
    assert settings.accelerator_partition_label == "k8s.amazonaws.com/gpu-partition-size"
    (tmp_path / "pyproject.toml").write_text(
        '[tool.flyray]\naccelerator_label = "cloud.google.com/gke-accelerator"\n'
    )
    gke = Settings.load(cwd=tmp_path, environ={"FLYRAY_ACCELERATOR_PARTITION_LABEL": "x/y"})
    assert gke.accelerator_label == "cloud.google.com/gke-accelerator"
    assert gke.accelerator_partition_label == "x/y"


@pytest.mark.parametrize("bad", ["", "has space", "a/b/c", "-leading"])
def test_accelerator_label_must_be_a_label_key(tmp_path, bad):
    with pytest.raises(ConfigError) as info:
        Settings.load(cwd=tmp_path, environ={}, overrides={"accelerator_label": bad})
    assert info.value.field == "accelerator_label (from flag)"
    assert "label key" in info.value.rule


def test_ship_flyray_is_on_unless_turned_off(tmp_path):
    assert Settings.load(cwd=tmp_path, environ={}).ship_flyray is True
    off = Settings.load(cwd=tmp_path, environ={"FLYRAY_SHIP_FLYRAY": "0"})
    assert off.ship_flyray is False and off.sources["ship_flyray"] == "env FLYRAY_SHIP_FLYRAY"
    (tmp_path / "pyproject.toml").write_text("[tool.flyray]\nship_flyray = false\n")
    assert Settings.load(cwd=tmp_path, environ={}).ship_flyray is False
    flagged = Settings.load(cwd=tmp_path, environ={}, overrides={"ship_flyray": True})
    assert flagged.ship_flyray is True
