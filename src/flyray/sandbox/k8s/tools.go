//go:build tools

// Package tools pins the commands that src/flyray/sandbox/k8s/build.sh builds, so that go.mod and
// go.sum record every module they need. It is never compiled (build tag "tools").
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
