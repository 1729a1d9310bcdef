"""flyray.init*: Flyte's initialisers, accepted; they connect nowhere and change no run."""

import warnings

import pytest

import flyray
from flyray import ConfigError, FlyrayWarning


@pytest.mark.parametrize(
    "call",
    [
        lambda: flyray.init(),
        lambda: flyray.init_from_config(),
        lambda: flyray.init_from_api_key(),
        lambda: flyray.init_in_cluster(),
        lambda: flyray.init_passthrough(),
    ],
)
def test_without_arguments_nothing_is_said_and_runs_stay_local(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call()
    assert flyray.with_runcontext().mode == "local"


def test_each_argument_with_a_value_warns_naming_itself():
    with pytest.warns(FlyrayWarning) as seen:
        flyray.init(endpoint="dns:///flyte.example.com", project="p", rpc_retries=3)
    assert [str(w.message).split(" has no effect")[0] for w in seen] == [
        "init.project='p'",
        "init.endpoint='dns:///flyte.example.com'",
    ]
    assert all("in any flyray mode" in str(w.message) for w in seen)
    assert {w.filename for w in seen} == {__file__}


def test_a_secret_given_is_never_shown(monkeypatch):
    with pytest.warns(FlyrayWarning) as seen:
        flyray.init_from_api_key(api_key="s3cr3t-key")
        flyray.init(client_credentials_secret="s3cr3t-too")
    messages = " ".join(str(w.message) for w in seen)
    assert "s3cr3t" not in messages and messages.count("'<given>'") == 2


def test_a_config_file_must_exist_and_is_not_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=rf"must be a Flyte config file that exists.*{tmp_path}"):
        flyray.init_from_config("config.yaml")
    (tmp_path / "config.yaml").write_text("not: [valid yaml")
    with pytest.warns(FlyrayWarning, match="init_from_config.path_or_config='config.yaml'"):
        flyray.init_from_config("config.yaml")
    assert flyray.with_runcontext().mode == "local"


def test_in_cluster_and_passthrough_return_the_endpoint_settings():
    assert flyray.init_in_cluster() == {"endpoint": None, "insecure": False}
    with pytest.warns(FlyrayWarning):
        got = flyray.init_passthrough(endpoint="dns:///x", insecure=True)
    assert got == {"endpoint": "dns:///x", "insecure": True}


def test_flyray_run_needs_no_init():
    env = flyray.TaskEnvironment("no_init")

    @env.task
    def one() -> int:
        return 1

    assert flyray.run(one).result() == 1
