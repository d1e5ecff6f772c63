"""Measure article extraction quality and speed on sample/pages against bare trafilatura."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trafilatura

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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    # htmldate/dateparser build their locale tables on first use (seconds, once per process);
    # pay that before timing so the figures are per page in a warm worker.
    first = min(PAGES.glob("*.html")).read_bytes()
    extract_article(first, "https://example.com/")
    trafilatura.extract(first)
    evaluate("trafilatura.extract(raw)", lambda body, page: trafilatura.extract(body) or "")
    evaluate("extract_article fast=False",
             lambda body, page: extract_article(body, str(page["url"] or "")).text)
    evaluate("extract_article fast=True",
             lambda body, page: extract_article(body, str(page["url"] or ""), fast=True).text)


if __name__ == "__main__":
    main()
