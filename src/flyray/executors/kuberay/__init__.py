"""``kuberay`` mode: the task's RayJob (or batch Job) on Kubernetes (``kubernetes`` loaded lazily).

executor   KubeRayExecutor: create the object, follow it, keep its log, delete it
errors     Kubernetes API errors -> flyray errors, in one function; which ones to retry
session    KubeSession: kubeconfig or in-cluster config, namespace, retried API calls
preflight  checks before anything is created: CRD, RBAC, run store, server-side dry run
watch      follow a RayJob (or its RayCluster) with a watch that resumes and re-lists
logs       stream the submitter pod's log while the job runs; the full text at the end
status     RayJob status -> progress lines, run status and the error of a failed run
jobstatus  the same for a batch Job (a task that names an existing cluster)
warm       reusable RayClusters: found or created, touched, collected when idle
"""
