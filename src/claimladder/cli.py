"""The ``claimladder`` command.

Exit codes: 0 success (every evaluated rung passed or warned), 1 a rung failed,
2 a usage or input error (one-paragraph message, no traceback), 3 an internal error.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

app = typer.Typer(
    name="claimladder",
    help="Verify a medical-imaging AI claim by climbing a verification ladder.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

_STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "red",
                 "not_evaluable": "bright_black", "not_evaluated": "bright_black"}
EXIT_FAILED_RUNG, EXIT_USER_ERROR, EXIT_INTERNAL = 1, 2, 3


def _guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn claimladder errors into a message and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ._core import ClaimladderError

        try:
            return func(*args, **kwargs)
        except ClaimladderError as exc:
            err_console.print(Text.assemble(("Error: ", "bold red"), str(exc)), soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("CLAIMLADDER_DEBUG"):
                raise
            err_console.print(Text.assemble(
                ("Internal error ", "bold red"),
                f"({type(exc).__name__}: {exc}). This is a bug in claimladder, not in your data; "
                "rerun with CLAIMLADDER_DEBUG=1 for the traceback and report it."), soft_wrap=True)
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


def _print_summary(evidence: Any, paths: dict[str, Path], *, elapsed: float) -> None:
    from ._core import Rung

    table = Table(title=Text(str(evidence.claim.get("title", "claimladder"))),
                  title_justify="left")
    table.add_column("Rung", justify="right")
    table.add_column("Question")
    table.add_column("Verdict")
    table.add_column("Why", overflow="fold")
    for v in evidence.verdicts:
        style = _STATUS_STYLE.get(v.status, "")
        table.add_row(str(int(v.rung)), v.rung.title,
                      Text(v.status.replace("_", " "), style=style), Text(v.summary))
    console.print(table, markup=True)
    top = evidence.highest_rung
    reached = f"{top} ({Rung(top).title})" if top >= 0 else "none"
    console.print(f"Highest rung reached: [bold]{reached}[/]")
    for name, path in paths.items():
        console.print(Text(f"{name}: {path}"))
    console.print(f"Finished in {elapsed:.1f} s.", style="bright_black")


def _progress():
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True,
                    disable=not err_console.is_terminal)


def _parallel_options(workers: int | None, scheduler: str | None, cache: bool,
                      out: Path) -> tuple[Any, Any]:
    """The executor and the checkpoint that --workers, --scheduler and --no-cache ask for."""
    from .parallel import CACHE_DIRNAME, Checkpoint, make_executor

    executor = make_executor(workers=workers, scheduler=scheduler)
    return executor, (Checkpoint(out / CACHE_DIRNAME) if cache else None)


_WORKERS_HELP = ("Local worker processes for the image-level work (default: in-process; "
                 "with --scheduler local, the workers of a local Dask cluster).")
_SCHEDULER_HELP = ("Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: "
                   "$DASK_SCHEDULER_ADDRESS), or 'local' for a local Dask cluster.")
_CACHE_HELP = ("--resume (default) reuses the work units checkpointed in OUT/.claimladder-cache "
               "(image decoding, headers, predictions), so a rerun after editing criteria or "
               "text, or after an interruption, skips them; --no-cache recomputes everything.")


def _run_and_write(study: Any, out: Path, rungs: list[int] | None,
                   model: Any = None, executor: Any = None,
                   checkpoint: Any = None) -> tuple[Any, dict[str, Path]]:
    from .ladder import RUNG_RUNNERS, run_ladder
    from .report import write_report

    selected = sorted(RUNG_RUNNERS if rungs is None else set(rungs) & set(map(int, RUNG_RUNNERS)))
    with _progress() as progress:
        task = progress.add_task("Climbing the ladder", total=len(selected) + 1)
        steps: dict[str, Any] = {}

        def on_rung(rung: Any) -> None:
            progress.update(task, description=f"Rung {int(rung)}: {rung.title}", advance=1)

        def on_step(description: str, done: int, total: int) -> None:
            if description not in steps:
                steps[description] = progress.add_task(description, total=total)
            progress.update(steps[description], completed=done)

        try:
            evidence = run_ladder(study, rungs=rungs, on_rung=on_rung, progress=on_step,
                                  model=model, executor=executor, checkpoint=checkpoint)
        finally:
            if executor is not None:
                executor.close()
        progress.update(task, description="Writing the report")
        paths = write_report(evidence, out)
        progress.update(task, advance=1)
    return evidence, paths


def _parse_rungs(value: str | None) -> list[int] | None:
    from ._core import UsageError

    if value is None:
        return None
    try:
        rungs = sorted({int(x) for x in value.replace(" ", "").split(",") if x})
    except ValueError:
        raise UsageError(f"--rungs must be a comma-separated list of rung numbers 0-6, "
                             f"e.g. --rungs 0,1. Got {value!r}.") from None
    if not rungs or any(r < 0 or r > 6 for r in rungs):
        raise UsageError(f"--rungs must list rung numbers between 0 and 6. Got {value!r}.")
    return rungs


def _exit_code(evidence: Any) -> int:
    return EXIT_FAILED_RUNG if any(v.status == "fail" for v in evidence.verdicts) else 0


@app.command()
@_guarded
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo study and its report.")] = Path(
        "demo-report"),
    clean: Annotated[bool, typer.Option(help="Generate the control study with no planted "
                                             "failure.")] = False,
    n_patients: Annotated[int | None, typer.Option(help="Number of patients (default: the "
                                                        "generator's).", min=20)] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random step.", min=0)] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print evidence.json to "
                                                             "stdout.")] = False,
    workers: Annotated[int | None, typer.Option(help=_WORKERS_HELP, min=1)] = None,
    scheduler: Annotated[str | None, typer.Option(help=_SCHEDULER_HELP)] = None,
    cache: Annotated[bool, typer.Option("--resume/--no-cache", help=_CACHE_HELP)] = True,
) -> None:
    """Generate the embedded demo study, train the demo model and climb the ladder.

    The demo exits 0 when it ran, whatever the verdicts: its failures are planted.
    """
    from .datasets import fit_demo_model, make_demo_study
    from .ladder import load_study, partition_image_ids

    started = time.perf_counter()
    study_dir = out / "study"
    kwargs = {} if n_patients is None else {"n_patients": n_patients}
    with _progress() as progress:
        task = progress.add_task("Generating the demo study", total=None)
        demo_study = make_demo_study(study_dir, clean=clean, rng=seed, **kwargs)
        study = load_study(demo_study.study_path)
        progress.update(task, description="Training the demo model on the development partition")
        model, _ = fit_demo_model(
            study_dir, train_image_ids=partition_image_ids(study, "development"), rng=seed)
    executor, checkpoint = _parallel_options(workers, scheduler, cache, out)
    evidence, paths = _run_and_write(study, out, None, model=model.predict_proba,
                                     executor=executor, checkpoint=checkpoint)
    if json_output:
        sys.stdout.write(evidence.to_json())
        return
    console.print(Text(f"Demo study ({'clean control' if clean else 'planted failures'}): "
                       f"{study_dir}"))
    _print_summary(evidence, paths, elapsed=time.perf_counter() - started)


@app.command()
@_guarded
def verify(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY.toml",
                                               help="The study spec file.")],
    out: Annotated[Path, typer.Option(help="Folder for evidence.json, report.html and "
                                           "summary.md.")] = Path("claimladder-report"),
    rungs: Annotated[str | None, typer.Option(help="Comma-separated rungs to run, e.g. "
                                                   "0,1 (default: all).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print evidence.json to "
                                                             "stdout.")] = False,
    workers: Annotated[int | None, typer.Option(help=_WORKERS_HELP, min=1)] = None,
    scheduler: Annotated[str | None, typer.Option(help=_SCHEDULER_HELP)] = None,
    cache: Annotated[bool, typer.Option("--resume/--no-cache", help=_CACHE_HELP)] = True,
) -> None:
    """Climb the ladder for the claim in STUDY.toml and write the evidence report."""
    from .ladder import load_study

    started = time.perf_counter()
    selected = _parse_rungs(rungs)
    study = load_study(study_file)
    executor, checkpoint = _parallel_options(workers, scheduler, cache, out)
    evidence, paths = _run_and_write(study, out, selected, executor=executor,
                                     checkpoint=checkpoint)
    if json_output:
        sys.stdout.write(evidence.to_json())
    else:
        _print_summary(evidence, paths, elapsed=time.perf_counter() - started)
    raise typer.Exit(_exit_code(evidence))


@app.command()
@_guarded
def init(
    cohort: Annotated[Path, typer.Argument(help="The cohort table (CSV or Parquet), one row "
                                                "per image.")],
    out: Annotated[Path, typer.Option(help="Where to write the study spec.")] = Path(
        "study.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented study.toml with column roles guessed from COHORT."""
    from ._core import StudySpecError, atomic_write_text
    from .io import read_table
    from .ladder import write_study_template

    if out.exists() and not force:
        raise StudySpecError(f"{out} already exists. Fix: pass --force to overwrite it, or "
                             "--out another path.")
    table = read_table(cohort)
    try:
        relative = os.path.relpath(cohort.resolve(), out.resolve().parent)
    except ValueError:  # different drives on Windows
        relative = str(cohort.resolve())
    atomic_write_text(out, write_study_template(Path(relative).as_posix(), table))
    console.print(Text(f"Wrote {out}: check the guessed column roles and every line marked "
                       f"EDIT, then run `claimladder verify {out}`."))


@app.command()
@_guarded
def report(
    evidence_file: Annotated[Path, typer.Argument(metavar="EVIDENCE.json",
                                                  help="An evidence.json written by a run.")],
    out: Annotated[Path | None, typer.Option(help="Folder for report.html and summary.md "
                                                  "(default: next to EVIDENCE.json).")] = None,
) -> None:
    """Re-render report.html and summary.md from evidence.json without recomputing."""
    from ._core import Evidence, StudySpecError, atomic_write_text
    from .report import render_html, render_markdown

    if not evidence_file.is_file():
        raise StudySpecError(f"{evidence_file}: file not found. Fix: pass the evidence.json "
                             "written by `claimladder verify` or `claimladder demo`.")
    try:
        evidence = Evidence.from_json(evidence_file.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as exc:
        raise StudySpecError(f"{evidence_file}: not a claimladder evidence file "
                             f"({type(exc).__name__}: {exc}).") from None
    folder = out or evidence_file.parent
    written = {"report.html": atomic_write_text(folder / "report.html", render_html(evidence)),
               "summary.md": atomic_write_text(folder / "summary.md", render_markdown(evidence))}
    for name, path in written.items():
        console.print(Text(f"{name}: {path}"))


@app.command()
@_guarded
def split(
    cohort: Annotated[Path, typer.Argument(help="The cohort table (CSV or Parquet).")],
    by: Annotated[str, typer.Option(help="patient, site, time, scanner, protocol or "
                                         "manufacturer.")] = "patient",
    out: Annotated[Path, typer.Option(help="Split manifest (JSON); a CSV is written next to "
                                           "it.")] = Path("split.json"),
    test_size: Annotated[float | None, typer.Option(help="Share of images for testing.")] = None,
    calibration_size: Annotated[float, typer.Option(help="Share of images for "
                                                         "calibration.")] = 0.0,
    n_splits: Annotated[int | None, typer.Option(help="k of a patient k-fold.")] = None,
    held_out: Annotated[list[str] | None, typer.Option(help="Values held out (site, scanner "
                                                            "...); repeat the option.")] = None,
    cutoff: Annotated[str | None, typer.Option(help="Time split: test from this date.")] = None,
    gap: Annotated[str | None, typer.Option(help="Time split: gap after the cutoff, e.g. "
                                                 "30D.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the assignment.", min=0)] = 0,
    image_id: Annotated[str | None, typer.Option(help="Image id column (default: "
                                                      "guessed).")] = None,
    patient_id: Annotated[str | None, typer.Option(help="Patient id column (default: "
                                                        "guessed).")] = None,
    label: Annotated[str | None, typer.Option(help="Label column (default: guessed).")] = None,
) -> None:
    """Split COHORT so that no patient is on both sides, and write a hashed manifest."""
    from ._core import UsageError, atomic_write_text, check_option
    from .cohort import ColumnRoles, load_cohort
    from .io import read_table
    from .ladder import guess_roles
    from .splits import SPLIT_BY, split_cohort, write_split

    try:
        check_option(by, SPLIT_BY, param="--by", owner="claimladder split")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    guessed = guess_roles([str(c) for c in read_table(cohort).columns])
    roles = ColumnRoles(**{
        "image_id": image_id or guessed.get("image_id", "image_id"),
        "patient_id": patient_id or guessed.get("patient_id", "patient_id"),
        "label": label or guessed.get("label", "label"),
        **{r: guessed[r] for r in ("site", "scanner", "manufacturer", "protocol", "acquired_at")
           if r in guessed}})
    manifest = split_cohort(load_cohort(cohort, roles=roles), by=by, test_size=test_size,
                            calibration_size=calibration_size, n_splits=n_splits,
                            held_out=held_out or None, cutoff=cutoff, gap=gap, seed=seed)
    write_split(manifest, out)
    atomic_write_text(out.with_suffix(".csv"), manifest.to_frame().to_csv(index=False))
    table = Table(title=Text(f"Split by {by} (sha256 {manifest.sha256[:12]})"))
    counts = manifest.counts()
    for column in counts.columns:
        table.add_column(str(column))
    for row in counts.itertuples(index=False):
        table.add_row(*(Text(str(v)) for v in row))
    console.print(table)
    console.print(Text(f"Wrote {out} and {out.with_suffix('.csv')}"))


@app.command()
@_guarded
def seal(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY.toml", help="The study spec.")],
    partition: Annotated[str, typer.Argument(help="Partition to seal, e.g. internal_test.")],
    force: Annotated[bool, typer.Option(help="Replace an existing seal.")] = False,
) -> None:
    """Seal a test partition: record its content hash; every later run verifies and logs it."""
    from .ladder import load_study, study_partitions
    from .ladder._seals import seal_path
    from .splits import seal_partition, write_seal

    study = load_study(study_file)
    _, flow, assignment = study_partitions(study)
    included = flow.included
    if partition not in assignment.masks:
        from ._core import StudySpecError, did_you_mean

        raise StudySpecError(f"{study_file}: no partition {partition!r}."
                             f"{did_you_mean(partition, list(assignment.masks))}")
    images_root = study.images_root if included.has_role("path") else None
    sealed = seal_partition(included, assignment.masks[partition], name=partition,
                            images_root=images_root)
    path = write_seal(sealed, seal_path(study.base_dir, partition), overwrite=force)
    console.print(Text(f"Sealed {partition}: {len(sealed.records)} images, sha256 "
                       f"{sealed.sha256[:16]}... -> {path}. Every `claimladder verify` now "
                       "checks it and logs the access."))


@app.command()
@_guarded
def audit(
    cohort: Annotated[Path | None, typer.Option(help="The cohort table (CSV or Parquet), one "
                                                     "row per image.")] = None,
    dicom: Annotated[Path | None, typer.Option(help="Instead of --cohort: a folder of DICOM "
                                                    "files; the cohort is built from their "
                                                    "headers (no labels).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for evidence.json, report.html and "
                                           "summary.md.")] = Path("claimladder-audit"),
    split_column: Annotated[str | None, typer.Option(help="Column assigning rows to train / "
                                                          "calib / test / external...")] = None,
    images_root: Annotated[Path | None, typer.Option(help="Folder the path column is relative "
                                                          "to (default: the cohort's).")] = None,
    image_id: Annotated[str | None, typer.Option(help="Image id column (default: "
                                                      "guessed).")] = None,
    patient_id: Annotated[str | None, typer.Option(help="Patient id column (default: "
                                                        "guessed).")] = None,
    label: Annotated[str | None, typer.Option(help="Label column (default: guessed).")] = None,
    positive_label: Annotated[str, typer.Option(help="Label value of the positive "
                                                     "class.")] = "1",
    seed: Annotated[int, typer.Option(help="Seed of the permutation tests.", min=0)] = 0,
) -> None:
    """Run the leakage checks alone (no model needed) and write evidence and a report."""
    from ._core import UsageError
    from .ladder._audit import audit_cohort, audit_dicom
    from .report import write_report

    if (cohort is None) == (dicom is None):
        raise UsageError("claimladder audit needs exactly one of --cohort COHORT.csv and "
                         "--dicom FOLDER. Example: claimladder audit --cohort cohort.csv "
                         "--split-column split --out audit/")
    if dicom is not None and any(v is not None for v in (split_column, images_root, image_id,
                                                         patient_id, label)):
        raise UsageError("--split-column, --images-root, --image-id, --patient-id and --label "
                         "apply to --cohort only; --dicom builds the cohort from the headers.")
    started = time.perf_counter()
    with _progress() as progress:
        progress.add_task("Auditing for leakage", total=None)
        if dicom is not None:
            evidence = audit_dicom(dicom, seed=seed)
        else:
            label_value: Any = int(positive_label) if positive_label.lstrip("-").isdigit() \
                else positive_label
            evidence = audit_cohort(cohort, split_column=split_column, images_root=images_root,
                                    image_id=image_id, patient_id=patient_id, label=label,
                                    positive_label=label_value, seed=seed)
        paths = write_report(evidence, out)
    table = Table(title=Text(str(evidence.claim.get("title", "Leakage audit"))),
                  title_justify="left")
    table.add_column("Check")
    table.add_column("Status")
    table.add_column("Finding", overflow="fold")
    for finding in evidence.findings:
        status = finding.status.value
        table.add_row(finding.check, Text(status.replace("_", " "),
                                          style=_STATUS_STYLE.get(status, "")),
                      Text(finding.message))
    console.print(table)
    for name, path in paths.items():
        console.print(Text(f"{name}: {path}"))
    console.print(f"Finished in {time.perf_counter() - started:.1f} s.", style="bright_black")
    failed = any(f.status.value == "fail" for f in evidence.findings)
    raise typer.Exit(EXIT_FAILED_RUNG if failed else 0)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
