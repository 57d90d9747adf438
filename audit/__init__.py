"""Compliance and chat-quality audit for WeCom (企业微信) customer-service chats."""

__version__ = "0.1.0"
