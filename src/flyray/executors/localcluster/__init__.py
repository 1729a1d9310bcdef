"""``local-cluster`` mode: the RayJob's cluster started as real Ray processes on this machine.

executor   LocalClusterExecutor: a warm cluster that matches, else a transient one
raystart   one Ray node: its spec, ports, ``ray start`` flags, start and logs
cluster    LocalRayCluster: a head and workers started, waited for and stopped together
procs      the Ray processes from /proc: identity, process groups, stopping, clean-up at exit
topology   the manifest's head and worker groups as the nodes to start
autoscale  Ray's autoscaler on the head (``enableInTreeAutoscaling``): flyray's node provider
reaper     a detached process that stops a cluster: its owner died, its TTL or idle time passed
warm       clusters kept running between runs (``flyray cluster up``)
"""
