#!/usr/bin/env bash
# Install the Debian packages the tests use, where a command is missing: openssl (test
# certificates), iproute2 and util-linux (the real-Kubernetes tests' pods run in network
# namespaces). Go itself comes with the machine; the Kubernetes binaries are built by pytest.
set -euo pipefail
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v ip >/dev/null || missing+=(iproute2)
{ command -v unshare && command -v mount; } >/dev/null || missing+=(util-linux mount)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "system-deps: missing ${missing[*]}; install them (as root: apt-get install ${missing[*]})" >&2
        exit 0  # the tests that need them skip or fail with the reason
    fi
    echo "system-deps: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
