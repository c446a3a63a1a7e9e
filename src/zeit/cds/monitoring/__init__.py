"""Knowing that the runs work: what a run leaves for monitoring (a status
file, Prometheus metrics) and the Icinga/Nagios check ``cds-check``.

Modules: ``backlog`` (what waits in a spool's ``new``), ``status`` (the
outcome of a run and its JSON status file), ``metrics`` (the textfile
collector's file, prometheus_client imported only when asked for),
``check`` (``cds-check``).
"""
