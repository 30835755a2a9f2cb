"""paas-svc: managed services (databases, caches, search, mail) on your own Docker host."""

__version__ = "0.1.0"
