"""The task framework: environments, tasks and the plugin registry."""
