"""DICOM SEG in and out: placement checked against highdicom's own volumes, round trips."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from medimg.core.affine import lps_to_ras, reoriented_affine
from medimg.core.errors import DicomError, GeometryError, MissingDependencyError
from medimg.core.image import Image
from medimg.io.dicom_seg import read_dicom_seg, write_dicom_seg
from medimg.io.dicom_seg.source import _load_source_series

from tests.conftest import shared_path

hd = pytest.importorskip("highdicom", reason="highdicom (medimg[dicom-seg]) is needed for these tests")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:highdicom.*")


def _hd_dir() -> Path:
    return shared_path("dicom", "highdicom")


def _compare_with_volume(img: Image, vol_array: np.ndarray, vol_affine_lps: np.ndarray) -> None:
    """Every voxel of a highdicom Volume has the same value at the same world position in img.

    ``vol_array`` is (slices, rows, cols) or (slices, rows, cols, channels); img is
    (C, I, J, K). Positions are matched in RAS mm through both affines.
    """
    arr = vol_array if vol_array.ndim == 4 else vol_array[..., None]
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in arr.shape[:3]], indexing="ij"), -1).reshape(-1, 3)
    world = (lps_to_ras(vol_affine_lps) @ np.c_[idx, np.ones(len(idx))].T)
    mine = np.linalg.inv(img.affine) @ world
    mine_idx = np.round(mine[:3]).astype(int)
    assert np.allclose(mine[:3], mine_idx, atol=1e-3), "grid points do not coincide"
    data = img.numpy()
    for c in range(arr.shape[3]):
        theirs = arr[..., c].reshape(-1)
        inside = np.all((mine_idx >= 0) & (mine_idx < np.array(img.spatial_shape)[:, None]), axis=0)
        # where highdicom has something, it must be inside our grid
        assert not np.any(theirs[~inside]), "highdicom has segment voxels outside our grid"
        ours = data[c][tuple(mine_idx[:, inside])]
        np.testing.assert_allclose(ours, theirs[inside], atol=1e-6)
        # and nothing of ours is outside what highdicom has
        assert np.isclose(data[c].sum(), theirs[inside].sum(), atol=1e-3)


@pytest.mark.parametrize("name", ["seg_image_ct_binary.dcm", "seg_image_ct_binary_fractional.dcm"])
def test_read_binary_matches_highdicom_volume(name: str) -> None:
    path = _hd_dir() / name
    img = read_dicom_seg(path)
    assert img.kind == "label" and img.num_channels == 1 and img.spatial_shape == (16, 16, 3)
    assert img.spacing == pytest.approx((0.488281, 0.488281, 1.25), abs=1e-5)
    seg = hd.seg.segread(path)
    vol = seg.get_volume(combine_segments=True)
    assert vol.array.sum() > 0
    _compare_with_volume(img, vol.array, vol.affine)
    assert img.meta["segments"][1]["label"] == "first segment"
    assert img.meta["label_names"] == ["background", "first segment"]
    assert img.meta["segmentation_type"] in ("BINARY", "FRACTIONAL")


def test_read_fractional_probabilities_and_threshold() -> None:
    path = _hd_dir() / "seg_image_ct_true_fractional.dcm"
    probs = read_dicom_seg(path, threshold=None)
    assert probs.kind == "probabilities" and probs.dtype.is_floating_point
    vol = hd.seg.segread(path).get_volume()  # rescaled to [0, 1]
    _compare_with_volume(probs, vol.array, vol.affine)
    values = np.unique(probs.numpy())
    assert values.min() == 0.0 and 0 < values.max() <= 1.0
    for t in (0.25, 0.5):
        lab = read_dicom_seg(path, threshold=t)
        assert lab.kind == "label"
        np.testing.assert_array_equal(lab.numpy()[0] > 0, probs.numpy()[0] >= t)


def test_overlapping_segments_error_and_channels() -> None:
    path = _hd_dir() / "seg_image_ct_binary_overlap.dcm"
    with pytest.raises(DicomError, match=r"segments 1 and 2 overlap.*\n.*combine='channels'"):
        read_dicom_seg(path)
    img = read_dicom_seg(path, combine="channels")
    assert img.num_channels == 2 and img.meta["segment_numbers"] == [1, 2]
    # frames at z=-99.48 and 103.02..105.52 in 1.25 mm steps: 165 slices, gaps are empty
    assert img.spatial_shape == (16, 16, 165)
    vol = hd.seg.segread(path).get_volume(combine_segments=False)
    _compare_with_volume(img, vol.array, vol.affine)


def test_single_frame_on_source_image_grid() -> None:
    path = _hd_dir() / "seg_image_ct_binary_single_frame.dcm"
    ct = _hd_dir() / "ct_image.dcm"
    src = _load_source_series([__import__("pydicom").dcmread(ct)])
    img = read_dicom_seg(path, [__import__("pydicom").dcmread(ct)])
    assert img.spatial_shape == src.shape == (128, 128, 1)
    np.testing.assert_allclose(img.affine, src.affine)
    seg = hd.seg.segread(path)
    uid = str(__import__("pydicom").dcmread(ct).SOPInstanceUID)
    theirs = seg.get_pixels_by_source_instance([uid], combine_segments=True)[0]  # (rows, cols)
    # native grid: i = column, j = row
    np.testing.assert_array_equal(img.numpy()[0, :, :, 0], theirs.T)
    assert theirs.sum() > 0
    # same result with the source given as an Image on a reoriented grid
    other = Image(np.zeros((1, 128, 128, 1)), reoriented_affine(src.affine, (128, 128, 1), (1, 0, 2), (True, False, False)))
    img2 = read_dicom_seg(path, other)
    np.testing.assert_array_equal(img2.numpy()[0, :, :, 0], theirs[::-1, :])


def test_slide_labelmap_equals_binary_and_highdicom() -> None:
    lm = read_dicom_seg(_hd_dir() / "seg_image_sm_control_labelmap.dcm")
    binary = read_dicom_seg(_hd_dir() / "seg_image_sm_control.dcm")
    assert lm.meta["segmentation_type"] == "LABELMAP" and lm.meta["coordinate_system"] == "SLIDE"
    assert lm.shape == binary.shape == (1, 50, 50)
    np.testing.assert_array_equal(lm.numpy(), binary.numpy())
    theirs = hd.seg.segread(_hd_dir() / "seg_image_sm_control_labelmap.dcm").get_total_pixel_matrix(
        combine_segments=True
    )
    np.testing.assert_array_equal(lm.numpy()[0], theirs)
    assert 0 not in lm.meta["segment_numbers"]  # LABELMAP's background segment 0 is not a channel
    channels = read_dicom_seg(_hd_dir() / "seg_image_sm_control_labelmap.dcm", combine="channels")
    assert channels.num_channels == len(lm.meta["segment_numbers"])
    np.testing.assert_array_equal(
        (channels.numpy() * np.asarray(lm.meta["segment_numbers"])[:, None, None]).max(0), lm.numpy()[0]
    )


def test_not_a_seg_and_missing_file() -> None:
    with pytest.raises(DicomError, match="not a DICOM SEG.*SOPClassUID 1.2.840.10008.5.1.4.1.1.2"):
        read_dicom_seg(_hd_dir() / "ct_image.dcm")
    with pytest.raises(DicomError, match="SEG file not found"):
        read_dicom_seg(_hd_dir() / "nope.dcm")
    with pytest.raises(ValueError, match="combine must be"):
        read_dicom_seg(_hd_dir() / "seg_image_ct_binary.dcm", combine="max")


# ---------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------
def _blob_labels(shape: tuple[int, int, int], n_classes: int, seed: int = 0) -> np.ndarray:
    """Asymmetric blobs, so any flip or transpose would show."""
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint8)
    grid = np.indices(shape)
    for c in range(1, n_classes):
        centre = rng.uniform(0.2, 0.8, 3) * np.array(shape)
        radius = rng.uniform(0.1, 0.25, 3) * np.array(shape)
        inside = (((grid - centre[:, None, None, None]) / radius[:, None, None, None]) ** 2).sum(0) <= 1
        lab[inside] = c
    lab[0, 0, 0] = 1  # corner voxels: orientation is pinned, and the first and last
    lab[-1, -2, -1] = 2  # slices are not empty (a SEG read without source spans its frames)
    return lab


@pytest.mark.parametrize("seg_type", ["BINARY", "LABELMAP"])
def test_round_trip_flipped_inplane_series(tmp_path: Path, seg_type: str) -> None:
    series = shared_path("dicom", "torchio_ct")
    src = _load_source_series(series)
    # IOP (-1,0,0,0,-1,0): LPS -x/-y rows and columns, i.e. +R/+A in RAS
    assert np.allclose(np.diag(src.affine)[:3], [2, 2, 2])
    lab = _blob_labels(src.shape, 4)
    names = ["background", "liver", "spleen", "kidney"]
    label = Image(lab[None], src.affine, kind="label")
    out = write_dicom_seg(label, tmp_path / "pred.dcm", source=series, label_names=names, segmentation_type=seg_type)
    ds = __import__("pydicom").dcmread(out)
    assert ds.Modality == "SEG" and ds.Manufacturer == "medimg"
    assert [s.SegmentLabel for s in ds.SegmentSequence if s.SegmentNumber > 0] == names[1:]
    assert ds.FrameOfReferenceUID == src.datasets[0].FrameOfReferenceUID
    assert ds.StudyInstanceUID == src.datasets[0].StudyInstanceUID
    refs = {str(i.ReferencedSOPInstanceUID) for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert refs <= {str(d.SOPInstanceUID) for d in src.datasets}
    for source in (series, None):
        back = read_dicom_seg(out, source)
        assert back.kind == "label" and back.spatial_shape == src.shape
        np.testing.assert_allclose(back.affine, src.affine, atol=1e-6)
        np.testing.assert_array_equal(back.numpy()[0], lab)
    assert back.meta["label_names"] == names
    # highdicom agrees on where each frame is: source instance k is slice k of the grid
    seg = hd.seg.segread(out)
    uids = [str(d.SOPInstanceUID) for d in src.datasets]
    theirs = seg.get_pixels_by_source_instance(uids, combine_segments=True)  # (slices, rows, cols)
    np.testing.assert_array_equal(theirs.transpose(2, 1, 0), lab)


def test_round_trip_on_reoriented_grid(tmp_path: Path) -> None:
    """A label on a permuted/flipped version of the source grid is written and read back in place."""
    series = shared_path("dicom", "torchio_ct")
    src = _load_source_series(series)
    lab = _blob_labels(src.shape, 3, seed=1)
    perm, flips = (2, 0, 1), (True, False, True)
    data = np.transpose(lab, perm)
    for ax, f in enumerate(flips):
        if f:
            data = np.flip(data, ax)
    affine = reoriented_affine(src.affine, src.shape, perm, flips)
    label = Image(np.ascontiguousarray(data)[None], affine, kind="label")
    out = write_dicom_seg(label, tmp_path / "p.dcm", source=series, label_names=["bg", "a", "b"])
    back = read_dicom_seg(out, label)  # source = an Image: exactly its grid
    assert back.spatial_shape == label.spatial_shape
    np.testing.assert_allclose(back.affine, label.affine)
    np.testing.assert_array_equal(back.numpy(), label.numpy())
    native = read_dicom_seg(out)
    np.testing.assert_array_equal(native.numpy()[0], lab)


def test_write_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    series = shared_path("dicom", "torchio_ct")
    src = _load_source_series(series)
    lab = _blob_labels(src.shape, 3)
    shifted = src.affine.copy()
    shifted[:3, 3] += 1.0  # half a voxel off
    with pytest.raises(GeometryError, match="not on the source series' grid"):
        write_dicom_seg(Image(lab[None], shifted, kind="label"), tmp_path / "x.dcm", source=series, label_names=["bg", "a", "b"])
    with pytest.raises(GeometryError, match="not on the source series' grid"):
        write_dicom_seg(Image(lab[None, :-1], src.affine, kind="label"), tmp_path / "x.dcm", source=series,
                        label_names=["bg", "a", "b"])
    with pytest.raises(ValueError, match=r"label values must lie in 0..1 .*found 0..2"):
        write_dicom_seg(Image(lab[None], src.affine, kind="label"), tmp_path / "x.dcm", source=series, label_names=["bg", "a"])
    with pytest.raises(GeometryError, match=r"expected a label image \(1, I, J, K\)"):
        write_dicom_seg(Image(np.stack([lab, lab]), src.affine, kind="label"), tmp_path / "x.dcm", source=series,
                        label_names=["bg", "a", "b"])
    monkeypatch.setitem(sys.modules, "highdicom", None)
    with pytest.raises(MissingDependencyError, match=r"writing DICOM SEG[\s\S]*pip install 'medimg\[dicom-seg\]'"):
        write_dicom_seg(Image(lab[None], src.affine, kind="label"), tmp_path / "x.dcm", source=series, label_names=["bg", "a", "b"])
    assert not (tmp_path / "x.dcm").exists()


def test_read_onto_wrong_grid_is_a_geometry_error() -> None:
    path = _hd_dir() / "seg_image_ct_binary.dcm"
    native = read_dicom_seg(path)
    coarse = Image(np.zeros((1, 8, 8, 3)), native.affine @ np.diag([2.0, 2.0, 1.0, 1.0]))
    with pytest.raises(GeometryError, match="column axis does not follow one axis"):
        read_dicom_seg(path, coarse)
    small = Image(np.zeros((1, 16, 16, 2)), native.affine)
    with pytest.raises(GeometryError, match="outside the target grid's slices"):
        read_dicom_seg(path, small)


@pytest.mark.slow
def test_round_trip_totalsegmentator_label(tmp_path: Path) -> None:
    """The real TotalSegmentator label map (31 classes, j axis flipped vs DICOM) survives SEG."""
    nib = pytest.importorskip("nibabel")
    series = shared_path("dicom", "totalseg_ct_j2k", "series")
    nii = nib.load(shared_path("dicom", "totalseg_ct_j2k", "example_seg_dicom.nii.gz"))
    data = np.asarray(nii.dataobj).astype(np.uint8)
    label = Image(data[None], nii.affine, kind="label")
    names = ["background"] + [f"class_{i}" for i in range(1, int(data.max()) + 1)]
    for seg_type in ("BINARY", "LABELMAP"):
        out = write_dicom_seg(label, tmp_path / f"{seg_type}.dcm", source=series, label_names=names, segmentation_type=seg_type)
        back = read_dicom_seg(out, label)
        assert back.spatial_shape == label.spatial_shape
        np.testing.assert_allclose(back.affine, nii.affine, atol=1e-6)
        np.testing.assert_array_equal(back.numpy()[0], data)
        assert set(np.unique(back.numpy())) == set(np.unique(data))


def test_source_without_patient_and_study_attributes(tmp_path: Path) -> None:
    """A hand-made or anonymised source lacking PatientName, StudyDate... still gets a SEG
    (the type 2 attributes are written empty), read back voxel for voxel."""
    from medimg.io import read_image

    from tests.io.dicom_study import write_dicom_series

    write_dicom_series(tmp_path / "s", "MR", study_uid="1.2.826.9.1", number=1, shape=(6, 5, 4))
    img = read_image(tmp_path / "s")
    lab = (img.numpy() > 500).astype(np.uint8)
    assert 0 < lab.sum() < lab.size
    out = write_dicom_seg(Image(lab, img.affine, kind="label"), tmp_path / "p.dcm", source=tmp_path / "s",
                          label_names=["bg", "bright"])
    assert __import__("pydicom").dcmread(out).PatientName == ""
    np.testing.assert_array_equal(read_dicom_seg(out, tmp_path / "s").numpy(), lab)
