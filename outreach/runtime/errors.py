"""The error hierarchy. Storage and providers re-raise driver and SDK errors as these.

Each class's docstring is its default message; the HTTP layer maps each class to one status code.
"""


class ServiceError(Exception):
    """Internal server error"""

    def __init__(self, message: str | None = None, **details):
        self.message = message or (type(self).__doc__ or "").strip()
        self.details = details
        super().__init__(self.message)


class Invalid(ServiceError):
    """Bad request"""


class Unauthorized(ServiceError):
    """Unauthorized"""


class Forbidden(ServiceError):
    """Forbidden"""


class NotFound(ServiceError):
    """Not found"""


class Conflict(ServiceError):
    """Conflict"""


class PayloadTooLarge(ServiceError):
    """Payload too large"""


class RateLimited(ServiceError):
    """Rate limited"""

    def __init__(self, message: str | None = None, retry_after: int | None = None, **details):
        super().__init__(message, **details)
        self.retry_after = retry_after


class NotConfigured(ServiceError):
    """Service not configured"""


class ProviderError(ServiceError):
    """External service error"""


class ConfigError(Exception):
    """A setting is missing or malformed; start-up stops with this one line."""
