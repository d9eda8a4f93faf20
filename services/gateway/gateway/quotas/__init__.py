"""Fleet-wide quotas per tenant, counted in Redis so that they hold across pods:
concurrent sessions (leases that a crashed pod's sessions outlive only briefly), session
starts per second, and audio hours per UTC day (docs/quotas.md).

`limits` resolves a tenant's limits from the settings, `scripts` holds the Lua that
checks and counts in one round trip, `refusals` turns a verdict into the protocol's
error, and `gate.QuotaGate` is what the session service calls.
"""
