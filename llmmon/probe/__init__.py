"""One synthetic request, measured: ``run`` (the probe), ``result`` (what it measured),
``trace`` and ``transport`` (stamps), ``checks``, ``cost`` and ``load``."""
