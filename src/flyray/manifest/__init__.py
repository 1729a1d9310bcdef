"""Pure translation from task configuration to Kubernetes / KubeRay objects."""
