import pytest

from flyray import ConfigError, Secret, TaskEnvironment


def test_defaults_follow_the_key():
    secret = Secret(key="api-key")
    assert (secret.secret_name, secret.env_var) == ("api-key", "API_KEY")
    assert Secret(key="token", group="creds", as_env_var="MY_TOKEN").env_entry() == {
        "name": "MY_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}},
    }


def test_environment_accepts_flyte_style_requests():
    env = TaskEnvironment("with_secrets", secrets=["db-password", Secret(key="k", group="g")])
    assert [s.env_var for s in env.secrets] == ["DB_PASSWORD", "G_K"]
    assert TaskEnvironment("one", secrets="token").secrets == (Secret(key="token"),)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: Secret(key="bad key"), "Secret.key"),
        (lambda: Secret(key="k", group=""), "Secret.group"),
        (lambda: Secret(key="k", mount="/run/secrets"), "Secret.mount"),
        (lambda: Secret(key="k", group="g", as_env_var="1X"), "Secret.as_env_var"),
        (lambda: TaskEnvironment("e", secrets=[42]), "TaskEnvironment.secrets[0]"),
        (
            lambda: TaskEnvironment("e", secrets=["a-b", Secret(key="a_b")]),
            "TaskEnvironment.secrets",
        ),
    ],
)
def test_bad_secrets_name_the_field(factory, field):
    with pytest.raises(ConfigError) as info:
        factory()
    assert info.value.field == field


def test_env_var_and_kubernetes_names_follow_flyte():
    grouped = Secret(key="api-key", group="openai")
    assert (grouped.env_var, grouped.secret_name) == ("OPENAI_API_KEY", "openai")
    named = Secret(key="openai_api_key", as_env_var="OPENAI_API_KEY")
    assert (named.env_var, named.secret_name) == ("OPENAI_API_KEY", "openai-api-key")
    assert named.env_entry()["valueFrom"]["secretKeyRef"] == {
        "name": "openai-api-key",
        "key": "openai_api_key",
    }
    assert Secret(key="k", group="Team_Creds").secret_name == "team-creds"


def test_a_mounted_secret_is_a_file_at_flytes_path_and_no_env_var():
    secret = Secret(key="Token", group="Creds", mount="/etc/flyte/secrets")
    assert secret.env_var is None
    assert secret.env_entry() is None
    assert secret.mount_path == "/etc/flyte/secrets/creds/token"
