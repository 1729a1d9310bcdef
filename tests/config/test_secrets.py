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
    assert [s.env_var for s in env.secrets] == ["DB_PASSWORD", "K"]
    assert TaskEnvironment("one", secrets="token").secrets == (Secret(key="token"),)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: Secret(key="bad key"), "Secret.key"),
        (lambda: Secret(key="k", group="Not_A_Name"), "Secret.group"),
        (lambda: Secret(key="k", group="g", as_env_var="1X"), "Secret.as_env_var"),
        (lambda: TaskEnvironment("e", secrets=[42]), "TaskEnvironment.secrets[0]"),
        (
            lambda: TaskEnvironment("e", secrets=["a-b", Secret(key="a_b", group="g")]),
            "TaskEnvironment.secrets",
        ),
    ],
)
def test_bad_secrets_name_the_field(factory, field):
    with pytest.raises(ConfigError) as info:
        factory()
    assert info.value.field == field
