"""The generated files' text: YAML with literal PromQL blocks and the generated-by line, JSON."""

from __future__ import annotations

import json
from typing import Any

import yaml

from mixin.common import GENERATED


class _Dumper(yaml.SafeDumper):
    """Multi-line PromQL as literal blocks, so the rule files read like hand-written ones."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def yaml_text(data: Any) -> str:
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return f"# {GENERATED}\n{body}"


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
