"""Reading a DICOM series: medimg vs pydicom (plain and strong), SimpleITK and MONAI, side by side.

Cases (every reader returns a sorted, rescaled (HU) volume as ``(slices, rows, columns)``):

  * ``ct200``: a synthetic 200-slice 512x512 int16 CT series (written once with pydicom
    into ``.bench/dicom_ct200``, file names shuffled, explicit VR, RescaleIntercept -1024).
  * ``chest_ct``: the real 139-slice 512x512 CT series of the shared data
    (``dicom/chest_ct/series``, implicit VR little endian).
  * ``torchio_ct``: the real 17-slice 128x88 CT of the shared data (``dicom/torchio_ct``),
    timed over 5x as many rounds as the others (each read takes only a few ms).

  Readers:
    - ``medimg``: ``medimg.io.read_dicom(folder)`` (discovery and validation included),
    - ``pydicom_fast``: the strong simple pydicom reader: per file one ``dcmread(fh,
      stop_before_pixels=True)`` for the header, then the PixelData value read from the same
      open file and viewed with ``np.frombuffer``; sort along the normal, stack, rescale,
    - ``pydicom_loop``: the plain one: ``dcmread`` every file, ``pixel_array``, stack,
    - ``simpleitk``: ``ImageSeriesReader`` with ``GetGDCMSeriesFileNames``,
    - ``monai``: ``LoadImage(reader="PydicomReader")`` on the folder,
    - ``medimg_pydicom_headers`` (variant, no ratio): medimg with its own header parser
      switched off, so pydicom (``stop_before_pixels``) parses every header: the gap to
      ``medimg`` is what the hand-written parser buys.

  * ``discover1000``: ``find_series`` on a 1,000-file folder (5 series x 200 slices of
    128x128, ``.bench/dicom_5x200``), and ``discover_chest_ct`` on the real series, vs
    ``pydicom_fast`` (``dcmread(stop_before_pixels=True, specific_tags=[...])`` with the
    tags that group and sort a series, then grouped by UID and sorted along the normal),
    ``pydicom_loop`` (``dcmread(stop_before_pixels=True)``, grouped by UID) and SimpleITK
    (``GetGDCMSeriesIDs`` + ``GetGDCMSeriesFileNames`` per folder).

Harness: ``benchmarks/_common.py`` (one warm-up call each, then rounds in a shuffled order,
median; ``peak_mb`` = peak resident memory added while the call runs and its output is
alive, kernel high-water mark, so SimpleITK's C++ buffers count too).
``agrees``: the tool's volume equals medimg's voxel for voxel (both in (slice, row,
column) order, slices ascending along the normal as each tool's own affine says); for
discovery, the same files per series.
Real-data cases are skipped (with a line saying so) where the shared data is absent.

Usage:
    python benchmarks/io_dicom.py [--quick] [--repeats N] [--json PATH]
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(REPO / "benchmarks"))

from _common import BENCH_DIR, Result, Tool, parse_args, report, run_case  # noqa: E402

from medimg.io.dicom import find_series, read_dicom  # noqa: E402
from medimg.io.layout import walk_files  # noqa: E402

#: the shared real data (as tests/conftest.py finds it)
SHARED = Path(os.environ.get("MEDIMG_SHARED_DATA", REPO.parent / "shared" / "data"))

# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


def write_series(folder: Path, n: int, size: int, seed: int, series_number: int = 1) -> Path:
    """A CT series of ``n`` slices ``size x size`` int16, shuffled file names; cached."""
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
    for k in rng.permutation(n):
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
    done.write_text("ok")
    return folder


def files_of(folder: Path) -> list[str]:
    """Every file under ``folder`` (the project's one walker: hidden files skipped)."""
    return [str(p) for p in walk_files(folder)]


# ------------------------------------------------------------------------------------------
# readers, all returning (slices, rows, columns) arrays
# ------------------------------------------------------------------------------------------


def read_medimg(folder: Path) -> np.ndarray:
    img = read_dicom(folder)
    return img.numpy()[0].transpose(2, 1, 0)


@contextlib.contextmanager
def pydicom_headers() -> Iterator[None]:
    """medimg with its hand-written header parser off: pydicom parses every header."""
    import medimg.io.dicom.header as mod  # where the header reader looks the parser up

    saved = mod._lite_parse
    mod._lite_parse = lambda path, size: None
    try:
        yield
    finally:
        mod._lite_parse = saved


def read_medimg_pydicom_headers(folder: Path) -> np.ndarray:
    with pydicom_headers():
        return read_medimg(folder)


def _normal(ds) -> np.ndarray:
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    return np.cross(iop[:3], iop[3:])


def _rescale(vol: np.ndarray, ds) -> np.ndarray:
    slope, inter = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    if slope != 1:
        return vol * slope + inter
    vol += np.asarray(inter).astype(vol.dtype)
    return vol


def _pixel_value(fh, ds) -> np.ndarray:
    """The PixelData value right after a ``stop_before_pixels`` header, via ``np.frombuffer``.

    pydicom leaves the file at the (7FE0,0010) element; its header is 8 bytes in implicit
    VR (tag, 4-byte length) and 12 in explicit VR (tag, 'OW', 2 reserved, 4-byte length).
    """
    head = fh.read(8)
    if ds.file_meta.TransferSyntaxUID.is_implicit_VR:
        length = int.from_bytes(head[4:8], "little")
    else:
        length = int.from_bytes(fh.read(4), "little")
    dtype = "<i2" if int(ds.PixelRepresentation) == 1 else "<u2"
    return np.frombuffer(fh.read(length), dtype=dtype).reshape(int(ds.Rows), int(ds.Columns))


def read_pydicom_fast(folder: Path) -> np.ndarray:
    import pydicom

    slices = []
    for p in files_of(folder):
        with open(p, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
            slices.append((ds, _pixel_value(fh, ds)))
    normal = _normal(slices[0][0])
    slices.sort(key=lambda s: float(np.dot(np.array(s[0].ImagePositionPatient, dtype=float), normal)))
    vol = np.stack([px for _, px in slices])
    return _rescale(vol, slices[0][0])


def read_pydicom_loop(folder: Path) -> np.ndarray:
    import pydicom

    dss = [pydicom.dcmread(p) for p in files_of(folder)]
    normal = _normal(dss[0])
    dss.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, dtype=float), normal)))
    vol = np.stack([d.pixel_array for d in dss])
    return _rescale(vol, dss[0])


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


# ------------------------------------------------------------------------------------------
# discovery: {series uid: files in slice order}
# ------------------------------------------------------------------------------------------


def discover_medimg(root: Path) -> dict[str, list[str]]:
    return {s.key: sorted(s.files) for s in find_series(root)}


def discover_medimg_pydicom_headers(root: Path) -> dict[str, list[str]]:
    with pydicom_headers():
        return discover_medimg(root)


def discover_simpleitk(root: Path) -> dict[str, list[str]]:
    import SimpleITK as sitk

    out = {}
    folders = [root] + sorted(p for p in root.rglob("*") if p.is_dir())
    for sub in folders:
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(sub)):
            out[uid] = sorted(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(sub), uid))
    return out


def discover_pydicom_loop(root: Path) -> dict[str, list[str]]:
    import pydicom

    out: dict[str, list[str]] = {}
    for p in files_of(root):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        out.setdefault(str(ds.SeriesInstanceUID), []).append(p)
    return {k: sorted(v) for k, v in out.items()}


#: what grouping and sorting a series needs (the strong peer reads only these)
_DISCOVERY_TAGS = ["SeriesInstanceUID", "ImagePositionPatient", "ImageOrientationPatient",
                   "Rows", "Columns", "PixelSpacing", "InstanceNumber"]


def discover_pydicom_fast(root: Path) -> dict[str, list[str]]:
    import pydicom

    groups: dict[str, list[tuple[float, str]]] = {}
    for p in files_of(root):
        ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=_DISCOVERY_TAGS)
        pos = float(np.dot(np.array(ds.ImagePositionPatient, dtype=float), _normal(ds)))
        groups.setdefault(str(ds.SeriesInstanceUID), []).append((pos, p))
    return {k: sorted(p for _, p in sorted(v)) for k, v in groups.items()}


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------


def read_case(name: str, folder: Path, repeats: int, quick: bool) -> list[Result]:
    """Every reader on one series folder; agreement voxel for voxel with medimg."""
    ref = read_medimg(folder)

    def same(out: np.ndarray) -> bool:
        return out.shape == ref.shape and bool(np.array_equal(out.astype(np.float64), ref.astype(np.float64)))

    tools = [
        Tool("medimg", lambda: read_medimg(folder), None, peer=False),
        Tool("pydicom_fast", lambda: read_pydicom_fast(folder), same,
             note="dcmread(stop_before_pixels) + np.frombuffer(PixelData)"),
        Tool("medimg_pydicom_headers", lambda: read_medimg_pydicom_headers(folder), same, peer=False,
             note="variant: pydicom parses the headers"),
        Tool("pydicom_loop", lambda: read_pydicom_loop(folder), same),
        Tool("simpleitk", lambda: read_simpleitk(folder), same),
    ]
    if not quick or name == "ct200":
        tools.append(Tool("monai", lambda: read_monai(folder), same, note="LoadImage(reader='PydicomReader'), float32"))
    return run_case(name, tools, repeats)


def discover_case(name: str, root: Path, repeats: int) -> list[Result]:
    """Series discovery on one folder tree; agreement: the same files per series."""
    d_ref = discover_medimg(root)

    def same_groups(out: dict[str, list[str]]) -> bool:
        return sorted(map(tuple, out.values())) == sorted(map(tuple, d_ref.values()))

    return run_case(name, [
        Tool("medimg", lambda: discover_medimg(root), None, peer=False),
        Tool("pydicom_fast", lambda: discover_pydicom_fast(root), same_groups,
             note="dcmread(stop_before_pixels, specific_tags)"),
        Tool("medimg_pydicom_headers", lambda: discover_medimg_pydicom_headers(root), same_groups, peer=False,
             note="variant: pydicom parses the headers"),
        Tool("simpleitk", lambda: discover_simpleitk(root), same_groups),
        Tool("pydicom_loop", lambda: discover_pydicom_loop(root), same_groups, note="dcmread(stop_before_pixels)"),
    ], repeats, memory=False)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    t0 = time.perf_counter()
    ct = write_series(BENCH_DIR / "dicom_ct200", n=200, size=512, seed=0)
    many = BENCH_DIR / "dicom_5x200"
    for s in range(5):
        write_series(many / f"series{s}", n=200, size=128, seed=10 + s, series_number=s + 1)
    print(f"data ready in {time.perf_counter() - t0:.1f} s ({ct}, {many})")
    volume_mb = read_medimg(ct).nbytes / 1e6

    results = read_case("ct200", ct, args.repeats, args.quick)
    real = {"chest_ct": SHARED / "dicom" / "chest_ct" / "series", "torchio_ct": SHARED / "dicom" / "torchio_ct"}
    for name, folder in real.items():
        if folder.is_dir():
            # torchio_ct reads in ~5 ms, where a busy machine's scheduling noise is as large
            # as the read: 5x the rounds for it, so its median means something
            rounds = args.repeats * (5 if name == "torchio_ct" else 1)
            results += read_case(name, folder, rounds, args.quick)
        else:
            print(f"skipped case {name}: real data not found at {folder}")
    results += discover_case("discover1000", many, args.repeats)
    if real["chest_ct"].is_dir():
        results += discover_case("discover_chest_ct", real["chest_ct"], args.repeats)

    med = next(r for r in results if r.case == "ct200" and r.tool == "medimg")
    title = (f"DICOM series read: synthetic 200 x 512 x 512 int16 ({volume_mb:.0f} MB), real chest CT "
             f"(139 x 512 x 512) and torchio CT (17 x 128 x 88); discovery on 1,000 files (5 series x 200) "
             f"and on the chest CT; median of {args.repeats} rounds in shuffled order")
    report("io_dicom", title, results, args.json, packages=("pydicom", "SimpleITK", "monai"),
           extra={"volume_mb": round(volume_mb, 1)})
    if med.peak_mb is not None:
        print(f"medimg peak memory / volume size: {med.peak_mb / volume_mb:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
