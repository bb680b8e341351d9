"""What every HTTP provider adapter reads the same way."""
from __future__ import annotations


def retry_after_of(headers) -> int | None:
    """Seconds from a `Retry-After` header (a number); None when absent or not a number."""
    value = (headers or {}).get("Retry-After")
    try:
        return max(0, int(float(value))) if value is not None else None
    except ValueError:
        return None
