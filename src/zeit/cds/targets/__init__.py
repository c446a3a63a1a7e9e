"""The remote targets: one module per kind of CDS connection.

A target supplies primitives only (store, sizes, rename, delete, list,
read, create); the delivery protocol above them is ``zeit.cds.delivery``.
"""
