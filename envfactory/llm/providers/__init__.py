"""Built-in providers, one module each. Nothing is imported here: `llm/registry.py` names each one as
`module:Class` and imports a provider's module on first use (its `@register_provider` then records the class)."""
