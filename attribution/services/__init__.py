"""Writes of chunk-exact usage: the daily run per datastore (``runs``), reading snapshots from PBS
(``reading``) and splitting a datastore among its tenants (``splitting``)."""
