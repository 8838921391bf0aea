"""A model card from what a run recorded: what ``medimg card RUN_DIR`` writes.

:func:`model_card` reads the run folder (:mod:`.rundir`) and writes ``MODEL_CARD.md``:

- **model details**: task, network and its parameters, classes, operating threshold and
  temperature, the selection metric and best epoch (``best.pt``'s ``training`` entry);
- **data**: the sources (the config's ``data`` section; a classifier's npz or manifest)
  and the cases per split (and per class) recorded in ``best.pt``'s ``data`` entry;
- **evaluation**: the test metrics with their intervals from ``RUN_DIR/test/summary.json``
  (or another evaluation folder), intervals from fewer than ten cases flagged, the cases
  left out, and the subgroup tables when that evaluation had them; a run without test
  results says so plainly;
- **calibration**: temperature and ECE / Brier / NLL before and after, from
  ``RUN_DIR/calibration/calibration.json`` (``medimg calibrate``), when present;
- **training**: epochs run, the last and best rows of ``history.csv``;
- **reproducibility**: the SHA-256 of ``config.resolved.yaml`` (the config hash) and of
  ``best.pt``, the git commit, software versions, platform and devices from
  ``environment.json``;
- **for the author**: intended use, limitations, ethical considerations and caveats,
  each a marked section (``<!-- AUTHOR -->`` and a ``TODO`` line) that only a person
  who knows the clinical setting can fill; ``grep TODO MODEL_CARD.md`` lists them.

Nothing is invented: a value the run did not record is written as "not recorded".
"""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.errors import CheckpointError
from ..inference.runlog import file_sha256
from .rundir import ENVIRONMENT, RESOLVED_CONFIG

__all__ = ["MODEL_CARD", "model_card", "model_card_text"]

MODEL_CARD = "MODEL_CARD.md"
#: Fewer cases than this make an interval unreliable (as in the evaluation report).
MIN_CASES_FOR_CI = 10
_AUTHOR = {
    "Intended use": "who should use this model, on which patients, scanners and protocols, for which "
                    "clinical question, and what it must not be used for.",
    "Limitations": "populations, devices, sites or conditions the data did not cover; known failure modes "
                   "(see the worst cases of the evaluation report); what the metrics do not show.",
    "Ethical considerations": "consent and governance of the data, privacy, the subgroups checked for "
                              "fairness and those not checked, the risks of a wrong output and who reviews it.",
    "Caveats and recommendations": "how outputs should be reviewed, what monitoring after deployment is "
                                   "planned, and when the model must be re-validated.",
}


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _ci(lo: Any, hi: Any, n: Any) -> str:
    if lo is None or hi is None:
        return "n/a"
    text = f"[{_num(lo)}, {_num(hi)}]"
    return f"⚠ {text} unreliable (n={n})" if isinstance(n, int) and n < MIN_CASES_FOR_CI else text


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(c) for c in r) + " |" for r in rows), ""]


# --------------------------------------------------------------------------------------
# What the run recorded
# --------------------------------------------------------------------------------------
def _load(run_dir: Path, evaluation: Path | None) -> dict[str, Any]:
    """Everything the card reads, with None for what is absent."""
    import yaml

    from ..inference.checkpoint import load_checkpoint

    best = run_dir / "best.pt"
    if not best.is_file():
        raise CheckpointError(
            f"'{run_dir}' holds no best.pt: a model card describes a trained model",
            hint="give the folder of a run that `medimg train` finished (it writes best.pt)",
        )
    ckpt = load_checkpoint(best)
    cfg_path = run_dir / RESOLVED_CONFIG
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else None
    eval_dir = evaluation if evaluation is not None else run_dir / "test"
    return {
        "run_dir": run_dir, "best": best, "ckpt": {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer_state", "resume")},
        "best_sha": file_sha256(best), "config": cfg if isinstance(cfg, dict) else None,
        "config_sha": file_sha256(cfg_path) if cfg_path.is_file() else None, "config_path": cfg_path,
        "environment": _json(run_dir / ENVIRONMENT), "eval_dir": eval_dir,
        "test": _json(eval_dir / "summary.json"), "calibration": _json(run_dir / "calibration" / "calibration.json"),
        "history": _history(run_dir / "history.csv"),
    }


def _history(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------
def _details(r: dict[str, Any]) -> list[str]:
    ck, cfg = r["ckpt"], r["config"] or {}
    spec, training = ck.get("inference") or {}, ck.get("training") or {}
    model = ck.get("model") or {}
    task = spec.get("task") or (cfg.get("experiment") or {}).get("task") or "segmentation"
    names = spec.get("label_names") or ck.get("label_names") or []
    rows = [
        ["task", task + (" (multi-label)" if spec.get("multilabel") else "")],
        ["network", f"{model.get('name', 'not recorded')} " + json.dumps(model.get("params") or {}, sort_keys=True)],
        ["classes", ", ".join(map(str, names)) or "not recorded"],
        ["input channels", ", ".join(map(str, spec.get("image_keys") or [])) or "not recorded"],
        ["preprocessing", ", ".join(p.get("name", "?") for p in spec.get("preprocess") or []) or "none"],
        ["selected by", f"{training.get('metric_name', 'not recorded')} = {_num(training.get('metric'))} "
                        f"on validation, epoch {training.get('epoch', '?')} of {training.get('max_epochs', '?')}"],
    ]
    if task == "classification":
        rows.append(["decision threshold", _num(spec.get("threshold")) if spec.get("threshold") is not None
                     else "argmax" if not spec.get("multilabel") else "0.5"])
        rows.append(["temperature", _num(spec.get("temperature")) if spec.get("temperature") else "none (not calibrated)"])
    else:
        rows.append(["patch (roi) size", "x".join(map(str, spec.get("roi_size") or [])) or "not recorded"])
        rows.append(["post-processing", _postprocess_text(spec.get("postprocess") or {}, names, r["run_dir"])])
    rows.append(["checkpoint", f"{r['best'].name}, sha256 {r['best_sha']}"])
    return ["## Model details", "", *_table(["", ""], rows)]


def _postprocess_text(post: dict[str, Any], names: list[Any], run_dir: Path) -> str:
    """The checkpoint's ``inference.postprocess`` in words, saying whether validation chose it."""
    def name(c: Any) -> str:
        return str(names[int(c)]) if int(c) < len(names) else f"class {c}"

    rules = [f"largest component of {name(c)}" for c in post.get("keep_largest") or []]
    rules = [f"{name(c)} only where its probability >= {float(p):g}"
             for c, p in (post.get("min_probability") or {}).items()] + rules
    rules += [f"{name(c)} components under {float(ml):g} mL removed" for c, ml in (post.get("min_size_ml") or {}).items()]
    learned = (_json(run_dir / "postprocess.json") or {}).get("learned")
    return ("; ".join(rules) or "none") + (" (chosen on validation Dice, postprocess.json)" if learned else "")


def _sources(cfg: dict[str, Any], data: dict[str, Any]) -> list[str]:
    d = cfg.get("data") or {}
    out = [f"{k}: `{d[k]}`" for k in ("npz", "manifest", "root") if d.get(k)]
    if data.get("source") and all(str(data["source"]) not in s for s in out):
        out.append(f"source: `{data['source']}`")
    if d.get("label_map"):
        out.append(f"label map applied to the references: {d['label_map']}")
    return out or ["not recorded"]


def _data(r: dict[str, Any]) -> list[str]:
    data = (r["ckpt"].get("data") or {})
    lines = ["## Data", "", "Sources:", "", *(f"- {s}" for s in _sources(r["config"] or {}, data)), ""]
    counts, per_class = data.get("split_counts"), data.get("class_counts") or {}
    if not counts:
        lines += ["Cases per split: not recorded (the run predates medimg recording them in best.pt).", ""]
        return lines
    classes = list(next(iter(per_class.values()), {}))
    rows = [[split, n, *(per_class.get(split, {}).get(c, "") for c in classes)] for split, n in counts.items()]
    lines += ["Cases per split" + (" (and per class)" if classes else "") + ":", "",
              *_table(["split", "cases", *classes], rows)]
    return lines


def _segmentation_metrics(s: dict[str, Any]) -> tuple[list[list[Any]], dict[str, Any]]:
    rows = []
    for label, per in s.items():
        if label.startswith("_") and label != "_class_mean":
            continue
        for metric, st in per.items():
            rows.append(["mean over classes" if label == "_class_mean" else label, metric, _num(st.get("mean")),
                         _ci(st.get("ci_low"), st.get("ci_high"), st.get("n")), st.get("n")])
    return rows, s.get("_cases") or {}


def _classification_metrics(s: dict[str, Any]) -> tuple[list[list[Any]], dict[str, Any]]:
    rows = [["overall", m, _num(st.get("value")), _ci(st.get("ci_low"), st.get("ci_high"), st.get("n")), st.get("n")]
            for m, st in (s.get("metrics") or {}).items()]
    for cls, per in (s.get("per_class") or {}).items():
        rows += [[cls, m, _num(st.get("value")), _ci(st.get("ci_low"), st.get("ci_high"), st.get("n")), st.get("n")]
                 for m, st in per.items()]
    return rows, s.get("cases") or {}


def _evaluation(r: dict[str, Any]) -> list[str]:
    s, where = r["test"], r["eval_dir"]
    lines = ["## Evaluation", ""]
    if s is None:
        return lines + [f"**No test results.** `{where / 'summary.json'}` does not exist: this model has not been "
                        "evaluated on held-out data by medimg. Score it with `medimg evaluate` (e.g. into "
                        f"`{where}`) and write this card again before anyone relies on it.", ""]
    rows, cases = (_classification_metrics(s) if "metrics" in s else _segmentation_metrics(s))
    n = cases.get("n_evaluated", s.get("n_cases", "?"))
    ci = (s.get("settings") or s.get("_settings") or {}).get("ci", 0.95)
    lines += [f"On {n} test case(s), from `{where / 'summary.json'}`; {round(100 * float(ci))}% bootstrap "
              f"intervals (⚠: fewer than {MIN_CASES_FOR_CI} cases, unreliable).", "",
              *_table(["class", "metric", "value", "CI", "n"], rows)]
    left = {k: v for k, v in cases.items() if k in ("missing_pred", "missing_ref", "failed", "missing_prediction",
                                                     "missing_label") and v}
    text = "; ".join(f"{k}: {len(v)} ({', '.join(list(v)[:10])})" for k, v in left.items())
    lines += [f"Left out: {text or 'none'}.", ""]
    lines += _subgroups(s.get("subgroups"))
    return lines


def _subgroups(sub: dict[str, Any] | None) -> list[str]:
    if not sub:
        return ["### Subgroups", "", "No subgroup analysis was recorded with these test results "
                "(`medimg evaluate ... --metadata META.csv --subgroup sex,site`).", "",
                "<!-- AUTHOR -->", "TODO (author): say which patient groups were checked, or why none were.", ""]
    lines = ["### Subgroups", ""]
    for att, a in (sub.get("attributes") or {}).items():
        rows = [[g, m, _num(st.get("value")), _ci(st.get("ci_low"), st.get("ci_high"), grp.get("n")), grp.get("n"),
                 st.get("note", "")] for g, grp in a.get("groups", {}).items() for m, st in grp.get("metrics", {}).items()]
        rows += [[f"gap {st.get('between') or 'n/a'}", m, _num(st.get("value")), _ci(st.get("ci_low"), st.get("ci_high"),
                  st.get("n")), st.get("n"), st.get("note", "")] for m, st in a.get("gaps", {}).items()]
        lines += [f"By `{att}`:", "", *_table(["group", "metric", "value", "CI", "n", "note"], rows)]
    lines += [f"- problem: {p}" for p in sub.get("problems") or []]
    return lines + [""]


def _calibration(r: dict[str, Any], task: str) -> list[str]:
    c = r["calibration"]
    lines = ["## Calibration", ""]
    if c is None:
        what = ("Not calibrated: no `calibration/calibration.json` (`medimg calibrate RUN_DIR` fits a temperature)."
                if task == "classification" else "Not applicable (segmentation; no calibration recorded).")
        return lines + [what, ""]
    rows = []
    for m in ("ece", "brier", "nll"):
        b, a = (c.get("before") or {}).get(m) or {}, (c.get("after") or {}).get(m) or {}
        rows.append([m, f"{_num(b.get('value'))} {_ci(b.get('ci_low'), b.get('ci_high'), c.get('n_cases'))}",
                     f"{_num(a.get('value'))} {_ci(a.get('ci_low'), a.get('ci_high'), c.get('n_cases'))}"])
    lines += [f"{c.get('method', 'temperature scaling')} on {c.get('n_cases', '?')} {c.get('split', 'validation')} "
              f"case(s): T = {_num(c.get('temperature'))}.", "", *_table(["metric", "before", "after"], rows)]
    return lines + [f"- warning: {w}" for w in c.get("warnings") or []] + [""]


def _training(r: dict[str, Any]) -> list[str]:
    h = r["history"]
    if not h:
        return ["## Training", "", "No history.csv recorded.", ""]
    cols = list(h[0])
    return ["## Training", "", f"{len(h)} epoch(s) logged in `history.csv`; last row:", "",
            *_table(cols, [[h[-1][c] for c in cols]])]


def _reproducibility(r: dict[str, Any]) -> list[str]:
    env = r["environment"] or {}
    git = env.get("git") or {}
    devices = (env.get("torch") or {}).get("devices") or []
    rows = [["config", f"`{RESOLVED_CONFIG}`, sha256 {r['config_sha'] or 'not recorded (file missing)'}"],
            ["git commit", f"{git.get('sha', 'not recorded')}" + (" (uncommitted changes)" if git.get("dirty") else "")],
            ["trained", env.get("timestamp", "not recorded")],
            ["platform", f"{env.get('platform', 'not recorded')}, Python {env.get('python', '?')}"],
            ["devices", ", ".join(str(d.get("name", d)) if isinstance(d, dict) else str(d) for d in devices) or "CPU"]]
    versions = env.get("versions") or (r["ckpt"].get("versions") or {})
    return ["## Reproducibility", "", *_table(["", ""], rows), "Software versions:", "",
            *_table(["package", "version"], [[k, v] for k, v in versions.items()])]


def _author(title: str, what: str) -> list[str]:
    return [f"## {title}", "", "<!-- AUTHOR: this section is for the model's author; medimg cannot know it. -->",
            f"TODO (author): {what}", ""]


def model_card_text(run_dir: str | Path, evaluation: str | Path | None = None) -> str:
    """The card's Markdown (module docstring); ``evaluation``: the folder whose
    ``summary.json`` holds the test results (default ``RUN_DIR/test``)."""
    r = _load(Path(run_dir), Path(evaluation) if evaluation is not None else None)
    task = (r["ckpt"].get("inference") or {}).get("task") or "segmentation"
    name = (r["ckpt"].get("training") or {}).get("experiment") or Path(run_dir).name
    head = [f"# Model card: {name}", "",
            f"Written by `medimg card` from the run folder `{Path(run_dir).absolute()}` on "
            f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. The facts below are what the run "
            "recorded; sections marked `TODO (author)` must be written by a person before the card is shared.", ""]
    parts = [head, _details(r), _author("Intended use", _AUTHOR["Intended use"]), _data(r), _evaluation(r),
             _calibration(r, task), _training(r), _reproducibility(r)]
    parts += [_author(t, _AUTHOR[t]) for t in ("Limitations", "Ethical considerations", "Caveats and recommendations")]
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"


def model_card(run_dir: str | Path, evaluation: str | Path | None = None, output: str | Path | None = None) -> Path:
    """Write ``MODEL_CARD.md`` (default ``RUN_DIR/MODEL_CARD.md``) and return its path.

    Raises:
        CheckpointError: ``RUN_DIR`` has no readable ``best.pt``.
    """
    text = model_card_text(run_dir, evaluation)
    path = Path(output) if output is not None else Path(run_dir) / MODEL_CARD
    path.write_text(text, encoding="utf-8")
    return path
