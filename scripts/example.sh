#!/usr/bin/env bash
# Set everything up, then run the spec's Ray task on the local default (prints 285).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/flyray run examples/seed.py my_ray_task --n 10
