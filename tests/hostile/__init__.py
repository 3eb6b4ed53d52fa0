"""Hostile peers and inputs over loopback: endpoints, clients and files as attackers make
them."""
