"""Wire formats other than servekit's own JSON, decoded to and encoded from records."""
