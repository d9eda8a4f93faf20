"""Deployment: the local (no-Docker) fleet, and what Compose and Helm share with it."""
