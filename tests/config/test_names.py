import pytest

from flyray import ConfigError
from flyray.config.names import check_dns1123_label, check_env_name, dns1123_name


@pytest.mark.parametrize("name", ["ray_env", "ray-env", "env2", "a", "2d_env"])
def test_env_names_accepted(name):
    assert check_env_name("name", name) == name


@pytest.mark.parametrize("name", ["Ray", "ray env", "_x", "x_", "", None, "a__b"])
def test_env_names_rejected(name):
    with pytest.raises(ConfigError, match="snake_case or kebab-case"):
        check_env_name("TaskEnvironment.name", name)


def test_dns_label():
    assert check_dns1123_label("g", "cpu-workers") == "cpu-workers"
    with pytest.raises(ConfigError, match="DNS-1123"):
        check_dns1123_label("g", "cpu_workers")


def test_dns1123_name_derivation():
    assert dns1123_name("ray_env") == "ray-env"
    long = dns1123_name("x" * 100, max_length=47)
    assert len(long) == 47 and long != dns1123_name("x" * 99, max_length=47)
    assert check_dns1123_label("derived", long)
