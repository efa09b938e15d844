"""The service: pools from ``config.yaml``, live reload, Prometheus export, /health.

Layered on the pool core, which never imports this package (nor
``prometheus_client`` or ``yaml``, which only this package needs):

* ``schema``, ``checks`` and ``config``: the configuration, each key declared
  once and checked whole (``ConfigError``); ``example``: the shipped
  ``config.yaml``, rendered from the schema;
  ``reload``: noticing a changed file, parsing it off the main thread;
* ``runtime``: pools and queues built from it and changed live (elastic pools
  size themselves: the service passes their limits); ``queues``: a queue from its
  configuration, built or changed in place;
* ``producers``: what feeds the queues; ``scrubber``: the default workload;
* ``metrics``: Prometheus collectors reading the pools and lockdep at scrape time;
* ``httpd``: ``/metrics``, ``/health``, ``/lockdep``;
* ``notify``: systemd's ``sd_notify`` and watchdog;
* ``signals``, ``logs`` (with repeated tracebacks limited) and ``service``: the
  process (``python -m threadpool serve``).
"""
