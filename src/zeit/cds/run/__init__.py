"""The run machinery shared by export and import: the spool and CDS locks'
scope, the report, reconnecting, parallel connections, signals."""
