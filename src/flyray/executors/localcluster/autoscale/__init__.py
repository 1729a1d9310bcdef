"""Ray's own autoscaler (v2) for local clusters with ``enableInTreeAutoscaling``.

config     the RayCluster spec as Ray's autoscaling config, mapped the way KubeRay maps it
launch     the head started with the autoscaler, the cluster's first workers as its instances
provider   flyray's node provider, loaded by Ray's monitor on the head: workers as processes
records    the workers on disk (one file each): what stop, progress and `cluster list` read
"""
