"""The long-running daemon: ``runtime`` (lifecycle and reloads), ``jobs`` (the one job
wrapper), ``exporter`` and ``landing`` (HTTP routes), ``httpserver``, ``auth``."""
