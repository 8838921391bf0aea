"""Small synthetic DICOM studies for tests: several series of one study, written with pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MR = "1.2.840.10008.5.1.4.1.1.4"
CT = "1.2.840.10008.5.1.4.1.1.2"


def write_dicom_series(
    folder: Path,
    description: str,
    *,
    study_uid: str,
    number: int,
    shape: tuple[int, int, int] = (10, 12, 6),
    seed: int = 0,
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0),
    prefix: str | None = None,
    modality: str = "MR",
    values: np.ndarray | None = None,
    intercept: float = 0.0,
) -> np.ndarray:
    """Write one MR (or ``modality="CT"``) series ``(cols, rows, slices)`` = ``shape`` of
    random values (or ``values``, ``(slices, rows, cols)``, stored with RescaleIntercept
    ``intercept``) into ``folder`` (files ``<prefix>_<k>.dcm``); returns the stored values
    ``(slices, rows, cols)``."""
    folder.mkdir(parents=True, exist_ok=True)
    cols, rows, n = shape
    if values is None:
        values = np.random.default_rng(seed).integers(0, 1000, size=(n, rows, cols))
    values = np.asarray(values).astype(np.int16)
    sop_class = CT if modality == "CT" else MR
    series_uid = generate_uid()
    for k in range(n):
        ds = Dataset()
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = study_uid + ".9"
        ds.Modality = modality
        if intercept:
            ds.RescaleIntercept, ds.RescaleSlope = float(intercept), 1.0
        ds.SeriesDescription = description
        ds.SeriesNumber = number
        ds.InstanceNumber = k + 1
        ds.PatientID = "anon"
        ds.ImagePositionPatient = [0.0, 0.0, float(k * spacing[2])]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.PixelData = values[k].tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"{prefix or description.replace(' ', '_')}_{k:03d}.dcm", enforce_file_format=True)
    return values


def copy_series_into_study(src: Path, dst: Path, *, study_uid: str, description: str, number: int) -> None:
    """Copy a real series into ``dst`` as a new series (new UIDs) of study ``study_uid``."""
    dst.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    for f in sorted(src.iterdir()):
        if not f.is_file():
            continue
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesDescription = description
        ds.SeriesNumber = number
        ds.save_as(dst / f.name)


__all__ = ["copy_series_into_study", "write_dicom_series"]
