"""Synthetic studies in every input kind ``medimg evaluate`` reads: NIfTI label maps, DICOM
mask series, DICOM SEG files (written by medimg's own writer on a synthetic series) and
manifests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medimg.core.image import Image
from medimg.io import read_image, write_image

CT = "1.2.840.10008.5.1.4.1.1.2"
SHAPE = (12, 10, 6)  # (cols, rows, slices): the grid (I, J, K) read_image gives


def write_series(folder: Path, values: np.ndarray, *, spacing=(0.8, 0.9, 2.0), origin=(0.0, 0.0, 0.0),
                 frame_uid: str = "1.2.3.4.9") -> Path:
    """A single-frame DICOM series of ``values`` ``(I=cols, J=rows, K=slices)`` (uint16)."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid = generate_uid(), generate_uid()
    vol = np.ascontiguousarray(values.transpose(2, 1, 0)).astype(np.uint16)  # (slices, rows, cols)
    for k in range(vol.shape[0]):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CT, generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, k + 1
        ds.PatientID, ds.PatientName, ds.StudyDate, ds.StudyTime = "anon", "Anon^Test", "20240101", "120000"
        ds.ImagePositionPatient = [float(origin[0]), float(origin[1]), float(origin[2] + k * spacing[2])]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns = vol.shape[1], vol.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation = 15, 0
        ds.PixelData = vol[k].tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CT
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"slice_{k:03d}.dcm", enforce_file_format=True)
    return folder


def blob_labels(seed: int, shape=SHAPE, n_classes: int = 2) -> np.ndarray:
    """A label map with a box per class, placed at random."""
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint8)
    for c in range(1, n_classes + 1):
        lo = [int(rng.integers(0, s - 4)) for s in shape[:2]] + [int(rng.integers(0, shape[2] - 2))]
        lab[lo[0]:lo[0] + 4, lo[1]:lo[1] + 3, lo[2]:lo[2] + 2] = c
    return lab


def make_study(root: Path, n: int = 3, seed: int = 0) -> dict[str, Path]:
    """``n`` cases in every kind: ``scans/<cid>/`` (DICOM), ``ref_nii/<cid>.nii.gz``,
    ``pred_nii/<cid>.nii.gz``, ``pred_seg/<cid>.seg.dcm``, ``ref_seg/<cid>.seg.dcm``,
    ``ref_series/<cid>/`` (DICOM mask series) and ``refs.csv`` (manifest of ref_nii)."""
    from medimg.io.dicom_seg import write_dicom_seg

    d = {k: root / k for k in ("scans", "ref_nii", "pred_nii", "pred_seg", "ref_seg", "ref_series")}
    for p in d.values():
        p.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        cid = f"case{i + 1}"
        rng = np.random.default_rng(seed + i)
        scan_dir = write_series(d["scans"] / cid, rng.integers(0, 1000, SHAPE))
        scan = read_image(scan_dir)
        ref = blob_labels(seed + 100 + i)
        pred = ref.copy()
        pred[:, :, : 1 + i % 3] = 0  # a different error in each case
        pred[0:2, 0:2, 0:2] = 1
        for lab, nii, seg in ((ref, "ref_nii", "ref_seg"), (pred, "pred_nii", "pred_seg")):
            img = Image(lab[None], scan.affine, kind="label")
            write_image(img, d[nii] / f"{cid}.nii.gz")
            write_dicom_seg(img, d[seg] / f"{cid}.seg.dcm", source=scan_dir, label_names=["background", "a", "b"])
        write_series(d["ref_series"] / cid, ref)
        rows.append([cid, f"ref_nii/{cid}.nii.gz"])
    d["manifest"] = root / "refs.csv"
    with d["manifest"].open("w", newline="") as f:
        csv.writer(f).writerows([["case_id", "label"], *rows])
    return d
