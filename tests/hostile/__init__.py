"""Hostile peers and inputs over loopback: endpoints, clients and files as an attacker makes them."""
