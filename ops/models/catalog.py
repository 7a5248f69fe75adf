"""Is the Foundry Local model catalog reachable? Asked with a short timeout.

The SDK's own catalog calls block for seconds to minutes when the network silently
drops packets, so ``ops`` asks first, cheaply, before touching the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

#: The catalog the Foundry Local runtime queries (read from its native library).
CATALOG_URL = "https://api.catalog.azureml.ms/asset-gallery/v1.0/models"


@dataclass(frozen=True)
class Reachability:
    """Whether the catalog answered, and why not when it did not."""

    reachable: bool
    reason: str


def check_catalog(timeout: float, url: str | None = None) -> Reachability:
    """Reach the catalog (default: Foundry's) within ``timeout`` seconds; any HTTP answer counts."""
    url = url or CATALOG_URL
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client:
            response = client.head(url)
    except httpx.TimeoutException:
        return Reachability(False, f"no answer from the Foundry catalog within {timeout:g} s (offline?)")
    except httpx.HTTPError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Reachability(False, f"the Foundry catalog cannot be reached ({detail})")
    return Reachability(True, f"the Foundry catalog answered (HTTP {response.status_code})")
