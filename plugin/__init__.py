"""IAM Create Access Key: an action plugin for no-code automation platforms."""

from .engine import execute, test_connection

__all__ = ["execute", "test_connection"]
