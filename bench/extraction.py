"""Measure article extraction quality and speed on sample/pages against bare trafilatura.

Bare trafilatura runs with its own XPath expressions; newsmon's run with the rewritten ones
(parsers.xpath_rewrites). The last part times extract_article with and without the rewrites,
in alternating rounds so that the machine's drift falls on both alike.

Usage: .venv/bin/python -m bench.extraction [--rounds 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trafilatura

from parsers import xpath_rewrites
from parsers.articles import extract_article

PAGES = Path(__file__).resolve().parent.parent / "sample" / "pages"


def score(text: str, page: dict[str, Any]) -> tuple[int, int]:
    """Return (with-snippets found, without-snippets absent) the way upstream scores them."""
    flat = " ".join(text.split())
    found = sum(" ".join(s.split()) in flat for s in page["with"])
    absent = sum(" ".join(s.split()) not in flat for s in page["without"])
    return found, absent


def evaluate(name: str, run: Callable[[bytes, dict[str, Any]], str]) -> None:
    """Print quality and per-page time of one extraction function."""
    truth = json.loads((PAGES / "truth.json").read_text(encoding="utf-8"))
    found = absent = 0
    times: list[float] = []
    for page in truth:
        body = (PAGES / str(page["file"])).read_bytes()
        start = time.perf_counter()
        text = run(body, page)
        times.append(time.perf_counter() - start)
        f, a = score(text, page)
        found += f
        absent += a
    n_with = sum(len(p["with"]) for p in truth)
    n_without = sum(len(p["without"]) for p in truth)
    tp, fn, fp = found, n_with - found, n_without - absent
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall)
    print(f"{name:28} with {found}/{n_with}  without-absent {absent}/{n_without}  "
          f"P {precision:.3f} R {recall:.3f} F1 {f1:.3f}  "
          f"mean {1000 * statistics.mean(times):.1f} ms/page  median {1000 * statistics.median(times):.1f}")


def main() -> None:
    """Run the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="rounds of the rewrites' A/B (0: skip it)")
    args = parser.parse_args()
    # htmldate/dateparser build their locale tables on first use (seconds, once per process);
    # pay that before timing so the figures are per page in a warm worker.
    first = min(PAGES.glob("*.html")).read_bytes()
    extract_article(first, "https://example.com/")
    trafilatura.extract(first)
    xpath_rewrites.uninstall()
    evaluate("trafilatura.extract(raw)", lambda body, page: trafilatura.extract(body) or "")
    xpath_rewrites.install()
    evaluate("extract_article fast=False",
             lambda body, page: extract_article(body, str(page["url"] or "")).text)
    evaluate("extract_article fast=True",
             lambda body, page: extract_article(body, str(page["url"] or ""), fast=True).text)
    if args.rounds > 0:
        compare_rewrites(args.rounds)


def compare_rewrites(rounds: int) -> None:
    """Print extract_article's CPU time per page without and with the XPath rewrites."""
    bodies = [page.read_bytes() for page in sorted(PAGES.glob("*.html"))]
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_number in range(rounds):
        for rewrites in ((False, True) if round_number % 2 == 0 else (True, False)):
            (xpath_rewrites.install if rewrites else xpath_rewrites.uninstall)()
            start = time.process_time()
            for body in bodies:
                extract_article(body, "https://example.com/")
            times[rewrites].append(1000 * (time.process_time() - start) / len(bodies))
    xpath_rewrites.install()
    ratios = [with_rewrites / without for with_rewrites, without in zip(times[True], times[False], strict=True)]
    print("extract_article CPU ms/page, round by round:")
    print("  trafilatura's XPath: " + " ".join(f"{t:5.2f}" for t in times[False]))
    print("  rewritten XPath:     " + " ".join(f"{t:5.2f}" for t in times[True]))
    print(f"  rewritten / trafilatura's, per round: {' '.join(f'{r:.3f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
