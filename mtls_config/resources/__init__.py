"""The resource kinds: one module per kind (natural key, live record -> canonical form, canonical form -> payload)."""
