"""The platform's monitoring mixin: its Prometheus rules, promtool tests and Grafana dashboards.

A mixin, as kube-prometheus calls it: the rules, alerts and dashboards of one system,
generated from one source. The metric names come from :mod:`servekit.metrics.names` and
the services from :func:`servekit.registry.available`, so a renamed metric or a new
service changes the generated files, and ``tests/monitoring`` fails until they are
regenerated and committed (``monitoring/generate.py``).

Recording rules carry a ``service`` label, so the same recorded name (e.g.
``service:requests:rate5m``) answers for every service and the platform overview
needs one query per panel, not one per service.

One module per part: :mod:`~mixin.common` (SLOs, thresholds, PromQL helpers),
:mod:`~mixin.recorded` (recording rules), :mod:`~mixin.alerts`, :mod:`~mixin.rule_tests`
(promtool), :mod:`~mixin.grafana` (panel building blocks), :mod:`~mixin.overview` and
:mod:`~mixin.service_dashboard` (a module per row of panels), :mod:`~mixin.autoscaling`
(prometheus-adapter), :mod:`~mixin.outputs` (every file, and which are stale),
:mod:`~mixin.local_prometheus`.
"""
