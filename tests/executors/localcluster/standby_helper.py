"""A module of the standby tests' code bundle, imported by a Ray worker of the job."""


def answer() -> int:
    return 42
