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

Harness: ``benchmarks/_common.py`` (one warm-up call each, then round-robin runs, median;
``peak_mb`` = peak resident memory added while the call runs and its output is alive,
kernel high-water mark, so SimpleITK's C++ buffers count too).
``agrees``: the tool's volume equals medimg's voxel for voxel (after putting both in
(slice, row, column) order, slices ascending along the normal as each tool's own affine
says); for discovery, the same files per series.
The volume itself is 200 x 512 x 512 x 2 bytes = 105 MB.

Usage:
    python benchmarks/io_dicom.py [--quick] [--repeats N] [--json PATH]
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(REPO / "benchmarks"))

from _common import BENCH_DIR, Tool, parse_args, report, run_case  # noqa: E402

from medimg.io.dicom import find_series, read_dicom  # noqa: E402


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
# main
# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    t0 = time.perf_counter()
    ct = write_series(BENCH_DIR / "dicom_ct200", n=200, size=512, seed=0)
    many = BENCH_DIR / "dicom_5x200"
    for s in range(5):
        write_series(many / f"series{s}", n=200, size=128, seed=10 + s, series_number=s + 1)
    print(f"data ready in {time.perf_counter() - t0:.1f} s ({ct}, {many})")

    ref = read_medimg(ct)
    volume_mb = ref.nbytes / 1e6

    def same(out: np.ndarray) -> bool:
        return out.shape == ref.shape and bool(np.array_equal(out.astype(np.float64), ref.astype(np.float64)))

    results = run_case("ct200", [
        Tool("medimg", lambda: read_medimg(ct), None, peer=False),
        Tool("pydicom_loop", lambda: read_pydicom_loop(ct), same),
        Tool("simpleitk", lambda: read_simpleitk(ct), same),
        Tool("monai", lambda: read_monai(ct), same, note="LoadImage(reader='PydicomReader'), float32"),
    ], args.repeats)

    d_ref = discover_medimg(many)

    def same_groups(out: dict[str, list[str]]) -> bool:
        return sorted(map(tuple, out.values())) == sorted(map(tuple, d_ref.values()))

    results += run_case("discover1000", [
        Tool("medimg", lambda: discover_medimg(many), None, peer=False),
        Tool("simpleitk", lambda: discover_simpleitk(many), same_groups),
        Tool("pydicom_loop", lambda: discover_pydicom(many), same_groups, note="dcmread(stop_before_pixels)"),
    ], args.repeats, memory=False)

    med = next(r for r in results if r.case == "ct200" and r.tool == "medimg")
    title = (f"DICOM series read: 200 x 512 x 512 int16 ({volume_mb:.0f} MB), and discovery on "
             f"1,000 files (5 series x 200); median of {args.repeats} round-robin runs")
    report("io_dicom", title, results, args.json, packages=("pydicom", "SimpleITK", "monai"),
           extra={"volume_mb": round(volume_mb, 1)})
    if med.peak_mb is not None:
        print(f"medimg peak memory / volume size: {med.peak_mb / volume_mb:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
