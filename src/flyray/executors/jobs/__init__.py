"""Everything that talks to a Ray Jobs API: the job-run base, the follower, ``cluster`` mode.

executor  JobExecutor: a run prepared once (bundle, manifest, inputs, record), then followed
cluster   ClusterExecutor: a Ray job on someone else's running cluster
auth      the token headers Ray 2.60's authentication asks for
versions  warnings when the cluster's Ray or Python differ from the caller's
"""
