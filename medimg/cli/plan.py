"""``medimg fingerprint DATA`` and ``medimg plan DATA --output CONFIG.yaml``: describe a data
set, and derive a config for it that trains on the device and in the minutes at hand
(rules: :mod:`medimg.engine.plan_rules`, :mod:`medimg.engine.plan_cls`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from .app import SetOption, _console, app, progress_enabled

Device = Literal["cpu", "cuda"]
_DATA_HELP = ("A data folder (DATA/<split>/<case>/<files>), a manifest .csv, an .npz, or a tree of DICOM studies "
              "(channels chosen by --channel).")
_STANDARD = {"train": "train", "validation": "validation", "test": "test"}

ImagesOption = Annotated[
    Optional[list[str]],
    typer.Option("--images", metavar="NAME", help="Image channel file names in each case folder (or manifest "
                 "columns), repeatable; default: the NIfTI files not named like a label or mask."),
]
LabelOption = Annotated[
    Optional[str],
    typer.Option("--label", metavar="NAME", help="Label file name in each case folder (or manifest column); "
                 "default: the file named like a label map."),
]

ChannelOption = Annotated[
    Optional[list[str]],
    typer.Option("--channel", metavar="NAME=PATTERN", help="DATA is a tree of DICOM studies (one case per study): "
                 "channel NAME is the image series whose SeriesDescription matches PATTERN (case-insensitive, "
                 "e.g. flair='*FLAIR*'), as in medimg predict. Repeat per channel, in channel order."),
]
LabelsOption = Annotated[
    Optional[Path],
    typer.Option("--labels", metavar="DIR", help="DICOM study tree: folder of label maps named <study id>.nii.gz "
                 "(on the grid of the study's first channel) or DICOM SEG files named <study id>.seg.dcm (as medimg "
                 "predict --format dicom-seg writes; placed on the first channel's grid, never resampled: a SEG made "
                 "on another series skips its study, with the reason); needed to plan a segmentation."),
]


def _fingerprint(data: Path, images: list[str] | None, label: str | None,
                 channel: list[str] | None = None, labels: Path | None = None) -> dict[str, Any]:
    from ..data.fingerprint import fingerprint
    from ..inference.progress import progress_bar
    from .predict import _parse_channels

    channels = _parse_channels(channel)
    with progress_bar(progress_enabled()) as bar:
        task = bar.add_task("fingerprint", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return fingerprint(data, images=images, label=label, progress=tick, channels=channels, labels=labels)


def _fmt(values: Any) -> str:
    return "x".join(f"{float(v):.4g}" for v in values)


def summary_lines(fp: dict[str, Any], warnings: bool = True) -> list[str]:
    """The fingerprint in a few lines for a person (its warnings and errors too, unless
    ``warnings`` is False)."""
    lines = [f"data set: {fp['source']} ({fp['task']}, {fp.get('num_cases', '?')} cases)"]
    if fp.get("errors") and "spatial_dims" not in fp:
        return lines + [f"error: {e}" for e in fp["errors"]]
    if fp["task"] == "segmentation":
        d = fp["data"]
        names = ", ".join(f"{n}='{d['channels'][n]}'" if d.get("channels", {}).get(n) else n for n in d["images"])
        label = f"labels {d['label']}" if "studies" in d else f"label {d['label']}"
        lines += [
            f"  channels {fp['channels']} ({names}), {label}, "
            f"modality {fp['modality']} ({fp.get('modality_source', 'intensities')}), orientation {fp['axcodes']}",
            f"  median spacing {_fmt(fp['median_spacing'])} mm, median shape {_fmt(fp['median_shape'])}, "
            f"body box {_fmt(fp['median_body_shape'])}, anisotropy {fp['anisotropy']:.2f}",
            "  class voxel frequency: " + ", ".join(f"{k}: {v:.4f}" for k, v in fp["class_frequency"].items()),
        ]
    else:
        lines += [f"  {fp['spatial_dims']}D images {_fmt(fp['shape'])}, {fp['channels']} channel(s), "
                  f"classes {', '.join(fp['class_names'])}, imbalance {fp['imbalance']:.2f}"]
        lines += [f"  {s}: {v['cases']} cases {v['classes']}" for s, v in fp["splits"].items()]
    for c, st in enumerate(fp["intensity"]):
        lines.append(f"  channel {c} intensity: p0.5 {st['p0_5']:.4g}, median {st['p50']:.4g}, p99.5 {st['p99_5']:.4g}, "
                     f"mean {st['mean']:.4g}, std {st['std']:.4g}")
    if warnings:
        lines += [f"warning: {w}" for w in fp.get("warnings", [])]
        lines += [f"error: {e}" for e in fp.get("errors", [])]
    return lines


@app.command("fingerprint")
def fingerprint_cmd(
    data: Annotated[Path, typer.Argument(help=_DATA_HELP)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the JSON.")] = Path("fingerprint.json"),
    images: ImagesOption = None,
    label: LabelOption = None,
    channel: ChannelOption = None,
    labels: LabelsOption = None,
) -> None:
    """Describe a data set: per case shape, spacing, orientation, intensities, label classes,
    DICOM modality; the data set's medians, anisotropy and the cases that stand out (a DICOM
    study whose --channel pattern matches no series or several is listed as skipped).
    Writes fingerprint.json."""
    fp = _fingerprint(data, images, label, channel, labels)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(fp, indent=1))
    console = _console()
    for line in summary_lines(fp):
        console.print(line, markup=False)
    console.print(f"wrote {output}", markup=False)


def _flow(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()
    return text[:-3].strip() if text.endswith("...") else text


def _comment(rules: list[str]) -> str:
    return f"  # {'; '.join(rules)}" if rules else ""


def render_yaml(cfg: dict[str, Any], decisions: list[Any], header: list[str]) -> str:
    """The config as YAML, each planned value followed by a comment saying why."""
    notes: dict[str, list[str]] = {}
    for d in decisions:
        notes.setdefault(d.key, []).append(d.rule)
    lines = [f"# {h}" for h in header]
    for section, value in cfg.items():
        if isinstance(value, dict):
            lines.append(f"{section}:{_comment(notes.get(section, []))}")
            lines += [f"  {k}: {_flow(v)}{_comment(notes.get(f'{section}.{k}', []))}" for k, v in value.items()]
        elif isinstance(value, list):
            lines.append(f"{section}:{_comment(notes.get(section, []))}")
            for item in value:
                name = item.get("name", "")
                rules = notes.get(f"{section}.{name}", []) + [r for k, rs in notes.items()
                                                               if k.startswith(f"{section}.{name}.") for r in rs]
                lines.append(f"  - {_flow(item)}{_comment(rules)}")
        else:
            lines.append(f"{section}: {_flow(value)}{_comment(notes.get(section, []))}")
        lines.append("")
    return "\n".join(lines)


def _relative_data(cfg: dict[str, Any], output: Path) -> None:
    for key in ("root", "manifest", "npz"):
        if cfg["data"].get(key):
            cfg["data"][key] = os.path.relpath(os.path.abspath(cfg["data"][key]), os.path.abspath(output.parent))


def _header(fp: dict[str, Any], plan: Any, data: Path, output: Path, opts: Any, sets: list[str]) -> list[str]:
    extra = "".join(f" --channel {n}='{p}'" for n, p in fp["data"].get("channels", {}).items())
    extra += f" --labels {fp['data']['labels']}" if fp["data"].get("labels") else ""
    extra += "".join(f" --set '{s}'" for s in sets)
    head = [f"Planned by `medimg plan {data} --output {output} --device {opts.device} --minutes {opts.minutes:g}{extra}`",
            "from the data set's fingerprint; each planned value says why. Paths are relative to this file.",
            f"Train with: medimg train {output}"]
    head += [f"{d.key}: {_flow(d.value)} ({d.rule})" for d in plan.decisions if "." not in d.key and d.key not in plan.config]
    head += [f"warning: {w}" for w in plan.warnings]
    return head


@app.command("plan")
def plan_cmd(
    data: Annotated[Path, typer.Argument(help=_DATA_HELP)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The config YAML to write.")],
    device: Annotated[Optional[Device], typer.Option(help="Device to plan for (default: cuda when available, else cpu).")] = None,
    minutes: Annotated[float, typer.Option(min=0.01, help="Training time budget in minutes.")] = 30.0,
    memory: Annotated[Optional[float], typer.Option(min=0.01, help="Memory budget of a training step in GB "
                                                    "(default: CPU a quarter of the RAM, at most 8; CUDA 85% of the GPU's).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Print the fingerprint summary and each decision with its rule.")] = False,
    overrides: SetOption = None,
    probe_steps: Annotated[int, typer.Option(min=0, help="Timed training steps of the probe (0: no probe, for tests).")] = 3,
    name: Annotated[Optional[str], typer.Option(help="experiment.name (default: the data set's name + _plan).")] = None,
    images: ImagesOption = None,
    label: LabelOption = None,
    channel: ChannelOption = None,
    labels: LabelsOption = None,
) -> None:
    """Derive a config for DATA from its fingerprint, sized by a timed probe of the training step
    to --minutes on --device; writes it with a comment on each planned value. A DICOM study
    tree needs --labels; its cases go into CONFIG_cases.csv beside the config."""
    from ..engine.plan import PlanOptions, make_plan

    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    _check_cuda(device)
    fp = _fingerprint(data, images, label, channel, labels)
    if "studies" in fp["data"] and fp.get("labelled") and not fp.get("errors"):
        from ..data.fingerprint_dicom import write_study_manifest

        fp["warnings"] = fp.get("warnings", []) + write_study_manifest(fp, output.with_name(f"{output.stem}_cases.csv"))
    opts = PlanOptions(device=device, minutes=minutes, memory=memory, probe_steps=probe_steps)
    plan = make_plan(fp, opts)
    plan.config["experiment"]["name"] = name or f"{Path(str(data).rstrip('/')).stem}_plan"
    _relative_data(plan.config, output)
    _apply_sets(plan, overrides or [])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_yaml(plan.config, plan.decisions, _header(fp, plan, data, output, opts, overrides or [])))
    from ..config import load_config

    load_config(output)  # the plan is an ordinary config: refuse to leave an invalid one unnoticed
    console = _console()
    if explain:
        for line in summary_lines(fp, warnings=False):
            console.print(line, markup=False)
        console.print("decisions:", markup=False)
        for d in plan.decisions:
            console.print(f"  {d.key} = {_flow(d.value)}: {d.rule}", markup=False)
    for w in plan.warnings:
        console.print(f"warning: {w}", markup=False)
    console.print(f"wrote {output} (train with: medimg train {output})", markup=False)


def _check_cuda(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            from ..core.errors import ConfigError

            raise ConfigError("--device cuda was asked for but no CUDA device is available here",
                              hint="plan for --device cpu, or run medimg plan on the machine that will train")


def _apply_sets(plan: Any, overrides: list[str]) -> None:
    from ..config.overrides import apply_overrides
    from ..core.builder import format_key
    from ..engine.plan import Decision

    if not overrides:
        return
    plan.config, applied = apply_overrides(plan.config, overrides)
    for path, value, raw in applied:
        plan.decisions.append(Decision(format_key(list(path)), value, "set by --set (overrides the plan)"))
