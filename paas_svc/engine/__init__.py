"""The engine protocol, its typed views, and its adapters (local socket, Docker SDK, Swarm), fast status, ssh forwarding and the target registry."""
