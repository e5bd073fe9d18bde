"""The staff console: server-rendered pages at /console for the people who work the callback queue."""

from console.routes import install

__all__ = ["install"]
