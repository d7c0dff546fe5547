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
    rf"\((\d+) nodes\)\. 1,000 explained predictions a second to each service take {MONEY} and {MONEY} "
    r"\((\d+), (\d+) and (\d+) pods\)"
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


def test_the_capture_sentence_is_what_cost_py_prints_at_the_tables_figures(
    capturing: dict[str, Rendered],
) -> None:
    """``python k8s/cost.py --component prediction-capture --load bankchurn=1000 --kind
    predict+explain`` at any CPU the table's price per million rounds from, and its line size."""
    sentence = CAPTURE_SENTENCE.search(FLAT)
    assert sentence, "no sentence pricing 1,000 explained BankChurn predictions a second captured"
    pods, gke_total, gib, gke_logs, eks_total, eks_logs, one_percent, free = sentence.groups()
    row = capture_table()["bankchurn"]
    gke = cost.workloads(capturing["gke"].objects)
    (bankchurn,) = [w for w in gke if w.name == "bankchurn"]
    price = cost.workload_hour(bankchurn, PRICES["gke"])
    printed_bills = set()
    # $0.031 a million is 0.0305 to 0.0315: the CPU of either end, from per_million's own arithmetic.
    for per_million in (row["explained_pods"] - 0.0005, row["explained_pods"] + 0.0004999):
        cpu_ms = per_million * bankchurn.cpu_target * 3.6 / price
        cpu = figures(cpu_ms, row["explained_bytes"], row["single_bytes"])
        said = {}
        for overlay in OVERLAYS:
            lines = cost.report(
                overlay,
                capturing[overlay].objects,
                PRICES[overlay],
                cpu=cpu,
                loads={"bankchurn": 1000},
                kind=EXPLAINED,
            )
            said[overlay] = (
                printed(
                    lines, rf"^  at bankchurn 1000/s \({re.escape(EXPLAINED)}\): bankchurn (\d+) pods: {BILL}"
                )
                + printed(
                    lines,
                    r"^  bankchurn captures 100 % of 1000/s at [\d,]+ bytes a line: ([\d,]+) GiB a month",
                )
                + printed(lines, r"^  the log lines: \$([\d,]+) a month")
            )
        printed_bills.add((said["gke"], said["eks"]))
    assert len(printed_bills) == 1, f"the table's price per million leaves the pods open: {printed_bills}"
    ((gke_said, eks_said),) = printed_bills
    assert gke_said == (pods, gke_total, gib, gke_logs)
    assert eks_said == (pods, eks_total, gib, eks_logs)
    # A hundredth of the lines, against the allowance the tool takes off.
    small = cost.report(
        "gke", capturing["gke"].objects, PRICES["gke"], cpu=cpu, loads={"bankchurn": 10}, kind=EXPLAINED
    )
    assert printed(
        small, r"^  bankchurn captures 100 % of 10/s at [\d,]+ bytes a line: ([\d,]+) GiB a month"
    ) == (one_percent,)
    assert number(free) == PRICES["gke"]["log_ingestion"]["free_gib_month"]
    assert number(one_percent) < number(free)


def test_a_given_loads_bills_are_the_tools_at_the_pods_they_name() -> None:
    sentence = LOAD_SENTENCE.search(FLAT)
    assert sentence, "no sentence pricing 1,000 BankChurn predictions a second"
    pods, gke_total, eks_total, eks_nodes, gke_each, eks_each, *each = sentence.groups()
    for overlay, single_total, each_total in (("gke", gke_total, gke_each), ("eks", eks_total, eks_each)):
        objects = render(overlay).objects
        found = cost.workloads(objects)
        floor = cost.at_scale(found, "floor")
        alone = cost.bill(objects, found, PRICES[overlay], {**floor, "bankchurn": int(pods)})
        assert f"{alone.total:,.0f}" == single_total, overlay
        if overlay == "eks":
            assert alone.nodes == int(eks_nodes)
        loaded = dict(zip(SERVICES.values(), map(int, each), strict=True))
        every = cost.bill(objects, found, PRICES[overlay], {**floor, **loaded})
        assert f"{every.total:,.0f}" == each_total, overlay
