"""Test and demo aids, never imported by the daemon: a simulated LLM server speaking every
wire format (``simulator``, ``formats``), scripted GPUs (``nvml``) and ``--demo`` (``demo``)."""
