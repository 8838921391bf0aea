"""medimg.io.dicom on synthetic series (written with pydicom in tmp_path) and real data."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid  # noqa: E402

from medimg.core.affine import orientation_transform, reoriented_affine  # noqa: E402
from medimg.core.errors import DicomError, DicomSeriesError, MissingDependencyError  # noqa: E402
from medimg.io.dicom import find_series, load_series_datasets, read_dicom, read_dicom_volumes  # noqa: E402

from tests.conftest import shared_path  # noqa: E402

CT = "1.2.840.10008.5.1.4.1.1.2"
SR = "1.2.840.10008.5.1.4.1.1.88.11"

# ------------------------------------------------------------------------------------------
# synthetic series
# ------------------------------------------------------------------------------------------


def pattern(k: int, rows: int, cols: int) -> np.ndarray:
    """Stored value at (row r, col c) of slice k: 100*k + 10*r + c (unique, readable)."""
    r, c = np.mgrid[0:rows, 0:cols]
    return (100 * k + 10 * r + c).astype(np.int16)


def write_slice(
    path: Path,
    pixels: np.ndarray,
    ipp,
    *,
    series_uid: str,
    study_uid: str = "1.2.3.4",
    iop=(1, 0, 0, 0, 1, 0),
    spacing=(0.5, 0.7),
    instance: int = 1,
    slope: float | None = 1.0,
    intercept: float | None = -1024.0,
    ts=ExplicitVRLittleEndian,
    pixel_repr: int = 1,
    extra: dict | None = None,
    with_meta: bool = True,
    with_pixels: bool = True,
) -> None:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.3.4.5"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.SeriesDescription = "synthetic chest"
    ds.SeriesNumber = 3
    ds.PatientName = "Secret^Person"
    ds.PatientID = "MRN12345"
    ds.PatientBirthDate = "19700101"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [float(v) for v in ipp]
    ds.ImageOrientationPatient = [float(v) for v in iop]
    ds.PixelSpacing = [float(v) for v in spacing]
    ds.SliceThickness = 5.0  # deliberately not the spacing: the reader must ignore it
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = pixel_repr
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    if with_pixels:
        ds.PixelData = pixels.astype(np.int16 if pixel_repr else np.uint16).tobytes()
    if with_meta:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ts
        ds.file_meta.MediaStorageSOPClassUID = CT
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(path, enforce_file_format=True, implicit_vr=(ts == ImplicitVRLittleEndian), little_endian=True)
    else:
        ds.save_as(path, enforce_file_format=False, implicit_vr=True, little_endian=True)


def write_series(
    folder: Path,
    n: int = 5,
    rows: int = 6,
    cols: int = 4,
    step: float = 2.0,
    iop=(1, 0, 0, 0, 1, 0),
    origin=(10.0, -20.0, 30.0),
    positions: list | None = None,
    uid: str | None = None,
    prefix: str = "img",
    extra_per_slice=None,
    **kwargs,
) -> tuple[str, list[np.ndarray]]:
    """Write ``n`` slices with shuffled names and InstanceNumber against position order."""
    folder.mkdir(parents=True, exist_ok=True)
    uid = generate_uid() if uid is None else uid
    r, c = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(r, c)
    if positions is None:
        positions = [np.asarray(origin) + k * step * normal for k in range(n)]
    order = np.random.default_rng(0).permutation(len(positions))
    for k in order:
        extra = extra_per_slice(k) if extra_per_slice else None
        write_slice(folder / f"{prefix}{(k * 7919) % 1000:04d}", pattern(k, rows, cols), positions[k],
                    series_uid=uid, iop=iop, instance=len(positions) - k, extra=extra, **kwargs)
    return uid, positions


def world_of(img, i, j, k) -> np.ndarray:
    return (img.affine @ np.array([i, j, k, 1.0]))[:3]


def lps(p) -> np.ndarray:
    p = np.asarray(p, float)
    return np.array([-p[0], -p[1], p[2]])


# ------------------------------------------------------------------------------------------
# geometry and values
# ------------------------------------------------------------------------------------------


def test_sorted_by_position_and_axes(tmp_path):
    write_series(tmp_path / "s", n=5, rows=6, cols=4, step=2.0)
    img = read_dicom(tmp_path / "s")
    assert img.shape == (1, 4, 6, 5)  # (C, I=columns, J=rows, K=slices)
    assert img.dtype.is_floating_point is False
    data = img.numpy()[0]
    for k in range(5):
        for j in range(6):
            for i in range(4):
                assert data[i, j, k] == 100 * k + 10 * j + i - 1024
    # spacing from positions (2.0), not SliceThickness (5.0); PixelSpacing = [row, column]
    np.testing.assert_allclose(img.spacing, (0.7, 0.5, 2.0))
    # voxel (i, j, k) lies at IPP_k + i * colspacing * r + j * rowspacing * c, in RAS
    np.testing.assert_allclose(world_of(img, 3, 5, 4), lps([10 + 3 * 0.7, -20 + 5 * 0.5, 30 + 8.0]), atol=1e-6)


@pytest.mark.parametrize("iop", [(-1, 0, 0, 0, -1, 0), (0, 1, 0, 0, 0, -1),
                                 (0.8660254, 0.5, 0, -0.5, 0.8660254, 0), (1, 0, 0, 0, 0.6, -0.8)])
def test_affine_places_every_voxel(tmp_path, iop):
    _, positions = write_series(tmp_path / "s", n=4, rows=5, cols=3, step=1.5, iop=iop)
    img = read_dicom(tmp_path / "s")
    r, c = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    data = img.numpy()[0]
    for k in range(4):
        for (i, j) in [(0, 0), (2, 4), (1, 3)]:
            expected = positions[k] + i * 0.7 * r + j * 0.5 * c  # PixelSpacing (0.5 rows, 0.7 cols)
            np.testing.assert_allclose(world_of(img, i, j, k), lps(expected), atol=1e-5)
            assert data[i, j, k] == 100 * k + 10 * j + i - 1024


def test_modality_lut_dtypes(tmp_path):
    write_series(tmp_path / "a", n=2, slope=0.5, intercept=3.0)
    img = read_dicom(tmp_path / "a")
    assert str(img.dtype) == "torch.float32"
    assert float(img.data[0, 1, 2, 1]) == pytest.approx(0.5 * (100 + 20 + 1) + 3.0)
    write_series(tmp_path / "b", n=2, slope=None, intercept=None)
    assert str(read_dicom(tmp_path / "b").dtype) == "torch.int16"
    raw = read_dicom(tmp_path / "a", rescale=False)
    assert int(raw.data[0, 1, 2, 1]) == 121


def test_unsigned_values_beyond_int16_get_a_wider_dtype(tmp_path):
    folder = tmp_path / "u"
    uid = generate_uid()
    for k in range(2):
        px = pattern(k, 4, 4).astype(np.uint16) + 60000
        folder.mkdir(exist_ok=True)
        write_slice(folder / f"u{k}", px.view(np.int16), (0, 0, 2.0 * k), series_uid=uid, pixel_repr=0, intercept=-1024)
    img = read_dicom(folder)
    assert str(img.dtype) == "torch.int32"
    assert int(img.data[0, 0, 0, 1]) == 60000 + 100 - 1024


def test_meta_has_uids_in_slice_order_and_no_patient_identity(tmp_path):
    uid, _ = write_series(tmp_path / "s", n=3)
    img = read_dicom(tmp_path / "s")
    m = img.meta
    assert m["series_instance_uid"] == uid and m["modality"] == "CT" and m["manufacturer"] == "ACME"
    assert m["num_files"] == 3 and m["transfer_syntax"] == ["Explicit VR Little Endian"]
    files = m["files"]
    zs = [float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in files]
    assert zs == sorted(zs)
    assert m["sop_instance_uids"] == [pydicom.dcmread(f).SOPInstanceUID for f in files]
    assert [f for _, f in m["source_frames"]] == [1, 1, 1]
    text = repr(m)
    assert "Secret" not in text and "MRN12345" not in text and "19700101" not in text
    dss = load_series_datasets(tmp_path / "s")
    assert [d.SOPInstanceUID for d in dss] == m["sop_instance_uids"]


def test_implicit_and_explicit_agree(tmp_path):
    write_series(tmp_path / "e", n=3, ts=ExplicitVRLittleEndian)
    write_series(tmp_path / "i", n=3, ts=ImplicitVRLittleEndian)
    a, b = read_dicom(tmp_path / "e"), read_dicom(tmp_path / "i")
    assert np.array_equal(a.numpy(), b.numpy()) and np.allclose(a.affine, b.affine)


# ------------------------------------------------------------------------------------------
# discovery and bad input
# ------------------------------------------------------------------------------------------


def test_find_series_groups_and_reports(tmp_path):
    root = tmp_path / "study"
    uid_a, _ = write_series(root / "deep" / "a", n=3, prefix="x")
    uid_b, _ = write_series(root / "b", n=4, prefix="y", origin=(0, 0, 0))
    (root / "notes.txt").write_text("not dicom")
    (root / "empty.dcm").write_bytes(b"")
    good = next((root / "b").iterdir())
    (root / "truncated.dcm").write_bytes(good.read_bytes()[:-20])
    write_slice(root / "nopixels.dcm", pattern(0, 6, 4), (0, 0, 99), series_uid=uid_b, with_pixels=False)
    sr = Dataset()
    sr.SOPClassUID, sr.SOPInstanceUID, sr.SeriesInstanceUID, sr.Modality = SR, generate_uid(), generate_uid(), "SR"
    sr.StudyInstanceUID = "1.2.3.4"
    sr.file_meta = FileMetaDataset()
    sr.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sr.file_meta.MediaStorageSOPClassUID = SR
    sr.file_meta.MediaStorageSOPInstanceUID = sr.SOPInstanceUID
    sr.save_as(root / "report", enforce_file_format=True)

    scan = find_series(root)
    assert {s.key for s in scan} == {uid_a, uid_b}
    assert {s.key: s.num_files for s in scan} == {uid_a: 3, uid_b: 4}
    assert all(s.status == "ok" for s in scan)
    assert [s.modality for s in scan.non_image] == ["SR"]
    reasons = {Path(p).name: r for p, r in scan.unreadable}
    assert "not a DICOM" in reasons["notes.txt"]
    assert reasons["empty.dcm"] == "empty file"
    assert "truncated pixel data" in reasons["truncated.dcm"]
    assert "without pixel data" in reasons["nopixels.dcm"]

    with pytest.raises(DicomSeriesError) as exc:
        read_dicom(root)
    msg = str(exc.value)
    assert "2 DICOM image series" in msg and uid_a in msg and uid_b in msg and "series_uid" in msg
    assert sorted(exc.value.choices) == sorted([uid_a, uid_b])  # structured, for front ends
    assert "find_series(path)" not in exc.value.hint and "--series" not in exc.value.hint
    assert "`medimg convert`" in exc.value.cli_hint and "series_uid" not in exc.value.cli_hint
    img = read_dicom(root, series_uid=uid_b)
    assert img.spatial_shape == (4, 6, 4)
    with pytest.raises(DicomSeriesError, match="no DICOM series '1.2.999'"):
        read_dicom(root, series_uid="1.2.999")


def test_folder_without_dicom(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 200)
    with pytest.raises(DicomError) as exc:
        read_dicom(tmp_path)
    assert "no readable DICOM image series" in str(exc.value) and "a.txt" in str(exc.value)
    assert len(find_series(tmp_path).unreadable) == 2


def test_missing_meta_header_is_read_with_a_warning(tmp_path):
    uid = generate_uid()
    for k in range(3):
        write_slice(tmp_path / f"s{k}", pattern(k, 4, 4), (0, 0, 3.0 * k), series_uid=uid, with_meta=k != 1)
    scan = find_series(tmp_path)
    assert len(scan) == 1 and scan[0].num_files == 3
    assert any("no DICOM file meta header" in w for w in scan.warnings)
    assert read_dicom(tmp_path).spatial_shape == (4, 4, 3)


def test_wrong_vr_geometry_is_reported_per_file(tmp_path):
    uid, _ = write_series(tmp_path, n=4)
    bad = tmp_path / "bad.dcm"
    write_slice(bad, pattern(9, 6, 4), (10, -20, 38.0), series_uid=uid)
    ds = pydicom.dcmread(bad)
    del ds.ImagePositionPatient
    ds.add_new(0x00200032, "LO", "left\\up\\high")  # wrong VR and not numbers
    ds.save_as(bad, enforce_file_format=True)
    ok = tmp_path / "ok_lo.dcm"  # wrong VR, readable numbers: accepted
    write_slice(ok, pattern(4, 6, 4), (10, -20, 38.0), series_uid=uid)
    ds = pydicom.dcmread(ok)
    del ds.ImagePositionPatient
    ds.add_new(0x00200032, "LO", "10\\-20\\38")
    ds.save_as(ok, enforce_file_format=True)
    scan = find_series(tmp_path)
    assert [(Path(p).name, "invalid ImagePositionPatient value" in r) for p, r in scan.unreadable] == [("bad.dcm", True)]
    assert read_dicom(tmp_path).spatial_shape == (4, 6, 5)


def test_empty_series_uid_grouped_by_other_tags(tmp_path):
    write_series(tmp_path, n=3, uid="")
    scan = find_series(tmp_path)
    assert len(scan) == 1 and scan[0].key.startswith("noSeriesUID-")
    assert read_dicom(tmp_path).spatial_shape[2] == 3


# ------------------------------------------------------------------------------------------
# validation outcomes
# ------------------------------------------------------------------------------------------


def tilted_positions(n=5, step=2.0, shift=0.3):
    return [np.array([0.0, k * shift, k * step]) for k in range(n)]


def test_gantry_tilt_error_shear_and_resample(tmp_path):
    pos = tilted_positions()
    write_series(tmp_path, positions=pos, rows=8, cols=8, spacing=(0.5, 0.5))
    with pytest.raises(DicomSeriesError) as exc:
        read_dicom(tmp_path)
    msg = str(exc.value)
    assert "gantry tilt" in msg and "8.53 degrees" in msg and "gantry_tilt='shear'" in msg
    assert exc.value.files and exc.value.series_uid
    assert find_series(tmp_path)[0].status == "error"

    sheared = read_dicom(tmp_path, gantry_tilt="shear")
    for k in range(5):  # exact: voxel (i, j, k) where the scanner put it
        np.testing.assert_allclose(world_of(sheared, 2, 3, k), lps(pos[k] + [2 * 0.5, 3 * 0.5, 0]), atol=1e-6)
    res = read_dicom(tmp_path, gantry_tilt="resample")
    d = res.direction
    assert np.allclose(d.T @ d, np.eye(3), atol=1e-6)  # orthogonal grid
    assert res.spacing[2] == pytest.approx(2.0)
    # the slice k is shifted by 0.3 mm * k along j (0.6 voxel/slice): check one voxel
    # where the source value is known by linear interpolation along rows (10 per row)
    src = sheared.numpy()[0].astype(float)
    k, i, j = 2, 3, 2  # resampled (i, j, k) = source slice k at row j - 0.6*k*... sampled
    world = world_of(res, i, j, k)
    jj = (lps(world)[1] - pos[k][1]) / 0.5
    expected = np.interp(jj, np.arange(8), src[i, :, k])
    assert float(res.data[0, i, j, k]) == pytest.approx(expected, abs=1e-3)
    assert "gantry tilt" in res.meta["notes"][0]


def test_missing_slice_error_and_resample(tmp_path):
    pos = [np.array([0.0, 0.0, z]) for z in (0, 2, 4, 8, 10)]
    write_series(tmp_path, positions=pos)
    with pytest.raises(DicomSeriesError, match=r"missing slices: 1 slice\(s\) missing") as exc:
        read_dicom(tmp_path)
    assert len(exc.value.files) == 2
    img = read_dicom(tmp_path, uneven_spacing="resample")
    assert img.spatial_shape[2] == 6 and img.spacing[2] == pytest.approx(2.0)
    # the missing slice at z=6 is the mean of its neighbours (linear)
    raw = read_dicom(tmp_path, uneven_spacing="resample", rescale=False).numpy()[0]
    assert raw[1, 1, 3] == pytest.approx((211 + 311) / 2)


def test_non_uniform_spacing_error(tmp_path):
    write_series(tmp_path, positions=[np.array([0.0, 0.0, z]) for z in (0, 2, 4.5, 6, 8)])
    with pytest.raises(DicomSeriesError, match=r"non-uniform slice spacing: steps between 1.5000 mm .* and 2.5000 mm"):
        read_dicom(tmp_path)


def test_duplicate_positions_error(tmp_path):
    uid, _ = write_series(tmp_path / "s", n=3, prefix="a")
    write_series(tmp_path / "s", n=3, prefix="b", uid=uid)
    with pytest.raises(DicomSeriesError, match="duplicate positions: 2 images at each of 3 positions"):
        read_dicom(tmp_path / "s")


def test_multi_volume_channels_and_volumes(tmp_path):
    uid, _ = write_series(tmp_path, n=3, prefix="t1", extra_per_slice=lambda k: {"TemporalPositionIdentifier": 1})
    write_series(tmp_path, n=3, prefix="t2", uid=uid, intercept=0.0,
                 extra_per_slice=lambda k: {"TemporalPositionIdentifier": 2})
    img = read_dicom(tmp_path)
    assert img.shape == (2, 4, 6, 3)
    assert int(img.data[0, 1, 1, 2]) == 211 - 1024 and int(img.data[1, 1, 1, 2]) == 211
    assert img.meta["volume_labels"] == ["temporal_position=1", "temporal_position=2"]
    parts = read_dicom_volumes(tmp_path)
    assert [p.shape for p in parts] == [(1, 4, 6, 3)] * 2
    assert parts[1].meta["volume_index"] == 1
    assert find_series(tmp_path)[0].num_volumes == 2


def test_mixed_orientation_splits_the_uid(tmp_path):
    uid, _ = write_series(tmp_path, n=3, prefix="ax")
    write_series(tmp_path, n=2, prefix="sag", uid=uid, iop=(0, 1, 0, 0, 0, -1))
    scan = find_series(tmp_path)
    assert sorted(s.key for s in scan) == [f"{uid}#1", f"{uid}#2"]
    assert all("orientation" in s.split for s in scan)
    with pytest.raises(DicomSeriesError, match="2 DICOM image series"):
        read_dicom(tmp_path)
    with pytest.raises(DicomSeriesError, match="splits into 2 volume groups"):
        read_dicom(tmp_path, series_uid=uid)
    shapes = sorted(read_dicom(tmp_path, series_uid=s.key).spatial_shape[2] for s in scan)
    assert shapes == [2, 3]


def test_too_few_slices(tmp_path):
    write_series(tmp_path, n=2)
    with pytest.raises(DicomSeriesError, match=r"too few slices: 2 \(at least 3 required\)"):
        read_dicom(tmp_path, min_slices=3)


def test_bad_options_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="gantry_tilt must be"):
        read_dicom(tmp_path, gantry_tilt="stack")
    with pytest.raises(ValueError, match="uneven_spacing must be"):
        read_dicom_volumes(tmp_path, uneven_spacing="stack")


def test_missing_codec_gives_install_line(tmp_path, monkeypatch):
    path = get_testdata("MR_small_jp2klossless.dcm")
    from pydicom.dataset import Dataset as DS

    def broken(self):
        raise RuntimeError("Unable to decode the pixel data as none of the plugins are available: pylibjpeg missing")

    monkeypatch.setattr(DS, "pixel_array", property(broken))
    with pytest.raises(MissingDependencyError) as exc:
        read_dicom(path)
    assert "JPEG 2000" in str(exc.value) and "pip install 'medimg[dicom]'" in str(exc.value)


# ------------------------------------------------------------------------------------------
# real data
# ------------------------------------------------------------------------------------------


def get_testdata(name: str) -> str:
    from pydicom.data import get_testdata_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = get_testdata_file(name)
    if p is None:
        pytest.skip(f"pydicom test file {name} not installed (pip install pydicom-data)")
    return str(p)


def to_ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact permutation/flip of (I, J, K[, V]) data to RAS axes, with the matching affine."""
    perm, flips = orientation_transform(affine, "RAS")
    d = np.transpose(data, tuple(perm) + tuple(range(3, data.ndim)))
    for ax, f in enumerate(flips):
        if f:
            d = np.flip(d, ax)
    return d, reoriented_affine(affine, data.shape[:3], perm, flips)


def assert_same_as_ref(img, ref_path: Path, unscaled: bool = True) -> None:
    nib = pytest.importorskip("nibabel")
    ref = nib.load(str(ref_path))
    ref_data = np.asarray(ref.dataobj.get_unscaled() if unscaled else ref.get_fdata())
    data = np.moveaxis(img.numpy(), 0, -1)
    if data.shape[-1] == 1:
        data = data[..., 0]
    a, aa = to_ras(data, img.affine)
    b, ba = to_ras(ref_data, ref.affine)
    assert a.shape == b.shape
    if unscaled:
        assert np.array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, atol=1e-2)
    np.testing.assert_allclose(aa, ba, atol=1e-3)


@pytest.mark.parametrize("n", range(1, 10))
def test_dcm_qa_ts_every_transfer_syntax_matches_dcm2niix(n):
    src = shared_path("dicom", "dcm_qa_ts", "In", f"{n}.dcm")
    img = read_dicom(src)  # Siemens mosaic: 35 slices of 64x64 in one file
    assert img.spatial_shape == (64, 64, 35)
    assert_same_as_ref(img, shared_path("dicom", "dcm_qa_ts", "Ref", f"{n}.nii"))


def test_dcm_qa_enh_matches_dcm2niix():
    root = shared_path("dicom", "dcm_qa_enh", "In")
    ref = shared_path("dicom", "dcm_qa_enh", "Ref")
    scan = find_series(root)
    by_desc = {}
    for s in scan:
        by_desc.setdefault(s.description, []).append(s)
    (siemens,) = by_desc["REST1 w SMS PF7-8"]
    assert siemens.num_volumes == 4 and siemens.num_files == 4
    img = read_dicom(root, series_uid=siemens.key, rescale=False)
    assert img.shape == (4, 64, 64, 6)
    assert_same_as_ref(img, ref / "Siemens_REST1_w_SMS_PF7-8_6.nii")
    e1, e2 = by_desc["B0 NS"]  # one Philips file: magnitude and field map frames split
    assert_same_as_ref(read_dicom(root, series_uid=e1.key, rescale=False), ref / "Philips_WIP_B0_NS_801_e1.nii")
    assert_same_as_ref(read_dicom(root, series_uid=e2.key, rescale=False), ref / "Philips_WIP_B0_NS_801_e2_fieldmaphz.nii")
    # rescaled field map in Hz equals dcm2niix's scaled values (slope * stored + intercept)
    assert_same_as_ref(read_dicom(root, series_uid=e2.key), ref / "Philips_WIP_B0_NS_801_e2_fieldmaphz.nii", unscaled=False)


def test_totalseg_j2k_matches_its_label_map_grid():
    nib = pytest.importorskip("nibabel")
    img = read_dicom(shared_path("dicom", "totalseg_ct_j2k", "series"))
    seg = nib.load(str(shared_path("dicom", "totalseg_ct_j2k", "example_seg_dicom.nii.gz")))
    assert img.spatial_shape == seg.shape
    a, aa = to_ras(img.numpy()[0], img.affine)
    b, ba = to_ras(np.zeros(seg.shape, np.uint8), seg.affine)
    np.testing.assert_allclose(aa, ba, atol=1e-3)
    assert img.spacing[2] == pytest.approx(2.0)  # 3 mm thick slices, 2 mm apart
    assert img.meta["transfer_syntax"] == ["JPEG 2000 Image Compression (Lossless Only)"]
    assert -1024 <= int(img.data.min()) and int(img.data.max()) < 4000


def test_torchio_ct_flipped_in_plane():
    img = read_dicom(shared_path("dicom", "torchio_ct"))
    assert img.spatial_shape == (88, 128, 17)
    assert img.axcodes == ("R", "A", "S")  # IOP (-1,0,0,0,-1,0): LPS columns flipped -> RAS
    f0 = pydicom.dcmread(img.meta["files"][0])
    np.testing.assert_allclose(img.origin, lps([float(v) for v in f0.ImagePositionPatient]), atol=1e-4)


@pytest.mark.slow
def test_chest_ct_real_series():
    img = read_dicom(shared_path("dicom", "chest_ct", "series"))
    assert img.shape == (1, 512, 512, 139) and str(img.dtype) == "torch.int16"
    np.testing.assert_allclose(img.spacing[2], 2.5, atol=1e-3)
    files = img.meta["files"]
    first, last = pydicom.dcmread(files[0]), pydicom.dcmread(files[-1])
    np.testing.assert_allclose(world_of(img, 0, 0, 138), lps([float(v) for v in last.ImagePositionPatient]), atol=1e-3)
    # HU: the modality LUT applied exactly as pydicom's own
    from pydicom.pixels import apply_modality_lut

    hu = apply_modality_lut(last.pixel_array, last)
    assert np.array_equal(img.numpy()[0, :, :, 138], hu.T.astype(np.int16))
    assert first.ImagePositionPatient[2] < last.ImagePositionPatient[2]


@pytest.mark.parametrize(
    ("name", "reason"),
    [("MR_truncated.dcm", "truncated pixel data"), ("no_meta.dcm", "not a DICOM file"),
     ("emri_small_jpeg_2k_lossless_too_short.dcm", "truncated compressed pixel data"),
     ("rtplan_truncated.dcm", "")],
)
def test_pydicom_broken_files_are_reported(name, reason, tmp_path):
    src = Path(get_testdata(name))
    folder = tmp_path / "mixed"
    write_series(folder, n=3)
    (folder / name).write_bytes(src.read_bytes())
    scan = find_series(folder)
    assert len(scan) == 1 and scan[0].status == "ok"
    if reason:
        assert [(Path(p).name, reason in r) for p, r in scan.unreadable] == [(name, True)]
    else:  # a truncated non-image object: listed as non-image or unreadable, never stacked
        assert len(scan.unreadable) + len(scan.non_image) == 1
    assert read_dicom(folder).spatial_shape == (4, 6, 3)


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"])
def test_pydicom_mr_small_all_syntaxes_identical(name):
    ref = read_dicom(get_testdata("MR_small.dcm"))
    img = read_dicom(get_testdata(name))
    assert np.array_equal(img.numpy(), ref.numpy()) and np.allclose(img.affine, ref.affine)


def test_colour_and_palette_become_channels():
    rgb = read_dicom(get_testdata("SC_rgb.dcm"))
    assert rgb.shape == (3, 100, 100, 1)
    ds = pydicom.dcmread(get_testdata("SC_rgb.dcm"))
    assert np.array_equal(rgb.numpy()[:, :, :, 0], ds.pixel_array.transpose(2, 1, 0))
    pal = read_dicom(get_testdata("OBXXXX1A.dcm"))
    assert pal.num_channels == 3


def test_enhanced_ct_multiframe():
    img = read_dicom(get_testdata("eCT_Supplemental.dcm"))
    assert img.spatial_shape == (512, 512, 2)
    assert len(img.meta["source_frames"]) == 2 and {f for _, f in img.meta["source_frames"]} == {1, 2}


# ------------------------------------------------------------------------------------------
# discovery rules shared with the rest of medimg, and the two header parsers
# ------------------------------------------------------------------------------------------


def test_hidden_files_and_folders_are_not_scanned(tmp_path):
    write_series(tmp_path / "s", n=3)
    one = next((tmp_path / "s").iterdir())
    (tmp_path / "s" / ".hidden").mkdir()
    (tmp_path / "s" / ".hidden" / "copy.dcm").write_bytes(one.read_bytes())  # would be a duplicate
    (tmp_path / "s" / "._IM0001").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 200)  # AppleDouble twin
    scan = find_series(tmp_path / "s")
    assert scan.num_files == 3 and not scan.unreadable and scan[0].num_files == 3


def test_find_series_reports_progress_to_a_hook_and_prints_nothing(tmp_path, capsys):
    write_series(tmp_path, n=4)
    calls = []
    find_series(tmp_path, progress=lambda *a: calls.append(a))
    assert calls == [("scan", n, 4) for n in range(1, 5)]
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("ts", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_hand_written_header_parser_agrees_with_pydicom(tmp_path, monkeypatch, ts):
    import medimg.io.dicom.header as header

    write_series(tmp_path / "s", n=4, ts=ts, extra_per_slice=lambda k: {"StudyDate": "20240102"})
    fast = read_dicom(tmp_path / "s")
    fast_scan = find_series(tmp_path / "s")
    monkeypatch.setattr(header, "_lite_parse", lambda path, size: None)  # pydicom reads every header
    slow = read_dicom(tmp_path / "s")
    slow_scan = find_series(tmp_path / "s")
    assert np.array_equal(fast.numpy(), slow.numpy()) and np.array_equal(fast.affine, slow.affine)
    assert fast.meta == slow.meta
    a, b = fast_scan[0], slow_scan[0]
    assert (a.key, a.files, a.shape, a.spacing, a.study_date) == (b.key, b.files, b.shape, b.spacing, b.study_date)
    assert a.study_date == "20240102"


def test_unreadable_reasons_name_no_python_class(tmp_path, monkeypatch):
    """A corrupt file's reason keeps what pydicom said, not its exception class (issue 6, item 12)."""
    import struct

    from medimg.io.dicom import header

    path = tmp_path / "x.dcm"
    write_slice(path, pattern(0, 4, 4), (0, 0, 0), series_uid=generate_uid())

    def corrupt(*args, **kwargs):
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(header, "_lite_parse", lambda *a: None)
    monkeypatch.setattr(header, "_read_with_pydicom", corrupt)
    assert header._read_header(str(path))[2] == "corrupt or truncated DICOM: unpack requires a buffer of 4 bytes"

    def eof(*args, **kwargs):
        raise EOFError()

    monkeypatch.setattr(header, "_read_with_pydicom", eof)
    assert header._read_header(str(path))[2] == "cannot read the file: the data ends early (truncated)"
