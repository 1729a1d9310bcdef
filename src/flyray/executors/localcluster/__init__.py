"""``local-cluster`` mode: the RayJob's cluster started as real Ray processes on this machine.

executor   LocalClusterExecutor: a warm cluster that matches, else a transient one
nodes      the Ray processes: ``ray start`` flags, life cycle, process groups, clean-up
topology   the manifest's head and worker groups as the nodes to start
reaper     a detached process that stops a kept cluster after its TTL or idle timeout
warm       clusters kept running between runs (``flyray cluster up``)
"""
