"""The staff console: server-rendered pages at /console for the people who work the callback queue."""

from console.app import install

__all__ = ["install"]
