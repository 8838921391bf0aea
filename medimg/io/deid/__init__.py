"""De-identification of DICOM files: PS3.15 Annex E Basic Application Level Confidentiality Profile.

:func:`deidentify` reads every file under an input folder (or one file), applies the Basic
Profile (Table E.1-1, loaded by :mod:`~medimg.io.deid.profile` from the maintained
``dicom-anonymizer`` package's newest edition) at every nesting level of sequences
(E.1.1), and writes the results under an output folder. Pixel data, transfer syntax and
geometry (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness...)
are not in the table and are written back byte for byte.

The modules, by verb:

* :mod:`~medimg.io.deid.profile` - load the table (and the retain options' attributes);
* :mod:`~medimg.io.deid.transform` - clean one data set (:class:`Deidentifier`: how each
  action code and option is carried out);
* :mod:`~medimg.io.deid.values` - dummy, empty and date-shifted values;
* :mod:`~medimg.io.deid.files` - read, check and write one file; the output folder's rule;
  the mapping CSV;
* :mod:`~medimg.io.deid.run` - a whole folder (:func:`deidentify`);
* :mod:`~medimg.io.deid.report` - what happened to each file.

Output: ``OUTPUT_DIR/<new StudyInstanceUID>/<new SeriesInstanceUID>/<new SOPInstanceUID>.dcm``
(``naming="uid"``, the default: no name or path component carries an identifier) or the
input's relative paths (``naming="keep"``, for trees whose names are known to be safe).
The output folder must be empty: a second run into it is refused unless ``overwrite``,
which first deletes the files medimg de-identified there. A mapping CSV (original -> new
PatientID with each patient's date offset, and UIDs) is written only where
``mapping_path`` is given. Log messages carry counts and new UIDs only, never an
original value or input path; failures are reported per file in the returned
:class:`DeidReport` with reasons that name tags, never values. Files whose
BurnedInAnnotation is YES are written but flagged in the report (pixel data is not
cleaned).
"""

from __future__ import annotations

from .profile import load_profile
from .report import DeidFileResult, DeidReport
from .run import OutputNotEmptyError, deidentify
from .transform import METHOD_CODES, Deidentifier, deidentify_dataset

__all__ = [
    "METHOD_CODES",
    "DeidFileResult",
    "DeidReport",
    "Deidentifier",
    "OutputNotEmptyError",
    "deidentify",
    "deidentify_dataset",
    "load_profile",
]
