"""``medimg pacs query|pull|push``: find studies on a PACS, pull them into folders, push files.

Every command takes the server from ``--server pacs.yaml`` (see
:mod:`medimg.io.pacs.server`) and/or ``--url``, ``--username``, ``--password-env``
(the name of an environment variable holding the password: a password typed on the
command line would show in the process list and the shell history). Nothing prints or
logs the password.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import EXIT_FAILURE, _console, pacs_app

ServerOption = Annotated[
    Optional[Path],
    typer.Option("--server", help="YAML server file: url, username, password (or password_env), "
                 "ae_title, retries... Options below override its keys."),
]
UrlOption = Annotated[Optional[str], typer.Option("--url", help="DICOMweb root, http://HOST:PORT/dicom-web.")]
UserOption = Annotated[Optional[str], typer.Option("--username", help="HTTP user name.")]
PasswordEnvOption = Annotated[
    Optional[str],
    typer.Option("--password-env", metavar="NAME", help="Read the password from this environment variable."),
]
RetriesOption = Annotated[
    Optional[int],
    typer.Option("--retries", min=1, help="Attempts when the server cannot be reached (waits double from 1 s)."),
]


def _client(server: Optional[Path], url: Optional[str], username: Optional[str],
            password_env: Optional[str], retries: Optional[int]):
    from ..io.pacs import connect, load_server

    return connect(load_server(server, url=url, username=username, password_env=password_env, retries=retries))


def _print_rows(rows: list[dict[str, str]], title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    columns = list(rows[0]) if rows else []
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(r[c] for c in columns))
    _console().print(table)


def _write_csv(rows: list[dict[str, str]], path: Path) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)


@pacs_app.command("query")
def query(
    server: ServerOption = None,
    url: UrlOption = None,
    username: UserOption = None,
    password_env: PasswordEnvOption = None,
    retries: RetriesOption = None,
    patient_id: Annotated[Optional[str], typer.Option(help="PatientID (* and ? are wildcards).")] = None,
    accession: Annotated[Optional[str], typer.Option(help="AccessionNumber.")] = None,
    modality: Annotated[Optional[str], typer.Option(help="A modality the study holds (CT, MR...); "
                                                    "with --study, the series' modality.")] = None,
    date_from: Annotated[Optional[str], typer.Option(help="Earliest study date, YYYYMMDD or YYYY-MM-DD.")] = None,
    date_to: Annotated[Optional[str], typer.Option(help="Latest study date, YYYYMMDD or YYYY-MM-DD.")] = None,
    description: Annotated[Optional[str], typer.Option(help="Study (with --study: series) description; "
                                                       "* wildcards, e.g. '*chest*'.")] = None,
    study: Annotated[Optional[str], typer.Option(help="List the series of this StudyInstanceUID.")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many studies.")] = None,
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Also write the rows to this CSV file.")] = None,
) -> None:
    """List the studies matching the filters (QIDO-RS), or the series of one study (--study)."""
    from ..io.pacs import query_series, query_studies

    client = _client(server, url, username, password_env, retries)
    if study is not None:
        rows = query_series(client, study, modality=modality, description=description)
        title = f"{len(rows)} series in study {study}"
    else:
        rows = query_studies(client, patient_id=patient_id, accession=accession, modality=modality,
                             date_from=date_from, date_to=date_to, description=description, limit=limit)
        title = f"{len(rows)} study(ies) on {client.server.url}"
    _print_rows(rows, title)
    if csv is not None:
        _write_csv(rows, csv)


@pacs_app.command("pull")
def pull(
    study: Annotated[str, typer.Argument(metavar="STUDY_UID", help="StudyInstanceUID to pull.")],
    output_dir: Annotated[Path, typer.Argument(help="Folder to write OUTPUT_DIR/<study>/<series>/<sop>.dcm into.")],
    series: Annotated[
        Optional[list[str]], typer.Option("--series", help="Only this SeriesInstanceUID (repeatable).")
    ] = None,
    deid: Annotated[bool, typer.Option("--deid", help="De-identify on the way in (medimg deid's PS3.15 basic "
                                       "profile); OUTPUT_DIR must then be empty.")] = False,
    deid_secret: Annotated[Optional[str], typer.Option(help="With --deid: key for UIDs, pseudonyms and date "
                                                       "shifts (as medimg deid --secret).")] = None,
    server: ServerOption = None,
    url: UrlOption = None,
    username: UserOption = None,
    password_env: PasswordEnvOption = None,
    retries: RetriesOption = None,
) -> None:
    """Pull a study (or some of its series) from the PACS into OUTPUT_DIR (WADO-RS)."""
    from ..io.pacs import pull as pull_study

    client = _client(server, url, username, password_env, retries)
    options = {"secret": deid_secret} if deid and deid_secret else {}
    report = pull_study(client, study, output_dir, series_uids=series, deid=options or deid)
    _console().print(report.summary(), markup=False)
    if report.deid is not None and report.deid.n_failed:
        raise typer.Exit(EXIT_FAILURE)


@pacs_app.command("push")
def push(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="DICOM files or folders (searched recursively).")],
    server: ServerOption = None,
    url: UrlOption = None,
    username: UserOption = None,
    password_env: PasswordEnvOption = None,
    retries: RetriesOption = None,
    dimse: Annotated[bool, typer.Option("--dimse", help="Send with DIMSE C-STORE to the server file's host, "
                                        "dicom_port and called_ae_title instead of STOW-RS.")] = False,
) -> None:
    """Store DICOM files on the PACS (STOW-RS, or C-STORE with --dimse); exit 1 if any file was not stored."""
    from ..io.pacs import load_server, store_dimse
    from ..io.pacs import push as push_files

    if dimse:
        report = store_dimse(load_server(server, url=url, username=username, password_env=password_env,
                                         retries=retries), paths)
    else:
        report = push_files(_client(server, url, username, password_env, retries), paths)
    err = _console(stderr=True)
    for path, reason in report.failures[:20]:
        err.print(f"failed: {path}: {reason}", markup=False)
    if report.n_failed > 20:
        err.print(f"... and {report.n_failed - 20} more", markup=False)
    _console().print(report.summary(), markup=False)
    if report.n_failed:
        raise typer.Exit(EXIT_FAILURE)
