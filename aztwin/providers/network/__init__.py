"""Microsoft.Network, read-only: the subnets scale sets sit in and private endpoints (docs/twin.md, "Vault network rules")."""
