"""Generate every Prometheus rule, promtool rule test and Grafana dashboard in monitoring/.

The generator is the package ``monitoring/mixin`` (see its docstring)::

    .venv/bin/python monitoring/generate.py          # write the files
    .venv/bin/python monitoring/generate.py --check  # exit 1 when a committed file is stale
"""

from __future__ import annotations

import sys

from mixin.cli import main

if __name__ == "__main__":
    sys.exit(main())
