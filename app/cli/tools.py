"""Statistics commands: ``compare`` and ``power`` (local, JSON in and out) and ``rescore``
(server side: recompute a stored verdict from the stored run results)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from app.core.validation import describe_errors

if TYPE_CHECKING:
    from app.verdicts.service import RescoreReport

console = Console()
err = Console(stderr=True)


def _read_json(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{source} is not JSON: {exc}") from exc


def _invalid(exc: ValidationError) -> typer.Exit:
    for e in describe_errors(exc):
        err.print(f"[red]invalid[/] {e['loc']}: {e['msg']}")
    return typer.Exit(2)


async def _rescore(submission_id: int, version: int | None, write: bool) -> tuple[list[str], str]:
    from app.core.config import get_settings
    from app.core.db import Database
    from app.submissions import repository
    from app.verdicts.service import rescore

    settings = get_settings()
    db = Database(settings.effective_database_url)
    try:
        async with db.session(write=write) as session:
            submission = await repository.get_submission(session, submission_id)
            if submission is None:
                raise typer.BadParameter(f"no submission {submission_id}")
            number = version or submission.latest_version
            row = await repository.get_version(session, submission_id, number)
            if row is None:
                raise typer.BadParameter(f"submission {submission_id} has no version {number}")
            result = await rescore(session, row, write=write)
        return result.differences, str(result.recomputed["claim_verdict"])
    finally:
        await db.dispose()


async def _rescore_all(write: bool) -> RescoreReport:
    from app.core.config import get_settings
    from app.core.db import Database
    from app.verdicts.service import rescore_all

    def progress(report: RescoreReport, total: int) -> None:
        err.print(f"rescored {report.checked:,} of {total:,} ({report.different:,} differ)")

    db = Database(get_settings().effective_database_url)
    try:
        return await rescore_all(db, write=write, progress=progress)
    finally:
        await db.dispose()


def _print_all(report: RescoreReport, write: bool, shown: int = 20) -> None:
    if report.checked == 0:
        console.print("no finished version to rescore")
        return
    if not report.differing:
        console.print(f"[green]identical[/]: all {report.checked:,} stored verdicts are reproduced")
        return
    console.print(
        f"[yellow]{report.different:,} of {report.checked:,} verdicts differ[/] "
        f"({report.identical:,} identical):"
    )
    for submission_id, number, differences in report.differing[:shown]:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        console.print(f"  submission {submission_id} v{number}: {differences[0]}{more}")
    if report.different > shown:
        console.print(f"  … and {report.different - shown:,} more versions")
    if write:
        console.print("the recomputed verdicts were stored")


def register(app: typer.Typer) -> None:
    @app.command()
    def compare(
        source: Annotated[str, typer.Argument(help="JSON file, or - for stdin")] = "-",
    ) -> None:
        """Compare claimed and reproduced numbers the way Reprise does (JSON in, JSON out)."""
        from app.tools.schemas import CompareRequest
        from app.tools.service import compare as run

        try:
            request = CompareRequest.model_validate(_read_json(source))
        except ValidationError as exc:
            raise _invalid(exc) from None
        console.print_json(run(request).model_dump_json())

    @app.command()
    def power(
        sd: Annotated[float, typer.Option(help="expected seed-to-seed sd")],
        tolerance: Annotated[float, typer.Option(help="the equivalence margin")],
        alpha: Annotated[float, typer.Option()] = 0.05,
        mode: Annotated[str, typer.Option(help="one_sample or two_sample")] = "one_sample",
        claim_n: Annotated[int | None, typer.Option(help="claimed seeds (two_sample)")] = None,
        true_difference: Annotated[float, typer.Option()] = 0.0,
        seeds: Annotated[int, typer.Option(help="fresh seeds")] = 5,
        target_power: Annotated[float, typer.Option()] = 0.8,
    ) -> None:
        """TOST power for a number of seeds, and the seeds needed for a target power."""
        from app.tools.schemas import PowerRequest
        from app.tools.service import power as run

        try:
            request = PowerRequest.model_validate(
                {
                    "sd": sd,
                    "tolerance": tolerance,
                    "alpha": alpha,
                    "mode": mode,
                    "claim_n": claim_n,
                    "true_difference": true_difference,
                    "seeds": seeds,
                    "target_power": target_power,
                }
            )
        except ValidationError as exc:
            raise _invalid(exc) from None
        console.print_json(run(request).model_dump_json())

    @app.command()
    def rescore(
        submission_id: Annotated[int | None, typer.Argument(show_default=False)] = None,
        version: Annotated[int | None, typer.Option(help="default: the latest")] = None,
        write: Annotated[bool, typer.Option(help="store the recomputed verdict")] = False,
        all_: Annotated[
            bool, typer.Option("--all", help="every finished version, e.g. after an upgrade")
        ] = False,
    ) -> None:
        """Recompute a verdict from the stored run results; exit 1 if it differs."""
        if all_ == (submission_id is not None):
            raise typer.BadParameter("give a SUBMISSION_ID or --all, not both")
        if all_:
            if version is not None:
                raise typer.BadParameter("--version needs a SUBMISSION_ID, not --all")
            report = asyncio.run(_rescore_all(write))
            _print_all(report, write)
            if report.differing:
                raise typer.Exit(1)
            return
        assert submission_id is not None
        differences, verdict = asyncio.run(_rescore(submission_id, version, write))
        if not differences:
            console.print(f"[green]identical[/]: the stored verdict ({verdict}) is reproduced")
            return
        console.print(
            f"[yellow]{len(differences)} difference(s)[/] (recomputed verdict: {verdict}):"
        )
        for line in differences:
            console.print(f"  {line}")
        if write:
            console.print("the recomputed verdict was stored")
        raise typer.Exit(1)
