"""Provider clients: each turns a chat request for one deployment into a response or a
ProviderError. openai_compat.py is the pooled-aiohttp fast path; litellm_client.py serves the
providers litellm knows (the only module importing litellm)."""
