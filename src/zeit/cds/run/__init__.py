"""The run machinery shared by export and import, and by the watcher
(``zeit.cds.watch``): the spool and CDS locks' scope, the report,
reconnecting, parallel connections, signals."""
