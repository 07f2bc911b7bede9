"""How long `make book` takes here, from the committed run records: `python benchmarks/book_time.py`.

Every run `make book` schedules (``ebmflow.book.sweep.book_specs``) has a record with its wall time
(``results/<profile>/<chapter>/<run>.json``: ``seconds``, ``started``). Two numbers, against issue 13's targets
(45 minutes on this 2-core machine, 30 once the sampler speed-ups landed):

- **measured**: the span of the last sweep, from the first run's start to the last run's end (runs that finished
  more than ``--gap`` minutes before the others belong to an earlier sweep: counted as the projection does);
- **projected**: the records' run times scheduled as Ray does, each run to the first free slot in the book's
  order, plus the summary pages and the HTML build (``--html-seconds``, timed by ``make html`` here).

Writes benchmarks/results/book_time.json.
"""
from __future__ import annotations

import argparse
import heapq
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ebmflow.book.runner import read_runtimes  # noqa: E402
from ebmflow.book.sweep import book_specs  # noqa: E402

TARGET_MINUTES = {"before the speed-ups": 45.0, "after the speed-ups": 30.0}


def schedule(seconds: list[float], slots: int) -> float:
    """Wall time of ``seconds`` run in order, each on the first free slot of ``slots``."""
    free = [0.0] * slots
    for duration in seconds:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--slots", type=int, default=2, help="runs at a time (Ray's CPUs; default: 2, this machine)")
    parser.add_argument("--html-seconds", type=float, default=11.0, help="the HTML build, measured separately")
    parser.add_argument("--gap", type=float, default=10.0, help="minutes between two sweeps' records")
    parser.add_argument("--out", default=str(HERE / "results" / "book_time.json"))
    args = parser.parse_args()

    runs, missing = [], []
    for spec in book_specs(args.profile):
        if spec.record_path().exists():
            record = json.loads(spec.record_path().read_text())
            started = datetime.fromisoformat(record["started"])
            runs.append((spec.label, started, float(record["seconds"])))
        else:
            missing.append(spec.label)
    if missing:
        print(f"no record for {len(missing)} run(s) ({', '.join(missing[:5])}...): run `make book` first")
        return 1
    runtimes = read_runtimes()
    pages = sum(runtimes.get(page, {}).get(args.profile, 0.0) for page in ("09_ratio_sweep", "intro", "99_report"))
    projected = schedule([seconds for _, _, seconds in runs], args.slots) + pages + args.html_seconds

    last_sweep, earlier, end = [], [], None
    for run in sorted(runs, key=lambda run: run[1]):  # a sweep starts where no run had run for --gap minutes
        if end is not None and run[1] - end > timedelta(minutes=args.gap):
            earlier, last_sweep = earlier + last_sweep, []
        last_sweep.append(run)
        end = max(end or run[1], run[1] + timedelta(seconds=run[2]))
    span = (end - last_sweep[0][1]).total_seconds()
    measured = span + schedule([seconds for _, _, seconds in earlier], args.slots) + pages + args.html_seconds

    result = {"profile": args.profile, "slots": args.slots, "runs": len(runs),
              "cpu_minutes": round(sum(s for _, _, s in runs) / 60, 1),
              "measured_minutes": round(measured / 60, 1), "measured_runs_in_last_sweep": len(last_sweep),
              "projected_minutes": round(projected / 60, 1), "html_seconds": args.html_seconds,
              "summary_pages_seconds": round(pages, 1), "targets_minutes": TARGET_MINUTES,
              "within": {name: measured / 60 <= minutes for name, minutes in TARGET_MINUTES.items()}}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"`make book` at {args.profile}: {len(runs)} runs, {result['cpu_minutes']} CPU-minutes; "
          f"measured {result['measured_minutes']} min ({len(last_sweep)} runs in the last sweep, the rest projected), "
          f"projected {result['projected_minutes']} min on {args.slots} slots; targets "
          + ", ".join(f"{m:g} min {name}: {'met' if result['within'][name] else 'NOT met'}"
                      for name, m in TARGET_MINUTES.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
