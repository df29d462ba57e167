"""Built-in providers; importing this package registers them."""

from . import anthropic_provider, local, openai_provider, scripted  # noqa: F401
