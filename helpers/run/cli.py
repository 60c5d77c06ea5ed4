"""Command line: `python -m helpers {data,run,report,compare}` (also installed as `cinic10`). Each
command imports what it runs when it runs: --help, --dry-run and a refusal answer at once."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time

from helpers.base import StudyError, resolve


def _data(args) -> None:
    import numpy as np

    from helpers.data import load_dataset

    t0 = time.perf_counter()
    ds = load_dataset(args.dataset, valid_fraction=args.valid_fraction, seed=args.seed)
    print(ds.counts().to_string())
    if ds.is_cinic10 or len(set(ds["test"].sources)) > 1:
        for split in ("train", "valid", "test"):
            src, n = np.unique(ds[split].sources, return_counts=True)
            print(f"{split} sources: " + ", ".join(f"{s} {c}" for s, c in zip(src, n, strict=True)))
    print(f"dataset      {ds.name} ({ds.kind})\nfingerprint  {ds.fingerprint}\n"
          f"cache        {ds.cache}\ndecoded in   {ds.meta['decode_seconds']} s (first time); "
          f"this call took {time.perf_counter() - t0:.1f} s")
    if ds.note:
        print(f"note         {ds.note}")


def _run(args) -> None:
    only = [o.strip() for o in (args.only or "").split(",") if o.strip()]
    if args.only is not None and not only:  # "" or "," must not mean every notebook
        raise StudyError(f"--only {args.only!r}: names no notebook; give numbers, e.g. --only 01,02")
    if args.json and not args.dry_run:
        raise StudyError("--json goes with --dry-run (a run's record is <out>/run.json)")
    if not args.dry_run:
        from helpers.run.runner import run

        run(args.profile, dataset=args.dataset, out=args.out, only=only, overrides=args.param,
            report=not args.no_report, log_output=args.verbose)
        return
    # the dry run: from the profile and the parameters cells alone (no data touched)
    from helpers.run.profiles import explain

    found = explain(args.profile, dataset=args.dataset, out=args.out, only=only,
                    overrides=args.param)
    if args.json:
        print(json.dumps(found, indent=2))
        return
    print(f"profile {found['profile']} (dry run: nothing runs; origin: study = the study's own "
          "setting, project = the project's choice, profile = a study setting this profile "
          "changes, -p = given on the command line, run = where and on what it runs)")
    for stem, params in found["notebooks"].items():
        print(f"\n{stem}")
        width = max(map(len, params))
        for key, item in params.items():
            print(f"  {key:<{width}}  {item['value']!r:<42}  {item['origin']}")


def _report(args) -> None:
    from helpers.run.report import build_report

    run_dir = resolve(args.run_dir)
    if not (run_dir / "run.json").exists():
        raise StudyError(f"{run_dir}: not a run folder (no run.json); run `python -m helpers "
                         "run` first")
    build_report(run_dir)


def _compare(args) -> None:
    from helpers.run.compare import compare

    compare(args.run_dirs, out=args.out)


def parser() -> argparse.ArgumentParser:
    """The commands and their options."""
    top = argparse.ArgumentParser(prog="python -m helpers", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    dataset = "auto | cinic10 | synthetic | PATH"
    p = sub.add_parser("data", help="download, verify, decode, cache and summarise a dataset")
    p.add_argument("--dataset", default="auto", help=f"{dataset} (default auto)")
    p.add_argument("--valid-fraction", type=float, default=0.1,
                   help="share of train carved as valid when there is no valid/")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_data)
    p = sub.add_parser("run", help="execute the notebooks with papermill and build the report")
    p.add_argument("--profile", default="quick", help="smoke | quick | full | PATH.yaml (default quick)")
    p.add_argument("--dataset", default=None, help=f"{dataset} (default: the profile's)")
    p.add_argument("--out", default=None, help="run folder (default reports/<profile>)")
    p.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 01,02")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parameter (NN_name.NAME=VALUE for one notebook); repeatable")
    p.add_argument("--no-report", action="store_true", help="skip building report.html/pdf")
    p.add_argument("-v", "--verbose", action="store_true", help="stream the notebooks' output")
    p.add_argument("--dry-run", action="store_true",
                   help="print every notebook's effective parameters and their origins; run nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: as JSON")
    p.set_defaults(func=_run)
    p = sub.add_parser("report", help="rebuild report.html/pdf from a run's executed notebooks")
    p.add_argument("run_dir", help="a run folder, e.g. reports/quick")
    p.set_defaults(func=_report)
    p = sub.add_parser("compare", help="runs' findings side by side: compare.html/pdf, text table")
    p.add_argument("run_dirs", nargs="+", metavar="RUN", help="run folders, the first the baseline")
    p.add_argument("--out", default=None, help="folder for compare.html (default reports/compare)")
    p.set_defaults(func=_compare)
    return top


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is: it unwinds as Ctrl-C does, and exits 143."""


def _terminated(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    in_main = threading.current_thread() is threading.main_thread()  # (signals: main thread only)
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main else None
    try:
        args.func(args)
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: what was half-built is removed
        print("terminated" if isinstance(err, Terminated) else "interrupted", file=sys.stderr)
        # papermill's tasks cut short hold the kernel's last reply (a Ray driver's SIGTERM is
        # a SystemExit traceback in the cell): asyncio would log each, ~270 lines, at exit
        logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
        return 143 if isinstance(err, Terminated) else 130
    except Exception as err:  # a notebook's failure, or the machine's: a full disk, a read-only
        from helpers.run.runner import NotebookFailed  # folder (not the code's: those raise)

        if not isinstance(err, NotebookFailed | OSError):
            raise
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"error: {where}{getattr(err, 'strerror', None) or err}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
