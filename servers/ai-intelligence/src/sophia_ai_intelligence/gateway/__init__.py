"""The LLM gateway: every call goes through a Portkey gateway (cloud or self-hosted) with the official SDK."""

from .open import open_gateway

__all__ = ["open_gateway"]
