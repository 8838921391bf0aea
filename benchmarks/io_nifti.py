"""Reading and writing NIfTI: medimg vs SimpleITK, nibabel and MONAI, with the inflate floor.

Usage::

    python benchmarks/io_nifti.py [--quick] [--json PATH] [--repeats N]

Input: a CT-like 512x512x200 int16 volume (0.7 x 0.7 x 2.5 mm, LPS), made once and cached
in ``.bench/`` (git-ignored): body, lungs, spine and ribs with smooth texture plus
Gaussian noise (sigma 18 HU) and an outside-FOV padding value, so it compresses like a real
CT (~2.2x with gzip -6), not like a constant array. ``--quick`` uses 128x128x40. The
``.nii.gz`` inputs sit in ``.bench/gz/``, away from the ``.nii``: given ``X.nii.gz``, ITK
reads the voxels from an ``X.nii`` beside it when there is one (seen with strace), which
made SimpleITK's ``.nii.gz`` read look 2.5x faster than it is.

Cases (each tool in turn, medians after a warm-up call):

* ``read .nii.gz``: ``medimg.io.read_image``; SimpleITK ``ReadImage`` +
  ``GetArrayViewFromImage``; nibabel ``np.asanyarray(img.dataobj)``; MONAI
  ``LoadImage(image_only=True)``; medimg with each gzip backend; and the floors: gzip
  inflate alone of the in-memory file with stdlib zlib, ISA-L and libdeflate.
* ``read .nii``: the same readers on the uncompressed file (nibabel with ``mmap=False``,
  so that it reads the voxels as the others do).
* ``read .nii.gz real CT``: the shared real chest CT series (512x512x139 int16, real
  scanner noise) converted once to ``.nii.gz`` (gzip -6); skipped where the shared data
  are absent, and with ``--quick``.
* ``read .nii.gz written by medimg``: the synthetic volume as ``write_image`` writes it
  (independent 4 MiB gzip members with an index, which medimg inflates in parallel threads).
* ``write .nii.gz``: ``medimg.io.write_image`` vs ``nibabel.save`` and SimpleITK
  ``WriteImage`` (each at its default compression).

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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_DIR, Result, Tool, parse_args, report, run_case  # noqa: E402

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
    series = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dicom" / "chest_ct" / "series"
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


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__.splitlines()[0], argv)
    shape = (128, 128, 40) if args.quick else (512, 512, 200)
    nii, niigz = make_inputs(shape)
    real = None if args.quick else real_ct_input()

    import nibabel as nib

    from medimg.io import read_image, write_image
    from medimg.io._gzip import available_backends
    from medimg.io.nifti import read_nifti

    try:
        import SimpleITK as sitk
    except ImportError:
        sitk = None
        print("SimpleITK not installed: skipped", file=sys.stderr)
    try:
        from monai.transforms import LoadImage

        monai_loader = LoadImage(image_only=True)
    except ImportError:
        monai_loader = None
        print("MONAI not installed: skipped", file=sys.stderr)

    def read_tools(label: str, path: Path, variants: bool, floors: bool = True) -> list[Tool]:
        """medimg and its peers reading ``path``, each checked against medimg's result."""
        ref_img = read_image(path)
        ref = ref_img.numpy()[0]  # (X, Y, Z), Fortran-ordered view
        ref_affine = ref_img.affine
        raw_size = 352 + ref.nbytes

        def same_xyz(arr: np.ndarray) -> bool:
            return arr.shape == ref.shape and bool(np.array_equal(np.asarray(arr), ref))

        def affine_ok(aff: np.ndarray) -> bool:
            return bool(np.allclose(np.asarray(aff, dtype=np.float64), ref_affine, atol=1e-4))

        def check_medimg(img) -> bool:
            return same_xyz(img.numpy()[0]) and affine_ok(img.affine)

        gz = path.name.endswith(".gz")
        tools = [Tool("medimg", lambda: read_image(path), check_medimg, peer=False)]
        if gz and variants:
            for b in available_backends():
                tools.append(Tool(f"medimg[{b}]", lambda b=b: read_nifti(path, backend=b),
                                  check_medimg, note="medimg with this gzip backend"))
        if sitk is not None:
            def sitk_read():
                im = sitk.ReadImage(str(path))
                return im, sitk.GetArrayViewFromImage(im)

            def sitk_check(out) -> bool:
                im, arr = out
                lps = np.diag([-1.0, -1.0, 1.0])
                direction = np.asarray(im.GetDirection()).reshape(3, 3)
                aff = np.eye(4)
                aff[:3, :3] = lps @ direction @ np.diag(im.GetSpacing())
                aff[:3, 3] = lps @ np.asarray(im.GetOrigin())
                return same_xyz(arr.T) and affine_ok(aff)

            tools.append(Tool("SimpleITK", sitk_read, sitk_check))

        def nib_read():
            # mmap=False: read the voxels, as the others do (a memmap would defer the read)
            im = nib.load(str(path), mmap=False)
            return im.affine, np.asanyarray(im.dataobj)

        tools.append(Tool("nibabel", nib_read, lambda o: same_xyz(o[1]) and affine_ok(o[0]),
                          note="np.asanyarray(nib.load(p, mmap=False).dataobj)"))
        if monai_loader is not None:
            def monai_check(t) -> bool:
                return bool(np.array_equal(np.asarray(t), ref.astype(np.float32))) and affine_ok(
                    np.asarray(t.affine))

            tools.append(Tool("MONAI", lambda: monai_loader(str(path)), monai_check,
                              note="LoadImage(image_only=True): float32, C order"))
        if gz and floors:  # one-member floors (zlib.decompress stops after the first member)
            blob = path.read_bytes()

            def floor_check(buf) -> bool:
                got = np.frombuffer(buf, dtype=np.uint8, count=ref.nbytes, offset=352)
                return bool(np.array_equal(got, ref.T.reshape(-1).view(np.uint8)))

            tools.append(Tool("inflate zlib", lambda: zlib.decompress(blob, 31, raw_size), floor_check,
                              note="floor: stdlib zlib, bytes in memory"))
            try:
                from isal import isal_zlib

                tools.append(Tool("inflate isal", lambda: isal_zlib.decompress(blob, 31, raw_size),
                                  floor_check, note="floor: ISA-L, bytes in memory"))
            except ImportError:
                pass
            try:
                import deflate

                tools.append(Tool("inflate libdeflate", lambda: deflate.gzip_decompress(blob, raw_size),
                                  floor_check, note="floor: libdeflate, bytes in memory"))
            except ImportError:
                pass
        elif not gz:
            tools.append(Tool("read bytes", lambda: path.read_bytes(),
                              lambda b: len(b) == raw_size, note="floor: the file's bytes"))
        return tools

    tools_by_case: dict[str, list[Tool]] = {
        "read .nii.gz": read_tools("read .nii.gz", niigz, variants=True),
        "read .nii": read_tools("read .nii", nii, variants=False),
    }
    if real is not None:
        tools_by_case["read .nii.gz real CT"] = read_tools("read .nii.gz real CT", real, variants=False)
    # the same volume as written by medimg (indexed parallel gzip members)
    ours = write_image(read_image(niigz), niigz.with_name(f"{niigz.name[:-7]}_medimg.nii.gz"))
    tools_by_case["read .nii.gz written by medimg"] = read_tools("read .nii.gz written by medimg", ours,
                                                                 variants=False, floors=False)

    # writing: each writer to its own file in a temp folder, checked by reading back
    ref_img = read_image(niigz)
    tmpdir = Path(tempfile.mkdtemp(prefix="medimg_bench_"))
    out_m, out_n, out_s = (tmpdir / f"{n}.nii.gz" for n in ("medimg", "nibabel", "sitk"))
    nib_img = nib.load(str(niigz))
    nib_arr = np.asanyarray(nib_img.dataobj)

    def written_ok(p: Path) -> bool:
        back = read_image(p)
        return bool(np.array_equal(back.numpy(), ref_img.numpy())) and bool(
            np.allclose(back.affine, ref_img.affine, atol=1e-4))

    wtools = [
        Tool("medimg", lambda: write_image(ref_img, out_m), lambda _: written_ok(out_m), peer=False,
             note="ISA-L level 2, parallel members"),
        Tool("nibabel", lambda: nib.save(nib.Nifti1Image(nib_arr, nib_img.affine, nib_img.header), str(out_n)),
             lambda _: written_ok(out_n), note="nib.save, default level"),
    ]
    if sitk is not None:
        sitk_img = sitk.ReadImage(str(niigz))
        wtools.append(Tool("SimpleITK", lambda: sitk.WriteImage(sitk_img, str(out_s), useCompression=True),
                           lambda _: written_ok(out_s), note="WriteImage(useCompression=True)"))
    tools_by_case["write .nii.gz"] = wtools

    results: list[Result] = []
    for case, tools in tools_by_case.items():
        reps = args.repeats if case.startswith("read .nii.gz") else max(1, min(args.repeats, 5))
        results += run_case(case, tools, reps)
    sizes = {p.stem.split(".")[0]: p.stat().st_size for p in (out_m, out_n, out_s) if p.exists()}
    for p in (out_m, out_n, out_s):
        p.unlink(missing_ok=True)
    tmpdir.rmdir()

    raw_bytes = int(np.prod(shape)) * 2
    extra = {
        "input": {
            "shape": list(shape), "dtype": "int16", "spacing_mm": list(SPACING),
            "raw_mb": round(raw_bytes / 1e6, 1), "gz_mb": round(niigz.stat().st_size / 1e6, 1),
            "compression_ratio": round((raw_bytes + 352) / niigz.stat().st_size, 2),
        },
        "written_mb": {k: round(v / 1e6, 1) for k, v in sizes.items()},
        "repeats": args.repeats,
    }
    if real is not None:
        extra["real_ct"] = {"file": real.name, "gz_mb": round(real.stat().st_size / 1e6, 1),
                            "source": "shared/data/dicom/chest_ct/series (512x512x139 int16), gzip -6"}
    title = (f"NIfTI I/O, {shape[0]}x{shape[1]}x{shape[2]} int16 "
             f"({extra['input']['raw_mb']} MB raw, {extra['input']['gz_mb']} MB .nii.gz); "
             f"median of {args.repeats} runs (writes: of {min(args.repeats, 5)})")
    print(f"written sizes (MB): {extra['written_mb']}")
    return report("io_nifti", title, results, args.json,
                  packages=("nibabel", "SimpleITK", "monai", "isal", "deflate"), extra=extra)


if __name__ == "__main__":
    main()
