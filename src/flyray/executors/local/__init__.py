"""``local`` mode: the task runs in the caller's process; its Ray plugin connects to Ray."""
