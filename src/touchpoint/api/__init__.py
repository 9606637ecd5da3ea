"""The HTTP API: a thin FastAPI layer over the library (``create_app``)."""
