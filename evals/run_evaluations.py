"""Score the assistant on the eval cases: `python -m evals.run_evaluations [--cases PATH ...] [--base-url URL]
[--concurrency N] [--out DIR] [--thresholds FILE] [--from-feedback OUT.json]`.

Exit code: 0 when every threshold holds, 1 when one is missed, 2 for unusable input (cases,
thresholds, options). In-process runs use the embedded store in their own data dir, never the app's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

from evals.models import CaseFileError, load_cases
from evals.summary import ThresholdsError, check_thresholds, load_thresholds, per_category, summarize

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
HELDOUT = Path(__file__).resolve().parent / "heldout"
EXIT_OK, EXIT_THRESHOLD, EXIT_USAGE = 0, 1, 2
CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens, so connections are refused at once


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evals.run_evaluations", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", type=Path, action="extend", metavar="PATH",
                   help="case files or folders (default: evals/test_cases/)")
    p.add_argument("--base-url", help="score a running server's POST /api/chat instead of the in-process agent")
    p.add_argument("--magic-key", default=os.environ.get("EVAL_MAGIC_KEY"),
                   help="magic key sent with --base-url (default: $EVAL_MAGIC_KEY)")
    p.add_argument("--concurrency", type=int, default=4, help="cases in flight at once (default 4)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results root; each run writes <out>/<timestamp>/")
    p.add_argument("--thresholds", type=Path, default=None, help="thresholds file (default evals/thresholds.json)")
    p.add_argument("--k", type=int, default=5, help="rank cut-off for hit@k, recall@k and MRR (default 5)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="embedded data dir for in-process runs (default .data/evals/<embedder>)")
    p.add_argument("--no-judge", action="store_true", help="skip the LLM judge even when OPENAI_API_KEY is set")
    p.add_argument("--judge-model", default=os.environ.get("EVAL_JUDGE_MODEL"), help="judge model (default: OPENAI_MODEL)")
    p.add_argument("--from-feedback", type=Path, metavar="OUT.json",
                   help="write draft cases from stored thumbs-down feedback to OUT.json and exit")
    p.add_argument("--live-tools", action="store_true",
                   help="let in-process tools reach the internet (NuGet); by default they get a closed local port")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--heldout", action="store_true",
                   help="also ingest evals/heldout/kb through the CLI (in-process runs) and ask its held-out "
                        "questions (category 'unseen'): retrieval on articles nobody tuned for")
    return p


def eval_settings(args: argparse.Namespace):
    """The app's settings from the environment, pinned to an offline, private embedded store."""
    from services.core.settings import Settings

    base = Settings()
    mode = "openai" if base.openai_api_key and not base.openai_base_url else "local"
    data_dir = args.data_dir or ROOT / ".data" / "evals" / mode
    update = {"environment": "development", "mongodb_uri": None, "data_dir": data_dir, "mcp_servers": [],
              "enable_web_search": False, "rate_limit_chat": 0, "rate_limit_feedback": 0}
    if not args.live_tools:
        # Offline and repeatable: NuGet calls fail at once, so tool cases score the routing (was the
        # tool called?), not nuget.org's answer of the day.
        update.update(nuget_search_urls=[CLOSED_PORT + "/query"], nuget_registration_url=CLOSED_PORT + "/registration/",
                      nuget_flat_container_url=CLOSED_PORT + "/flat/")
    return base.model_copy(update=update)


async def ingest_heldout(settings) -> None:
    """`python main.py ingest kb evals/heldout/kb` into the eval's data dir, as a user would."""
    from services.cli import run_command

    with open(os.devnull, "w") as sink:
        code = await run_command(["ingest", "kb", str(HELDOUT / "kb")], settings=settings, out=sink)
    if code != 0:
        raise RuntimeError(f"ingesting the held-out articles failed (exit {code})")


async def from_feedback(out: Path, settings) -> int:
    from evals.feedback_cases import drafts_from_feedback, write_drafts
    from services.storage.database import open_database
    from services.core.settings import Settings

    if out.suffix.lower() != ".json":
        print(f"--from-feedback writes JSON: give a .json path (got {out})", file=sys.stderr)
        return EXIT_USAGE
    settings = settings or Settings()
    try:
        database = await open_database(settings)
    except Exception as exc:  # e.g. the embedded data dir is held by a running server
        print(f"cannot open the database: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        drafts, problems = await drafts_from_feedback(database)
    finally:
        await database.close()
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    try:
        added, total = write_drafts(out, drafts)
    except CaseFileError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    print(f"{added} new draft case(s) from {len(drafts)} thumbs-down answer(s) written to {out} ({total} in the file). "
          "Review them before adding the file to evals/test_cases/.")
    return EXIT_OK


async def run(argv: list[str] | None = None, *, settings=None) -> int:
    """The whole CLI; `settings` lets tests run the in-process agent on their own data dir."""
    args = build_parser().parse_args(argv)
    if args.from_feedback:
        return await from_feedback(args.from_feedback, settings)
    if args.concurrency < 1 or args.k < 1:
        print("--concurrency and --k must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.heldout:
        args.cases = [*(args.cases or [ROOT / "evals" / "test_cases"]), HELDOUT / "chat_unseen.json"]
    try:
        cases = load_cases(args.cases)
        thresholds = load_thresholds(args.thresholds)
        check_thresholds(summarize([], [], k=args.k), thresholds)  # unknown metric names fail before the run
    except (CaseFileError, ThresholdsError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE

    from tqdm import tqdm

    from evals.judge import open_judge
    from evals.report import new_run_dir, write_report
    from evals.runner import HttpTarget, InProcessTarget, run_categorization, run_chat_cases

    started_at = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    notes: list[str] = []
    async with AsyncExitStack() as stack:
        if args.base_url:
            target = HttpTarget(args.base_url, magic_key=args.magic_key)
            stack.push_async_callback(target.close)
            model, key_settings = f"server at {args.base_url}", settings
        else:
            from services.lifespan import open_services

            try:
                settings = settings or eval_settings(args)
            except ValueError as exc:  # pydantic's ValidationError: a bad setting in the environment or .env
                print(f"the settings are not usable: {exc}", file=sys.stderr)
                return EXIT_USAGE
            if not args.quiet:
                print(f"opening the assistant in process (data dir {settings.data_dir}; the first run embeds the "
                      "knowledge base)…", file=sys.stderr)
            if args.heldout:
                await ingest_heldout(settings)
            services = await stack.enter_async_context(open_services(settings))
            target = InProcessTarget(services)
            model, key_settings = settings.model_mode, settings
        if key_settings is None:  # a remote server: the judge's key comes from this shell
            from services.core.settings import Settings

            try:
                key_settings = Settings()
            except ValueError as exc:
                print(f"the settings are not usable: {exc}", file=sys.stderr)
                return EXIT_USAGE
        judge, note = (None, "LLM judge skipped: --no-judge.") if args.no_judge else open_judge(
            api_key=key_settings.openai_api_key, base_url=key_settings.openai_base_url,
            model=args.judge_model or key_settings.openai_model)
        notes.append(note)
        if judge is not None:
            stack.push_async_callback(judge.close)
        with tqdm(total=len(cases.chat), desc="chat cases", unit="case", disable=args.quiet, file=sys.stderr) as bar:
            chat = await run_chat_cases(target, cases.chat, concurrency=args.concurrency, k=args.k, judge=judge,
                                        on_done=lambda _result: bar.update(1))
    tags = run_categorization(cases.categorization)

    summary = summarize(chat, tags, k=args.k)
    try:
        checks = check_thresholds(summary, thresholds)
    except ThresholdsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    out_dir = new_run_dir(args.out)
    run_info = {"started": started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "seconds": time.perf_counter() - clock, "target": args.base_url or "in-process", "model": model,
                "case_files": sorted(set(cases.origin.values())), "k": args.k, "concurrency": args.concurrency}
    report = write_report(out_dir, run=run_info, summary=summary, categories=per_category(chat, tags),
                          checks=checks, chat=chat, tags=tags, notes=notes, k=args.k)
    _print_summary(summary, checks, report, notes)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_THRESHOLD


def _print_summary(summary: dict, checks, report: Path, notes: list[str]) -> None:
    for check in checks:
        value = "n/a" if check.value is None else f"{check.value:.3f}"
        sign = ">=" if check.bound == "min" else "<="
        print(f"{'ok  ' if check.ok else 'MISS'} {check.metric:<26} {value:>7}  ({sign} {check.threshold}) {check.note}")
    for note in notes:
        print(note)
    print(f"{summary['chat_cases']} chat + {summary['categorization_cases']} categorization cases; report: {report}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import bm25s  # noqa: F401  (it sets its logger to DEBUG on import, so import it before quieting it)

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    logging.getLogger("services.agent.nuget_tools").setLevel(logging.ERROR)  # failed NuGet calls are expected offline
    return asyncio.run(run(argv))


if __name__ == "__main__":
    sys.exit(main())
