"""Content-addressed result cache (docs/cache.md): key, file hashing, storage, policy."""
