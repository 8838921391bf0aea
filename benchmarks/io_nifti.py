"""Reading and writing NIfTI: medimg vs SimpleITK, nibabel, MONAI and the strong simple way.

Usage::

    python benchmarks/io_nifti.py [--quick] [--json PATH] [--repeats N]

Input: a CT-like 512x512x200 int16 volume (0.7 x 0.7 x 2.5 mm, LPS), made once and cached
in ``.bench/`` (git-ignored): body, lungs, spine and ribs with smooth texture plus
Gaussian noise (sigma 18 HU) and an outside-FOV padding value, so it compresses like a real
CT (~2.2x with gzip -6), not like a constant array. ``--quick`` uses 128x128x40. The
``.nii.gz`` inputs sit in ``.bench/gz/``, away from the ``.nii``: given ``X.nii.gz``, ITK
reads the voxels from an ``X.nii`` beside it when there is one (seen with strace), which
made SimpleITK's ``.nii.gz`` read look 2.5x faster than it is.

Cases (each tool in turn, in an order shuffled each round, medians after a warm-up call):

* ``read .nii.gz``: ``medimg.io.read_image``; SimpleITK ``ReadImage`` +
  ``GetArrayViewFromImage``; nibabel ``np.asanyarray(img.dataobj)``; MONAI
  ``LoadImage(image_only=True)``; the strong simple peer ``nibabel+deflate`` (the header
  from ``nib.load``, the file inflated by one ``deflate.gzip_decompress`` call of
  libdeflate, the voxels by ``np.frombuffer``: what a competent user writes in six lines);
  medimg with each gzip backend; and the floors: gzip inflate alone of the in-memory file
  with stdlib zlib, ISA-L and libdeflate.
* ``read .nii.gz -> C float32 tensor``: what MONAI's loading produces, a C-ordered float32
  tensor ``(1, X, Y, Z)``: medimg ``read_image(p).data.to(float32,
  memory_format=contiguous_format)`` vs MONAI ``EnsureChannelFirst()(LoadImage(p))`` and
  ``nibabel+deflate`` followed by ``np.ascontiguousarray(..., float32)``.
* ``read .nii``: the same readers on the uncompressed file (nibabel with ``mmap=False``,
  so that it reads the voxels as the others do; the simple peer is ``nibabel+fromfile``).
* ``read .nii.gz real CT``: the shared real chest CT series (512x512x139 int16, real
  scanner noise) converted once to ``.nii.gz`` (gzip -6); skipped where the shared data
  (``MEDIMG_SHARED_DATA`` or ``../shared/data``) are absent, and with ``--quick``.
* ``read .nii.gz written by medimg``: the synthetic volume as ``write_image`` writes it
  (independent 4 MiB gzip members with an index, which medimg inflates in parallel
  threads). No ``nibabel+deflate`` here: ``deflate.gzip_decompress`` stops after the first
  gzip member and returns the first 4 MiB without an error.
* ``write .nii.gz level 1`` / ``level 6``: ``medimg.io.write_image(compresslevel=L)`` vs
  ``nibabel.save`` (``Opener.default_compresslevel = L``), SimpleITK ``WriteImage(...,
  useCompression=True, compressionLevel=L)`` and the simple peer ``nibabel+deflate``
  (header bytes + voxel bytes, one ``deflate.gzip_compress(blob, L)`` call). Every tool
  gets the level explicitly; the libraries' levels are not the same algorithm, so each
  file's size is reported beside its time (in the tool's note and in ``written_mb``).
  SimpleITK's NIfTI writer ignores ``compressionLevel`` (the same bytes at levels 0-9).

``agrees``: each tool's array equals medimg's voxel for voxel after accounting for axis
order (SimpleITK gives ``(z, y, x)``), and the geometry agrees (SimpleITK's LPS origin and
direction, MONAI's and nibabel's affine, within 1e-4 mm); for writers, reading the written
file back gives the same voxels and affine.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_DIR, REPO, Result, Tool, parse_args, report, run_case  # noqa: E402

SPACING = (0.7, 0.7, 2.5)


def ct_phantom(shape: tuple[int, int, int], seed: int = 0, noise: float = 18.0) -> np.ndarray:
    """A CT-like int16 volume in HU, Fortran-ordered ``(X, Y, Z)``.

    Air -1000 outside an elliptic body of soft tissue (~40 HU, smooth texture), two lungs
    (~-850 HU, textured), a spine (700 HU) and ribs (450 HU), Gaussian noise, and -3024
    outside the circular field of view, as scanners pad.
    """
    nx, ny, nz = shape
    rng = np.random.default_rng(seed)
    x = (np.arange(nx, dtype=np.float32) - nx / 2) / (nx / 2)
    y = (np.arange(ny, dtype=np.float32) - ny / 2) / (ny / 2)
    xx, yy = np.meshgrid(x, y, indexing="ij")
    fov = xx**2 + yy**2 <= 0.98
    angle_mask = np.sin(12 * np.arctan2(yy, xx)) > 0.3
    vol = np.empty(shape, dtype=np.int16, order="F")
    for k in range(nz):
        t = k / max(nz - 1, 1)
        ax, ay = 0.80 + 0.05 * np.sin(3 * t), 0.55 + 0.04 * np.cos(2 * t)
        r_body = np.sqrt((xx / ax) ** 2 + (yy / ay) ** 2)
        body = r_body <= 1
        sl = np.full((nx, ny), -1000.0, np.float32)
        sl[body] = 40 + 15 * np.sin(6 * xx[body] + 4 * t) * np.cos(5 * yy[body])
        lung_r = 0.25 + 0.1 * np.sin(np.pi * t)
        for cx in (-0.35, 0.35):
            lung = ((xx - cx) / lung_r) ** 2 + ((yy + 0.05) / (lung_r * 1.3)) ** 2 <= 1
            sl[lung] = -850 + 60 * np.sin(20 * xx[lung]) * np.sin(17 * yy[lung])
        sl[(xx**2 + (yy - 0.38) ** 2) <= 0.07**2] = 700
        sl[(np.abs(r_body - 0.88) < 0.03) & angle_mask] = 450
        sl += rng.normal(0, noise, size=(nx, ny)).astype(np.float32)
        sl[~fov] = -3024
        vol[:, :, k] = np.rint(sl)
    return vol


def make_inputs(shape: tuple[int, int, int]) -> tuple[Path, Path]:
    """The cached ``.nii`` and ``.nii.gz`` (gzip level 6, like ITK / dcm2niix output).

    The ``.nii.gz`` lives in its own folder (``.bench/gz/``): ITK's NIfTI reader (nifticlib),
    given ``X.nii.gz``, reads the voxels from an uncompressed ``X.nii`` when one sits beside
    it, so with both in one folder SimpleITK's ".nii.gz" time was really a ``.nii`` read.
    """
    import nibabel as nib

    BENCH_DIR.mkdir(exist_ok=True)
    stem = BENCH_DIR / f"ct_{shape[0]}x{shape[1]}x{shape[2]}_int16"
    gz_dir = BENCH_DIR / "gz"
    gz_dir.mkdir(exist_ok=True)
    nii, niigz = stem.with_suffix(".nii"), gz_dir / f"{stem.name}.nii.gz"
    if not nii.exists():
        print(f"making {nii.name} (once)...", file=sys.stderr, flush=True)
        affine = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])
        affine[:3, 3] = [180.0, 160.0, -250.0]
        img = nib.Nifti1Image(ct_phantom(shape), affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
        img.header.set_xyzt_units("mm", "sec")
        tmp = Path(f"{stem}.tmp.nii")
        nib.save(img, str(tmp))
        os.replace(tmp, nii)
    if not niigz.exists():
        print(f"making {niigz.name} (once)...", file=sys.stderr, flush=True)
        tmpgz = gz_dir / f"{stem.name}.tmp.gz"
        tmpgz.write_bytes(gzip.compress(nii.read_bytes(), 6))
        os.replace(tmpgz, niigz)
    assert not niigz.with_suffix("").exists(), "an uncompressed twin beside the .nii.gz biases ITK"
    return nii, niigz


def real_ct_input() -> Path | None:
    """The shared chest CT series (139 x 512 x 512, real scanner noise) as a cached
    ``.nii.gz`` (gzip -6), or None where the shared data are absent."""
    shared = Path(os.environ.get("MEDIMG_SHARED_DATA", REPO.parent / "shared" / "data"))
    series = shared / "dicom" / "chest_ct" / "series"
    out = BENCH_DIR / "chest_ct_real.nii.gz"
    if out.exists():
        return out
    if not series.is_dir():
        print(f"real CT series not found at {series}: case skipped", file=sys.stderr)
        return None
    import nibabel as nib

    from medimg.io import read_image

    img = read_image(series)
    arr = np.asfortranarray(img.numpy()[0])
    nimg = nib.Nifti1Image(arr, img.affine)
    nimg.set_qform(img.affine, code=1)
    nimg.set_sform(img.affine, code=1)
    BENCH_DIR.mkdir(exist_ok=True)
    tmp = BENCH_DIR / "chest_ct_real.tmp.nii"
    nib.save(nimg, str(tmp))
    gz = BENCH_DIR / "chest_ct_real.tmp.gz"
    gz.write_bytes(gzip.compress(tmp.read_bytes(), 6))
    tmp.unlink()
    os.replace(gz, out)
    return out


# ------------------------------------------------------------------------------------------
# the strong simple peer: nibabel's header, one libdeflate call, np.frombuffer
# ------------------------------------------------------------------------------------------
def simple_read_gz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(affine, voxels)`` of a ``.nii.gz`` the short way a competent user writes it."""
    import deflate
    import nibabel as nib
    from nibabel.volumeutils import apply_read_scaling

    img = nib.load(str(path))  # the header only: the voxels stay on disk
    px = img.dataobj
    n = int(np.prod(px.shape))
    buf = deflate.gzip_decompress(path.read_bytes(), px.offset + n * px.dtype.itemsize)
    arr = np.frombuffer(buf, px.dtype, n, px.offset).reshape(px.shape, order="F")
    return img.affine, apply_read_scaling(arr, px.slope, px.inter)


def simple_read_nii(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(affine, voxels)`` of a ``.nii``: nibabel's header and one ``np.fromfile``."""
    import nibabel as nib
    from nibabel.volumeutils import apply_read_scaling

    img = nib.load(str(path))
    px = img.dataobj
    arr = np.fromfile(path, px.dtype, int(np.prod(px.shape)), offset=px.offset)
    return img.affine, apply_read_scaling(arr.reshape(px.shape, order="F"), px.slope, px.inter)


def simple_write_gz(arr: np.ndarray, header: Any, path: Path, level: int) -> None:
    """Header bytes + voxel bytes, compressed by one ``deflate.gzip_compress`` call."""
    import deflate

    hdr = header.copy()
    hdr.set_slope_inter(1.0, 0.0)
    hdr["vox_offset"] = 352
    blob = hdr.binaryblock + b"\0" * 4 + arr.tobytes(order="F")
    path.write_bytes(deflate.gzip_compress(blob, level))


# ------------------------------------------------------------------------------------------
# cases
# ------------------------------------------------------------------------------------------
def _peers() -> dict[str, Any]:
    """The optional peers installed here: SimpleITK, MONAI loaders, deflate."""
    out: dict[str, Any] = {"sitk": None, "monai": None, "monai_cf": None, "deflate": None}
    try:
        import SimpleITK as sitk

        out["sitk"] = sitk
    except ImportError:
        print("SimpleITK not installed: skipped", file=sys.stderr)
    try:
        from monai.transforms import LoadImage

        out["monai"] = LoadImage(image_only=True)
        out["monai_cf"] = LoadImage(image_only=True, ensure_channel_first=True)
    except ImportError:
        print("MONAI not installed: skipped", file=sys.stderr)
    try:
        import deflate

        out["deflate"] = deflate
    except ImportError:
        print("deflate not installed: simple peer and libdeflate floor skipped", file=sys.stderr)
    return out


def _sitk_affine(im: Any) -> np.ndarray:
    """SimpleITK's LPS origin / direction / spacing as a voxel -> RAS+ affine."""
    lps = np.diag([-1.0, -1.0, 1.0])
    direction = np.asarray(im.GetDirection()).reshape(3, 3)
    aff = np.eye(4)
    aff[:3, :3] = lps @ direction @ np.diag(im.GetSpacing())
    aff[:3, 3] = lps @ np.asarray(im.GetOrigin())
    return aff


def _floor_tools(path: Path, ref: np.ndarray, peers: dict[str, Any]) -> list[Tool]:
    """Inflate alone of the in-memory file (one member: zlib.decompress stops after it)."""
    blob = path.read_bytes()
    raw_size = 352 + ref.nbytes

    def floor_check(buf) -> bool:
        got = np.frombuffer(buf, dtype=np.uint8, count=ref.nbytes, offset=352)
        return bool(np.array_equal(got, ref.T.reshape(-1).view(np.uint8)))

    tools = [Tool("inflate zlib", lambda: zlib.decompress(blob, 31, raw_size), floor_check,
                  peer=False, note="floor: stdlib zlib, bytes in memory")]
    try:
        from isal import isal_zlib

        tools.append(Tool("inflate isal", lambda: isal_zlib.decompress(blob, 31, raw_size),
                          floor_check, peer=False, note="floor: ISA-L, bytes in memory"))
    except ImportError:
        pass
    if peers["deflate"] is not None:
        gzd = peers["deflate"].gzip_decompress
        tools.append(Tool("inflate libdeflate", lambda: gzd(blob, raw_size), floor_check,
                          peer=False, note="floor: libdeflate, bytes in memory"))
    return tools


def read_tools(path: Path, peers: dict[str, Any], *, variants: bool = False,
               floors: bool = True, simple: bool = True) -> list[Tool]:
    """medimg and its peers reading ``path``, each checked against medimg's result."""
    import nibabel as nib

    from medimg.io import read_image
    from medimg.io._gzip import available_backends
    from medimg.io.nifti import read_nifti

    ref_img = read_image(path)
    ref, ref_affine = ref_img.numpy()[0], ref_img.affine  # (X, Y, Z), Fortran-ordered view

    def ok(affine: Any, arr: Any) -> bool:
        return (np.asarray(arr).shape == ref.shape and bool(np.array_equal(np.asarray(arr), ref))
                and bool(np.allclose(np.asarray(affine, dtype=np.float64), ref_affine, atol=1e-4)))

    gz = path.name.endswith(".gz")
    tools = [Tool("medimg", lambda: read_image(path), lambda im: ok(im.affine, im.numpy()[0]),
                  peer=False)]
    if gz and variants:
        for b in available_backends():
            tools.append(Tool(f"medimg[{b}]", lambda b=b: read_nifti(path, backend=b),
                              lambda im: ok(im.affine, im.numpy()[0]), peer=False,
                              note="medimg with this gzip backend"))
    if simple and (peers["deflate"] is not None or not gz):
        tools.append(Tool("nibabel+deflate" if gz else "nibabel+fromfile",
                          (lambda: simple_read_gz(path)) if gz else (lambda: simple_read_nii(path)),
                          lambda o: ok(*o), note="strong simple peer: nib.load header, "
                          + ("deflate.gzip_decompress, np.frombuffer" if gz else "np.fromfile")))
    if peers["sitk"] is not None:
        sitk = peers["sitk"]

        def sitk_read():
            im = sitk.ReadImage(str(path))
            return im, sitk.GetArrayViewFromImage(im)

        tools.append(Tool("SimpleITK", sitk_read, lambda o: ok(_sitk_affine(o[0]), o[1].T)))

    def nib_read():  # mmap=False: read the voxels, as the others do (a memmap defers it)
        im = nib.load(str(path), mmap=False)
        return im.affine, np.asanyarray(im.dataobj)

    tools.append(Tool("nibabel", nib_read, lambda o: ok(*o),
                      note="np.asanyarray(nib.load(p, mmap=False).dataobj)"))
    if peers["monai"] is not None:
        loader = peers["monai"]
        tools.append(Tool("MONAI", lambda: loader(str(path)),
                          lambda t: ok(t.affine, np.asarray(t).astype(ref.dtype))
                          and np.asarray(t).dtype == np.float32,
                          note="LoadImage(image_only=True): float32, C order"))
    if gz and floors:
        tools += _floor_tools(path, ref, peers)
    elif not gz:
        tools.append(Tool("read bytes", lambda: path.read_bytes(),
                          lambda b: len(b) == 352 + ref.nbytes, peer=False,
                          note="floor: the file's bytes"))
    return tools


def tensor_tools(path: Path, peers: dict[str, Any]) -> list[Tool]:
    """What MONAI's loading produces, a C-ordered float32 ``(1, X, Y, Z)`` tensor, by each tool."""
    import torch

    from medimg.io import read_image

    want = torch.from_numpy(np.ascontiguousarray(read_image(path).numpy(), dtype=np.float32))

    def ok(t: Any) -> bool:
        t = torch.as_tensor(t).as_subclass(torch.Tensor)
        return (t.dtype == torch.float32 and t.is_contiguous() and t.shape == want.shape
                and bool(torch.equal(t, want)))

    def ours() -> Any:
        return read_image(path).data.to(torch.float32, memory_format=torch.contiguous_format)

    tools = [Tool("medimg", ours, ok, peer=False,
                  note="read_image(p).data.to(float32, memory_format=contiguous_format)")]
    if peers["monai_cf"] is not None:
        loader = peers["monai_cf"]
        tools.append(Tool("MONAI", lambda: loader(str(path)), ok,
                          note="LoadImage(image_only=True, ensure_channel_first=True)"))
    if peers["deflate"] is not None:
        tools.append(Tool("nibabel+deflate", lambda: torch.from_numpy(
            np.ascontiguousarray(simple_read_gz(path)[1], dtype=np.float32))[None], ok,
            note="simple peer, then np.ascontiguousarray(arr, float32)"))
    return tools


def write_tools(src: Path, level: int, outdir: Path, peers: dict[str, Any],
                ) -> tuple[list[Tool], dict[str, Path]]:
    """Every writer at gzip ``level`` (given to each explicitly), each to its own file,
    checked by reading the file back; returns the tools and their output files."""
    import nibabel as nib

    from medimg.io import read_image, write_image

    ref_img = read_image(src)
    nib_img = nib.load(str(src))
    nib_arr = np.asanyarray(nib_img.dataobj)
    outs = {name: outdir / f"{name}_l{level}.nii.gz"
            for name in ("medimg", "nibabel", "SimpleITK", "nibabel+deflate")}

    def ok_file(name: str) -> Callable[[Any], bool]:
        def check(_: Any) -> bool:
            back = read_image(outs[name])
            return bool(np.array_equal(back.numpy(), ref_img.numpy())) and bool(
                np.allclose(back.affine, ref_img.affine, atol=1e-4))
        return check

    def nib_save() -> None:
        opener = nib.openers.Opener
        old, opener.default_compresslevel = opener.default_compresslevel, level
        try:
            nib.save(nib.Nifti1Image(nib_arr, nib_img.affine, nib_img.header), str(outs["nibabel"]))
        finally:
            opener.default_compresslevel = old

    tools = [
        Tool("medimg", lambda: write_image(ref_img, outs["medimg"], compresslevel=level),
             ok_file("medimg"), peer=False, note=f"write_image(compresslevel={level})"),
        Tool("nibabel", nib_save, ok_file("nibabel"),
             note=f"nib.save, Opener.default_compresslevel={level}"),
    ]
    if peers["sitk"] is not None:
        sitk, sitk_img = peers["sitk"], peers["sitk"].ReadImage(str(src))
        def sitk_write() -> None:
            sitk.WriteImage(sitk_img, str(outs["SimpleITK"]), useCompression=True,
                            compressionLevel=level)

        tools.append(Tool("SimpleITK", sitk_write, ok_file("SimpleITK"),
                          note=f"WriteImage(compressionLevel={level}): ignored for NIfTI"))
    if peers["deflate"] is not None:
        def simple_write() -> None:
            simple_write_gz(nib_arr, nib_img.header, outs["nibabel+deflate"], level)

        tools.append(Tool("nibabel+deflate", simple_write, ok_file("nibabel+deflate"),
                          note=f"header + voxel bytes, deflate.gzip_compress(level={level})"))
    return tools, {t.name: outs[t.name] for t in tools}


def _add_sizes(results: list[Result], case: str, outs: dict[str, Path],
               sizes: dict[str, Any]) -> None:
    """Each writer's file size, in its result's note and in ``sizes[case]`` (MB)."""
    sizes[case] = {}
    for r in results:
        if r.case == case and r.tool in outs and outs[r.tool].exists():
            mb = round(outs[r.tool].stat().st_size / 1e6, 2)
            sizes[case][r.tool] = mb
            r.note = f"{r.note}; {mb} MB"
            outs[r.tool].unlink()


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__.splitlines()[0], argv)
    shape = (128, 128, 40) if args.quick else (512, 512, 200)
    nii, niigz = make_inputs(shape)
    real = None if args.quick else real_ct_input()
    peers = _peers()

    from medimg.io import read_image, write_image

    cases: dict[str, list[Tool]] = {
        "read .nii.gz": read_tools(niigz, peers, variants=True),
        "read .nii.gz -> C float32 tensor": tensor_tools(niigz, peers),
        "read .nii": read_tools(nii, peers),
    }
    if real is not None:
        cases["read .nii.gz real CT"] = read_tools(real, peers)
    # the same volume as written by medimg (indexed parallel gzip members); deflate's
    # gzip_decompress reads only the first member, so no simple peer here
    ours = write_image(read_image(niigz), niigz.with_name(f"{niigz.name[:-7]}_medimg.nii.gz"))
    cases["read .nii.gz written by medimg"] = read_tools(ours, peers, floors=False, simple=False)
    tmpdir = Path(tempfile.mkdtemp(prefix="medimg_bench_"))
    outs: dict[str, dict[str, Path]] = {}
    for level in (1, 6):
        case = f"write .nii.gz level {level}"
        cases[case], outs[case] = write_tools(niigz, level, tmpdir, peers)

    results: list[Result] = []
    sizes: dict[str, Any] = {}
    write_reps = max(1, min(args.repeats, 5))
    for case, tools in cases.items():
        got = run_case(case, tools, write_reps if case.startswith("write") else args.repeats)
        if case in outs:
            _add_sizes(got, case, outs[case], sizes)
        results += got
    for f in tmpdir.iterdir():
        f.unlink()
    tmpdir.rmdir()

    raw_bytes = int(np.prod(shape)) * 2
    extra: dict[str, Any] = {
        "input": {
            "shape": list(shape), "dtype": "int16", "spacing_mm": list(SPACING),
            "raw_mb": round(raw_bytes / 1e6, 1), "gz_mb": round(niigz.stat().st_size / 1e6, 1),
            "compression_ratio": round((raw_bytes + 352) / niigz.stat().st_size, 2),
        },
        "written_mb": sizes,
        "repeats": args.repeats,
    }
    if real is not None:
        extra["real_ct"] = {"file": real.name, "gz_mb": round(real.stat().st_size / 1e6, 1),
                            "source": "shared/data/dicom/chest_ct/series (512x512x139 int16), "
                                      "gzip -6"}
    title = (f"NIfTI I/O, {shape[0]}x{shape[1]}x{shape[2]} int16 "
             f"({extra['input']['raw_mb']} MB raw, {extra['input']['gz_mb']} MB .nii.gz); "
             f"median of {args.repeats} runs (writes: of {write_reps})")
    print(f"written sizes (MB): {sizes}")
    return report("io_nifti", title, results, args.json,
                  packages=("nibabel", "SimpleITK", "monai", "isal", "deflate"), extra=extra)


if __name__ == "__main__":
    main()
