"""``radtranslate translate INPUT OUTPUT``: translate a series or image, locally or on a server.

Local (default): an in-process ONNX Runtime engine over the model repository (``--models``,
else ``$RADTRANSLATE_MODEL_REPOSITORY``, else the shipped ``models/repository``). With
``--server host:port`` the input is sent to a radtranslate gRPC server instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from service.errors import OptionError
from service.inference.card import Site, Task


def register(subparsers: Any) -> None:
    """Add the ``translate`` subcommand."""
    parser = subparsers.add_parser(
        "translate",
        help="translate a DICOM series or image file (MR->sCT, CBCT->CT, low-dose->full-dose PET)",
        description="Translate INPUT (a DICOM folder/file, or .nii/.nii.gz/.mha/.nrrd) into OUTPUT (a DICOM "
        "folder, or .nii/.nii.gz/.mha) with a model chosen by --task or --model.",
    )
    parser.add_argument("input", help="DICOM folder or file, or an image file")
    parser.add_argument("output", help="output DICOM folder, or image file (.nii, .nii.gz, .mha)")
    choose = parser.add_mutually_exclusive_group(required=True)
    choose.add_argument("--task", help="mr-to-ct, cbct-to-ct or pet-denoise (needs one model for it)")
    choose.add_argument("--model", help="model name (see 'radtranslate models list')")
    parser.add_argument(
        "--site",
        help="anatomical site (brain, pelvis): with --task, chooses among the task's models; "
        "with --model, refuses a model trained for another site",
    )
    parser.add_argument("--version", help="model version (default: the highest)")
    parser.add_argument("--series-uid", help="Series Instance UID to read when the folder holds several")
    parser.add_argument(
        "--format", choices=("dicom", "nifti", "mha"), help="output format (default: by suffix)"
    )
    parser.add_argument("--models", type=Path, help="model repository folder (local mode)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per inference (0: ORT default)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--server", metavar="HOST:PORT", help="translate on a radtranslate server")
    parser.add_argument("--tls-ca", help="CA certificate of the server (enables TLS)")
    parser.add_argument("--tls-cert", help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", help="client private key (mutual TLS)")
    parser.add_argument("--token-file", help="file holding the bearer token")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


class _Bar:
    """A tqdm bar per stage, showing the stage's fraction in percent (stderr)."""

    def __init__(self, enabled: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=100,
            unit="%",
            file=sys.stderr,
            disable=not enabled,
            bar_format="{desc:>12}: {percentage:3.0f}%|{bar}| {elapsed}",
        )
        self._stage = ""

    def __call__(self, stage: str, fraction: float) -> None:
        if stage != self._stage:
            self._stage = stage
            self._bar.set_description_str(stage)
        self._bar.n = round(100 * min(max(fraction, 0.0), 1.0))
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def _check_local_only(args: argparse.Namespace) -> None:
    remote = [f for f in ("tls_ca", "tls_cert", "tls_key", "token_file") if getattr(args, f)]
    if remote and not args.server:
        flags = ", ".join("--" + f.replace("_", "-") for f in remote)
        raise OptionError(f"{flags} apply to --server only: add --server HOST:PORT or drop them.")
    if args.server and (args.models or args.threads):
        raise OptionError("--models and --threads apply to local translation: drop them with --server.")
    if args.threads < 0:
        raise OptionError(f"--threads must be >= 0, got {args.threads}: pass 0 for the default.")


def _run_local(args: argparse.Namespace, bar: _Bar) -> int:
    from service.inference.engine import Engine, EngineConfig
    from service.inference.pipeline import translate_path
    from service.inference.repository import default_repository_path

    engine = Engine(args.models or default_repository_path(), EngineConfig(intra_op_threads=args.threads))
    summary = translate_path(
        args.input,
        args.output,
        engine=engine,
        model=args.model,
        task=args.task,
        site=args.site,
        version=args.version,
        series_uid=args.series_uid,
        output_format=args.format,
        overwrite=args.overwrite,
        progress=bar,
    )
    bar.close()
    for note in summary.warnings:
        print(f"note: {note}", file=sys.stderr)
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in summary.timings_s.items())
    print(
        f"wrote {summary.output_path} ({summary.output_format.value}) with {summary.model} "
        f"v{summary.version} on {summary.provider}: {timings}"
    )
    return 0


def dicom_files(path: Path) -> list[Path]:
    """``path`` itself, or the DICOM Part 10 files under folder ``path`` (by the ``DICM`` preamble)."""
    if not path.is_dir():
        return [path]
    files = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        with file.open("rb") as handle:
            if handle.read(132)[128:] == b"DICM":
                files.append(file)
    if not files:
        raise OptionError(f"folder {str(path)!r} holds no DICOM Part 10 file: check the input path.")
    return files


def _remote_card(client: Any, args: argparse.Namespace) -> Any:
    """The server's card for ``--model``, or for the one model doing ``--task`` (at ``--site``)."""
    site = Site.parse(args.site).value if args.site else None
    if args.model:
        card = client.get_model(args.model, args.version)
        if site and card.site not in (site, Site.ANY.value):
            raise OptionError(
                f"model {args.model!r} was trained for site {card.site or 'unknown'}, not {site}: "
                "pick a model for that site, or drop --site."
            )
        return card
    wanted = Task.parse(args.task).value
    names = sorted(
        {
            c.name
            for c in client.list_models()
            if c.task == wanted and (site is None or c.site in (site, Site.ANY.value))
        }
    )
    if len(names) != 1:
        asked = wanted if site is None else f"{wanted} at site {site}"
        raise OptionError(
            f"the server has {len(names)} model(s) for task {asked} ({names}): an image-file input "
            "needs exactly one; pass --model NAME" + ("." if site else " or --site SITE.")
        )
    return client.get_model(names[0], args.version)


def _run_remote(args: argparse.Namespace, bar: _Bar) -> int:
    try:
        from service.rpc.client import TranslationClient, write_result
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise OptionError(
            f"--server needs the gRPC client, which cannot be imported ({exc}): "
            "translate locally (drop --server) or install radtranslate fully."
        ) from None
    from service.inference.pipeline import is_image_file, output_format_for

    fmt = output_format_for(args.output, args.format)
    if Path(args.output).exists() and not args.overwrite:
        raise OptionError(f"output {args.output!r} already exists: choose another path or pass --overwrite.")
    token = None
    if args.token_file:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
        if not token:
            raise OptionError(f"--token-file {args.token_file!r} is empty: put the bearer token in it.")
    wire_format = "dicom" if fmt.value == "dicom" else "volume"
    with TranslationClient(
        args.server, ca_file=args.tls_ca, cert_file=args.tls_cert, key_file=args.tls_key, token=token
    ) as client:
        if is_image_file(args.input):
            from service.imageio import read_image

            card = _remote_card(client, args)
            volume = read_image(args.input, modality=card.input_modality, unit=card.input_unit)
            result = client.translate_volume(
                volume, model=card.name, version=card.version, output_format=wire_format, progress=bar
            )
        else:
            files = dicom_files(Path(args.input))
            result = client.translate_dicom(
                files,
                task=args.task,
                site=args.site,
                model=args.model,
                version=args.version,
                output_format=wire_format,
                series_uid=args.series_uid,
                progress=bar,
            )
    write_result(result, args.output, overwrite=args.overwrite)
    bar.close()
    for note in result.warnings:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"wrote {args.output} ({fmt.value}) with {result.model} v{result.version} on {result.provider} "
        f"(server {args.server})"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``translate``; errors propagate as typed exceptions (mapped to exit codes by main)."""
    _check_local_only(args)
    bar = _Bar(enabled=not args.no_progress)
    try:
        return _run_remote(args, bar) if args.server else _run_local(args, bar)
    finally:
        bar.close()
