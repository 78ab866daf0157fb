"""The REST facade (aiohttp): routes generated from the registry, OpenAPI, the response cache."""
