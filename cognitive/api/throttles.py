from rest_framework.throttling import ScopedRateThrottle


class ActionThrottle(ScopedRateThrottle):
    """Per user and action (`run`, `run-batch`, `optimize`) on the shared cache; 429 carries Retry-After."""
