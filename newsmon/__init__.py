"""newsmon: nightly news monitoring for open-source AI."""

__all__ = ["__version__"]
__version__ = "0.1.0"
