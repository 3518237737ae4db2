from tests.unit.bentos.asgi import risk_app

__all__ = ["risk_app"]
