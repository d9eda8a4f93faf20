"""Who is calling: credentials checked before the upgrade, and the tenant they belong to."""
