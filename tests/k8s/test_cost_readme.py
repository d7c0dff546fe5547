"""The README's priced loads are ``k8s/cost.py``'s bills, on the manifests and prices as committed.

What a prediction's CPU and its captured line weigh are measurements of a moment, and the file
``make cost`` writes them to (``reports/cpu.json``) is not committed. So the README's own tables
are the input here: the capture table's line sizes and its price per million of an explained
BankChurn prediction (which fixes the CPU, hence the pods, up to its rounding), and the pods each
sentence names. A change to a request, a replica count, a price or the tool that moves a figure
fails here until the text follows; so does a figure written by hand that the tool never printed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from manifests import OVERLAYS, Rendered, render

from scripts import load_k8s_cost

cost = load_k8s_cost()
PRICES = yaml.safe_load(cost.PRICES.read_text())
README = (cost.ROOT / "README.md").read_text()
#: The README with its line breaks as spaces: a sentence is found wherever it wraps.
FLAT = " ".join(README.split())
SERVICES = {"BankChurn": "bankchurn", "ChicagoTaxi": "chicagotaxi", "NLPInsight": "nlpinsight"}
EXPLAINED = "predict+explain"

NUMBER = r"(\d[\d,]*)"
#: The dollars a month of cost.py's bill lines.
BILL = r"\$([\d,]+) a month"
MONEY = r"\$(\d[\d,.]*)"
#: A row of the capture table: line sizes, then pods and log lines per million, single and explained.
CAPTURE_ROW = re.compile(
    rf"^\| ({'|'.join(SERVICES)}) \| {NUMBER}(?: bytes)? \| {NUMBER} \| "
    rf"{MONEY}, (?:\*\*)?{MONEY}(?:\*\*)? \| {MONEY}, (?:\*\*)?{MONEY}(?:\*\*)? \|$",
    re.M,
)
CAPTURE_SENTENCE = re.compile(
    rf"1,000 explained BankChurn predictions a second take (\d+) pods, and the whole overlay costs "
    rf"{MONEY} a month on GKE; their capture writes {NUMBER} GiB of log lines a month, \*\*{MONEY}\*\*; "
    rf"on EKS {MONEY} and {MONEY}\. Capturing 1 % of them writes (\d+) GiB, inside Cloud Logging's free "
    rf"(\d+)\."
)
LOAD_SENTENCE = re.compile(
    rf"1,000 BankChurn predictions a second take (\d+) pods: {MONEY} a month on GKE, {MONEY} on EKS "
    rf"\((\d+) nodes, the floor's\); 1,000 explained ones take (\d+) pods: {MONEY} and {MONEY} \((\d+) "
    rf"nodes\)\. An earlier, slower measurement put 1,000 explained predictions a second to each service "
    rf"at (\d+), (\d+) and (\d+) pods: {MONEY} and {MONEY};"
)


def number(text: str) -> float:
    return float(text.replace(",", ""))


def capture_table() -> dict[str, dict[str, float]]:
    rows = {
        SERVICES[found[0]]: dict(
            zip(
                (
                    "single_bytes",
                    "explained_bytes",
                    "single_pods",
                    "single_logs",
                    "explained_pods",
                    "explained_logs",
                ),
                map(number, found[1:]),
                strict=True,
            )
        )
        for found in CAPTURE_ROW.findall(README)
    }
    assert set(rows) == set(SERVICES.values()), f"the capture table's rows: {sorted(rows)}"
    return rows


def figures(
    cpu_ms: float, explained_bytes: float, single_bytes: float, service: str = "bankchurn"
) -> dict[str, Any]:
    """A --cpu file as python -m servekit.bench.cpu writes it, of one service."""
    kinds = {
        "predict": {
            "cpu_ms_per_prediction": cpu_ms,
            "cores": 0.3,
            "capture_bytes_per_prediction": single_bytes,
        },
        EXPLAINED: {
            "cpu_ms_per_prediction": cpu_ms,
            "cores": 0.3,
            "capture_bytes_per_prediction": explained_bytes,
        },
    }
    return {"services": {service: kinds}}


def printed(lines: list[str], pattern: str) -> tuple[str, ...]:
    found = [m.groups() for line in lines if (m := re.search(pattern, line))]
    assert len(found) == 1, (pattern, lines)
    return found[0]


@pytest.fixture(scope="module")
def capturing() -> dict[str, Rendered]:
    return {overlay: render(overlay, components=["prediction-capture"]) for overlay in OVERLAYS}


def test_the_capture_tables_log_line_prices_are_its_line_sizes_at_the_gke_price(
    capturing: dict[str, Rendered],
) -> None:
    prices = PRICES["gke"]
    found = cost.workloads(capturing["gke"].objects)
    for service, row in capture_table().items():
        cpu = figures(1.0, row["explained_bytes"], row["single_bytes"], service)
        lines = cost.per_million(found, prices, cpu)
        for kind, column in (("predict", "single_logs"), (EXPLAINED, "explained_logs")):
            (logged,) = printed(
                lines, rf"^  {service} {re.escape(kind)}: .*\$([\d.]+) per million in log lines"
            )
            assert f"{float(logged):.2f}" == f"{row[column]:.2f}", (service, kind)


def printed_load(lines: list[str], kind: str, per_second: float) -> tuple[str | None, ...]:
    """The pods, the bill and the nodes (EKS) of a --load line of cost.py's report, then the GiB and
    dollars of the log lines where the overlay captures (None where it does not)."""
    load = rf"bankchurn {per_second:g}/s"
    found = printed(
        lines,
        rf"^  at {load} \({re.escape(kind)}\): bankchurn (\d+) pods: {BILL} = compute \S+(?: on (\d+) node)?",
    )
    captured = [
        m[1]
        for line in lines
        if (m := re.search(rf"^  bankchurn captures 100 % of {per_second:g}/s .*: ([\d,]+) GiB", line))
    ]
    logged = [m[1] for line in lines if (m := re.search(rf"^  the log lines: {BILL}", line))]
    return (*found, *(captured or [None]), *(logged or [None]))


def bankchurn_priced(
    objects: dict[str, list[Any]], kind: str, per_second: float
) -> dict[str, tuple[str | None, ...]]:
    """What ``python k8s/cost.py --cpu ... --load bankchurn=PER_SECOND --kind KIND`` prints of the
    load on each overlay (:func:`printed_load`), at the CPU the capture table's price per million of
    the kind gives: the same at either end of the price's rounding ($0.031 is $0.0305 to $0.0315),
    or the table does not fix it."""
    row = capture_table()["bankchurn"]
    column = "explained_pods" if kind == EXPLAINED else "single_pods"
    (bankchurn,) = [w for w in cost.workloads(objects["gke"]) if w.name == "bankchurn"]
    price = cost.workload_hour(bankchurn, PRICES["gke"])
    said = set()
    for per_million in (row[column] - 0.0005, row[column] + 0.0004999):
        # per_million's arithmetic backwards: a pod held at its target answers target / CPU a second.
        cpu_ms = per_million * bankchurn.cpu_target * 3.6 / price
        cpu = figures(cpu_ms, row["explained_bytes"], row["single_bytes"])
        loads = {"bankchurn": per_second}
        said.add(
            tuple(
                (
                    overlay,
                    printed_load(
                        cost.report(
                            overlay, objects[overlay], PRICES[overlay], cpu=cpu, loads=loads, kind=kind
                        ),
                        kind,
                        per_second,
                    ),
                )
                for overlay in OVERLAYS
            )
        )
    assert len(said) == 1, f"the capture table's price per million leaves the pods open: {said}"
    return dict(said.pop())


def test_the_capture_sentence_is_what_cost_py_prints_at_the_tables_figures(
    capturing: dict[str, Rendered],
) -> None:
    """``python k8s/cost.py --component prediction-capture --load bankchurn=1000 --kind
    predict+explain``, at the capture table's CPU and line size of an explained BankChurn answer."""
    sentence = CAPTURE_SENTENCE.search(FLAT)
    assert sentence, "no sentence pricing 1,000 explained BankChurn predictions a second captured"
    pods, gke_total, gib, gke_logs, eks_total, eks_logs, one_percent, free = sentence.groups()
    objects = {overlay: rendered.objects for overlay, rendered in capturing.items()}
    said = bankchurn_priced(objects, EXPLAINED, 1000)
    assert said["gke"] == (pods, gke_total, None, gib, gke_logs)
    assert said["eks"][:2] == (pods, eks_total)
    assert said["eks"][3:] == (gib, eks_logs)
    # A hundredth of the lines, under the allowance the tool takes off.
    assert bankchurn_priced(objects, EXPLAINED, 10)["gke"][3] == one_percent
    assert number(free) == PRICES["gke"]["log_ingestion"]["free_gib_month"]
    assert number(one_percent) < number(free)


def test_a_given_loads_bills_are_the_tools() -> None:
    """*A given load*: 1,000 BankChurn predictions a second, plain and explained, at the capture
    table's figures; and an earlier measurement's pods of 1,000 explained a second to each service,
    billed."""
    sentence = LOAD_SENTENCE.search(FLAT)
    assert sentence, "no sentence pricing 1,000 BankChurn predictions a second"
    (
        pods,
        gke_total,
        eks_total,
        eks_nodes,
        explained_pods,
        explained_gke,
        explained_eks,
        explained_nodes,
        *each,
        gke_each,
        eks_each,
    ) = sentence.groups()
    objects = {overlay: render(overlay).objects for overlay in OVERLAYS}
    said = bankchurn_priced(objects, "predict", 1000)
    assert said["gke"][:2] == (pods, gke_total)
    assert said["eks"][:3] == (pods, eks_total, eks_nodes)
    said = bankchurn_priced(objects, EXPLAINED, 1000)
    assert said["gke"][:2] == (explained_pods, explained_gke)
    assert said["eks"][:3] == (explained_pods, explained_eks, explained_nodes)
    # The floor's nodes, as the sentence says.
    floor = cost.workloads(objects["eks"])
    assert cost.bill(objects["eks"], floor, PRICES["eks"], cost.at_scale(floor, "floor")).nodes == int(
        eks_nodes
    )
    for overlay, each_total in (("gke", gke_each), ("eks", eks_each)):
        found = cost.workloads(objects[overlay])
        loaded = {
            **cost.at_scale(found, "floor"),
            **dict(zip(SERVICES.values(), map(int, each), strict=True)),
        }
        assert f"{cost.bill(objects[overlay], found, PRICES[overlay], loaded).total:,.0f}" == each_total, (
            overlay
        )
