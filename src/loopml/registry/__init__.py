"""Registry: model versions with signatures and lineage, aliases, gates, approvals, cards."""
