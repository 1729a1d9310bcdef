"""A real KubeRay on this machine, without a container engine: the sandbox.

etcd, kube-apiserver and kube-controller-manager built from Kubernetes' own Go modules, the
real KubeRay operator, and a process kubelet that runs each pod as local processes in a
network namespace of its own. ``flyray sandbox up`` starts it for people; the realkube tests
start the same parts from their fixtures. See docs/sandbox.md.
"""
