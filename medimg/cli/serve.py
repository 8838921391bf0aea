"""``medimg serve CHECKPOINT --config node.yaml`` (a small AI node) and ``medimg serve-status``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import _console, app

ConfigOpt = Annotated[Path, typer.Option("--config", help="The node file (node.yaml): AE title, port, allowed "
                                         "AE titles, quiet_s, state_dir, destination server file.")]


@app.command()
def serve(
    checkpoint: Annotated[Path, typer.Argument(help="A medimg segmentation checkpoint (.pt).")],
    config: ConfigOpt,
    device: Annotated[str, typer.Option(help="auto (CUDA if available), cpu, cuda, cuda:1.")] = "auto",
) -> None:
    """Receive studies by C-STORE, predict each once complete, push its DICOM SEG; runs until stopped."""
    import signal

    from ..core.errors import CheckpointError
    from ..inference.node import load_node_config
    from ..inference.node import serve as run_node

    node = load_node_config(config)
    if not checkpoint.is_file():
        raise CheckpointError(f"checkpoint '{checkpoint}' not found", hint="give the .pt file written by `medimg train`")
    from ..inference import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, device=device)
    stop = {"now": False}

    def on_signal(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _console(stderr=True).print(f"node {node.ae_title} listening on {node.host}:{node.port}; queue in "
                                f"{node.state_dir}", markup=False)
    run_node(predictor, node, should_stop=lambda: stop["now"])


@app.command("serve-status")
def serve_status(config: ConfigOpt) -> None:
    """The node's studies: incoming, queued, running, done and failed (with the reason)."""
    from ..inference.node import load_node_config, node_status

    node = load_node_config(config)
    status = node_status(node.state_dir)
    out = _console()
    out.print("  ".join(f"{state} {len(studies)}" for state, studies in status.items()), markup=False)
    for state, studies in status.items():
        for study in studies:
            why = ""
            if state == "failed":
                err = Path(node.state_dir) / "failed" / study / "error.txt"
                why = "  " + (err.read_text().strip() if err.exists() else "")
            out.print(f"{state:9} {study}{why}", markup=False)
