"""The admin API (HTTP, admin bearer token) and its CLI client."""
