"""The long-running service (``--watch``), built on the runs of
``zeit.cds.run``: ``watcher`` (the loop, one burst per arrival or
listing), ``arrivals`` (inotify on a spool's ``new``), ``pause`` (waits a
signal can cut short), ``trouble`` (back-off, told once per change) and
``systemd`` (the notify protocol)."""
