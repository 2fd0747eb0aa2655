"""Governance: identities, API tokens, roles, and the hash-chained audit log."""
