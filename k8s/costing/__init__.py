"""The parts of ``make cost`` (k8s/cost.py, whose docstring says what it counts and how), one module
per concern, each importing only those before it:

:mod:`~costing.errors` (the error that stops the count), :mod:`~costing.rendering` (the rendered
overlays, by k8s/check.py), :mod:`~costing.requests` (quantities, a Pod's requests, the node labels
it needs), :mod:`~costing.workloads` (Deployments and StatefulSets with their HPAs and settings),
:mod:`~costing.pricing` (a Pod's hour on each cloud, the nodes Pods need), :mod:`~costing.cronjobs`
(CronJobs, by their schedules), :mod:`~costing.schedulable` (Pods no node can hold),
:mod:`~costing.bill` (a month's bill), :mod:`~costing.figures` (the --cpu file),
:mod:`~costing.logs` (the log lines a load writes), :mod:`~costing.sizing` (pods sized by the CPU a
prediction costs), :mod:`~costing.report` (an overlay's report).
"""
