"""The run store every non-local mode shares: records, inputs, outputs, errors, logs, bundles.

Importing this package imports neither fsspec nor Ray: a ``RunStore`` loads fsspec when made.
"""

from flyray.store.bundle import Bundle, bundle_files, create_bundle, project_root
from flyray.store.record import Attempt, RunRecord, utc_now
from flyray.store.runstore import DEFAULT_RUN_STORE, ErrorInfo, RunStore
from flyray.store.serialization import dumps, loads

__all__ = [
    "DEFAULT_RUN_STORE",
    "Attempt",
    "Bundle",
    "ErrorInfo",
    "RunRecord",
    "RunStore",
    "bundle_files",
    "create_bundle",
    "dumps",
    "loads",
    "project_root",
    "utc_now",
]
