"""``make bench``: latency and throughput of every service, in process and over HTTP.

Figures are of the machine it runs on; every run also measures the reference
explainers the model choice is compared with, so ratios come from one run.
"""
