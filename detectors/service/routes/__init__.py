"""HTTP routers of the verification service."""
