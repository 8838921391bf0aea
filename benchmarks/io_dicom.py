"""Reading a DICOM series: medimg vs plain pydicom, SimpleITK and MONAI, side by side.

Cases:
  * ``ct200``: a 200-slice 512x512 int16 CT series (written once with pydicom into
    ``.bench/dicom_ct200``, file names shuffled, RescaleIntercept -1024), read into a
    sorted, rescaled (HU) volume by:
      - ``medimg``: ``medimg.io.read_dicom(folder)`` (discovery + validation included),
      - ``pydicom_loop``: ``dcmread`` every file, sort by ImagePositionPatient along the
        normal, stack ``pixel_array``, add the intercept in place (int16),
      - ``simpleitk``: ``ImageSeriesReader`` with ``GetGDCMSeriesFileNames``,
      - ``monai``: ``LoadImage(reader="PydicomReader")`` on the folder.
  * ``discover1000``: ``find_series`` on a 1,000-file folder (5 series x 200 slices of
    128x128, ``.bench/dicom_5x200``) vs SimpleITK (``GetGDCMSeriesIDs`` +
    ``GetGDCMSeriesFileNames`` per series) vs a pydicom header loop grouping by UID.

Each tool runs once to warm up, then ``--repeats`` times; the median is reported.
``agrees``: the tool's volume equals medimg's voxel for voxel (after putting both in
(slice, row, column) order, slices ascending along the normal as each tool's own affine
says); for discovery, the same files per series.
``peak_mb``: peak of Python-visible allocations (numpy buffers, via ``tracemalloc``) in a
separate untimed run; SimpleITK allocates in C++, so its peak is not measured (null).
The volume itself is 200 x 512 x 512 x 2 bytes = 100 MiB.

Usage:
    python benchmarks/io_dicom.py [--quick] [--json PATH]

The timing harness is local to this file (no shared ``benchmarks/_common.py`` existed
when it was written); the JSON follows ARCHITECTURE.md §5.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from medimg.io.dicom import find_series, read_dicom  # noqa: E402

BENCH = REPO / ".bench"


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


def write_series(folder: Path, n: int, size: int, seed: int, series_number: int = 1) -> Path:
    """A CT series of ``n`` slices ``size x size`` int16, shuffled file names; cached."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    uid = generate_uid()
    study = "1.2.826.0.1.3680043.8.498.1"
    yy, xx = np.mgrid[0:size, 0:size]
    body = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (0.4 * size) ** 2
    order = rng.permutation(n)
    for k in order:
        px = np.where(body, 1000 + 40 * np.sin(k / 7.0) + rng.normal(0, 20, body.shape), 0).astype(np.int16)
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, uid
        ds.FrameOfReferenceUID = study + ".1"
        ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "CT", series_number, "bench"
        ds.InstanceNumber = int(n - k)
        ds.ImagePositionPatient = [-250.0, -250.0, -400.0 + 1.25 * k]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [0.9765625, 0.9765625]
        ds.SliceThickness = 1.25
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = px.tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"IM{rng.integers(1 << 40):012x}", enforce_file_format=True)
    del pydicom
    done.write_text("ok")
    return folder


# ------------------------------------------------------------------------------------------
# readers, all returning (slices, rows, columns) arrays
# ------------------------------------------------------------------------------------------


def read_medimg(folder: Path) -> np.ndarray:
    img = read_dicom(folder)
    return img.numpy()[0].transpose(2, 1, 0)


def read_pydicom_loop(folder: Path) -> np.ndarray:
    import pydicom

    dss = [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if not p.name.startswith(".")]
    iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, dtype=float), normal)))
    vol = np.stack([d.pixel_array for d in dss])
    slope, inter = float(dss[0].RescaleSlope), float(dss[0].RescaleIntercept)
    if slope != 1:
        vol = vol * slope
    vol += np.asarray(inter).astype(vol.dtype)
    return vol


def read_simpleitk(folder: Path) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


def read_monai(folder: Path) -> np.ndarray:
    from monai.transforms import LoadImage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = LoadImage(reader="PydicomReader", image_only=True)(str(folder))
    vol = np.asarray(arr).transpose(2, 1, 0)  # MONAI: (columns, rows, slices)
    # MONAI stacks by InstanceNumber (descending position here) with a negative k step in
    # its affine: same world positions, so put the slices in ascending order to compare
    if float(np.asarray(arr.affine)[2, 2]) < 0:
        vol = vol[::-1]
    return vol


def discover_medimg(root: Path) -> dict[str, list[str]]:
    return {s.key: sorted(s.files) for s in find_series(root)}


def discover_simpleitk(root: Path) -> dict[str, list[str]]:
    import SimpleITK as sitk

    out = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(sub)):
            out[uid] = sorted(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(sub), uid))
    return out


def discover_pydicom(root: Path) -> dict[str, list[str]]:
    import pydicom

    out: dict[str, list[str]] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.startswith("."):
                continue
            p = os.path.join(dirpath, name)
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            out.setdefault(str(ds.SeriesInstanceUID), []).append(p)
    return {k: sorted(v) for k, v in out.items()}


# ------------------------------------------------------------------------------------------
# harness
# ------------------------------------------------------------------------------------------


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    return peak / 2**20


def _machine() -> dict[str, Any]:
    import monai
    import pydicom
    import SimpleITK as sitk
    import torch

    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "cpus": os.cpu_count(), "torch": torch.__version__, "monai": monai.__version__,
        "pydicom": pydicom.__version__, "simpleitk": sitk.Version_VersionString(), "device": "cpu",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 timed run per tool instead of 5")
    ap.add_argument("--json", type=Path, default=None, help="write results as JSON here")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)

    t0 = time.perf_counter()
    ct = write_series(BENCH / "dicom_ct200", n=200, size=512, seed=0)
    many = BENCH / "dicom_5x200"
    for s in range(5):
        write_series(many / f"series{s}", n=200, size=128, seed=10 + s, series_number=s + 1)
    print(f"data ready in {time.perf_counter() - t0:.1f} s ({ct}, {many})")

    results: list[dict[str, Any]] = []
    t_ref, ref = _time(lambda: read_medimg(ct), repeats)
    volume_mb = ref.nbytes / 2**20
    readers = {"medimg": read_medimg, "pydicom_loop": read_pydicom_loop,
               "simpleitk": read_simpleitk, "monai": read_monai}
    for tool, fn in readers.items():
        secs, out = (t_ref, ref) if tool == "medimg" else _time(lambda fn=fn: fn(ct), repeats)
        agrees = bool(out.shape == ref.shape and np.array_equal(out.astype(np.float64), ref.astype(np.float64)))
        peak = None if tool == "simpleitk" else round(_peak_mb(lambda fn=fn: fn(ct)), 1)
        results.append({"case": "ct200", "tool": tool, "seconds": round(secs, 4), "peak_mb": peak,
                        "agrees": agrees, "dtype": str(out.dtype)})
        del out

    d_ref_t, d_ref = _time(lambda: discover_medimg(many), repeats)
    for tool, fn in {"medimg": discover_medimg, "simpleitk": discover_simpleitk, "pydicom_loop": discover_pydicom}.items():
        secs, out = (d_ref_t, d_ref) if tool == "medimg" else _time(lambda fn=fn: fn(many), repeats)
        agrees = sorted(map(tuple, out.values())) == sorted(map(tuple, d_ref.values()))
        results.append({"case": "discover1000", "tool": tool, "seconds": round(secs, 4), "peak_mb": None,
                        "agrees": bool(agrees), "series": len(out)})

    def ratio(case: str, peer: str) -> float:
        t = {r["tool"]: r["seconds"] for r in results if r["case"] == case}
        return round(t[peer] / t["medimg"], 2)

    ratios = {f"{p}/medimg ({c})": ratio(c, p) for c, peers in
              (("ct200", ("pydicom_loop", "simpleitk", "monai")), ("discover1000", ("simpleitk", "pydicom_loop")))
              for p in peers}
    print(f"\nvolume: 200 x 512 x 512 int16 = {volume_mb:.0f} MiB; median of {repeats} run(s) after a warm-up")
    print(f"{'case':<14}{'tool':<14}{'seconds':>9}{'peak MiB':>10}  agrees")
    for r in results:
        pk = "-" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        print(f"{r['case']:<14}{r['tool']:<14}{r['seconds']:>9.3f}{pk:>10}  {r['agrees']}")
    print("\nratios (peer time / medimg time; > 1 means medimg is faster):")
    for k, v in ratios.items():
        print(f"  {k:<34} {v:.2f}x")
    med_peak = next(r["peak_mb"] for r in results if r["case"] == "ct200" and r["tool"] == "medimg")
    print(f"medimg peak memory / volume size: {med_peak / volume_mb:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "io_dicom", "machine": _machine(), "results": results,
                                         "ratios": ratios, "volume_mb": round(volume_mb, 1),
                                         "repeats": repeats}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
