"""IAM Create Access Key: an action plugin for no-code automation platforms."""

from .engine import execute

__all__ = ["execute"]
