"""Warm local clusters: a declared topology kept running between ``local-cluster`` runs.

``registry`` stores them, ``match`` decides whether a run's cluster is the same one,
``keeper`` decides when an unused one stops, ``clusters`` starts, lends and stops them.
"""
