"""Version checks before running on someone else's cluster."""

import platform

import pytest

from flyray import SubmissionError
from flyray.config.ray_images import ray_version
from flyray.executors.jobs.client import _version_warnings
from flyray.executors.jobs.versions import check_versions

LOCAL = {"local_ray": "2.60.0", "local_python": "3.11.7", "address": "http://h:8265"}


@pytest.mark.parametrize(
    ("remote_ray", "remote_python", "via", "broken"),
    [
        ("2.60.0", "3.10.14", "client", "Python 3.10.14 on the cluster, 3.11.7 here"),
        ("2.59.0", "3.11.2", "client", "Ray 2.59.0 on the cluster, 2.60.0 here"),
        ("2.41.0", "3.12.1", "client", "Ray 2.41.0"),
        ("2.60.0", "3.12.0", "jobs", "Python 3.12.0 on the cluster"),
        ("2.50.1", "3.9.18", "jobs", "Python 3.9.18"),
    ],
)
def test_breaking_mismatches_fail_early_with_both_versions(remote_ray, remote_python, via, broken):
    with pytest.raises(SubmissionError) as info:
        check_versions(remote_ray=remote_ray, remote_python=remote_python, via=via, **LOCAL)
    assert broken in str(info.value) and "--skip-version-check" in str(info.value)


@pytest.mark.parametrize(
    ("remote_ray", "remote_python", "via", "warned"),
    [
        ("2.60.0", "3.11.2", "client", []),
        ("2.59.0", "3.11.9", "jobs", ["Ray 2.59.0 on the cluster, 2.60.0 here"]),
        (None, "3.11.7", "jobs", ["Ray version of the cluster at http://h:8265 is unknown"]),
        ("2.60.0", None, "client", ["Python version of the cluster at http://h:8265 is unknown"]),
    ],
)
def test_harmless_or_unknown_versions_warn(remote_ray, remote_python, via, warned):
    warnings = check_versions(remote_ray=remote_ray, remote_python=remote_python, via=via, **LOCAL)
    assert [any(w in text for text in warnings) for w in warned] == [True] * len(warned)
    assert len(warnings) == len(warned)


@pytest.mark.slow
def test_versions_of_the_running_cluster(ray_cluster):
    warnings = _version_warnings(ray_cluster.dashboard_url, ray_cluster.auth_headers())
    # The same Ray here and there: only the Python version, which the Jobs API hides, is unknown.
    assert warnings == [
        f"the Python version of the cluster at {ray_cluster.dashboard_url} is unknown"
    ]
    assert ray_version() and platform.python_version()
