"""Whether a tenant is disabled (admin PATCH): none of its clients or service users gets a token."""

from __future__ import annotations

from sidecar.store import Store


async def tenant_disabled(store: Store, tenant_id: str) -> bool:
    tenant = await store.get_tenant(tenant_id)
    return tenant is not None and tenant.disabled
