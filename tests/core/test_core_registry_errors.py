"""medimg.core.Registry did-you-mean lookups and the error hierarchy."""

from __future__ import annotations

import pytest

from medimg.core import (
    CheckpointError,
    ConfigError,
    DataError,
    DicomError,
    DicomSeriesError,
    GeometryError,
    ImageReadError,
    ImageWriteError,
    MedimgError,
    MissingDependencyError,
    Registry,
    TransformError,
    UnknownComponentError,
)
from medimg.core.errors import require


def test_registry_register_get_list():
    reg: Registry = Registry("models")

    @reg.register("UNet")
    class UNet:
        pass

    reg.register("segresnet", object)
    assert reg.get("unet") is UNet and reg.get("UNET") is UNet
    assert "unet" in reg and "nope" not in reg and 3 not in reg
    assert reg.list() == ["segresnet", "unet"] and len(reg) == 2
    with pytest.raises(ValueError, match="already has a component named 'unet'"):
        reg.register("unet", int)
    reg.register("unet", UNet)  # the same object again is fine


def test_registry_did_you_mean():
    reg: Registry = Registry("models")
    reg.register("unet", object)
    reg.register("segresnet", object)
    with pytest.raises(UnknownComponentError) as ei:
        reg.get("unte")
    msg = str(ei.value)
    assert "unknown model 'unte'" in msg and "did you mean 'unet'" in msg
    assert "known: segresnet, unet" in msg
    assert isinstance(ei.value, LookupError)
    assert reg.suggest("segresnt") == ["segresnet"]
    with pytest.raises(UnknownComponentError) as ei:
        reg.get("zzzzzz")
    assert "did you mean" not in str(ei.value)


@pytest.mark.parametrize(
    "cls,builtin",
    [
        (ConfigError, ValueError),
        (UnknownComponentError, LookupError),
        (ImageReadError, OSError),
        (DicomError, ImageReadError),
        (DicomSeriesError, DicomError),
        (ImageWriteError, OSError),
        (GeometryError, ValueError),
        (DataError, ValueError),
        (TransformError, ValueError),
        (CheckpointError, ValueError),
        (MissingDependencyError, ImportError),
    ],
)
def test_error_classes_subclass_builtins(cls, builtin):
    assert issubclass(cls, MedimgError) and issubclass(cls, builtin)


def test_error_hint_and_fields():
    e = ImageReadError("cannot read 'x.nii': file not found", hint="check the path")
    assert str(e) == "cannot read 'x.nii': file not found\n  hint: check the path"
    assert e.message.startswith("cannot read") and e.hint == "check the path"
    s = DicomSeriesError("gap", series_uid="1.2.3", files=["a.dcm"])
    assert s.series_uid == "1.2.3" and s.files == ["a.dcm"]
    c = ConfigError("bad", problems=[("f.yaml:1:1", "model", "unknown")])
    assert c.problems == [("f.yaml:1:1", "model", "unknown")]


def test_require_missing_dependency():
    assert require("json", "dev", "testing").dumps([]) == "[]"
    with pytest.raises(MissingDependencyError) as ei:
        require("medimg_no_such_module", "dicom-seg", "writing DICOM SEG")
    assert "writing DICOM SEG needs the optional package 'medimg_no_such_module'" in str(ei.value)
    assert "pip install 'medimg[dicom-seg]'" in str(ei.value)


def test_exception_reason_says_why_without_the_class_name():
    import struct

    from medimg.core.errors import DicomError, exception_reason

    try:
        struct.unpack("<I", b"")
    except struct.error as exc:
        assert exception_reason(exc) == "unpack requires a buffer of 4 bytes"
    assert exception_reason(ValueError("bad\n  value")) == "bad value"  # one line
    # where the class carries the meaning, it is said in words
    assert exception_reason(KeyError("PixelData")) == "missing entry 'PixelData'"
    assert exception_reason(EOFError()) == "the data ends early (truncated)"
    assert exception_reason(EOFError("read 0 bytes")) == "the data ends early (truncated): read 0 bytes"
    assert exception_reason(MemoryError()) == "out of memory"
    assert exception_reason(RuntimeError()) == "failed without saying why"
    # a medimg error: its message, not its hint
    assert exception_reason(DicomError("cannot read 'x'", hint="check it")) == "cannot read 'x'"
    for exc in (ValueError("v"), KeyError("k"), EOFError(), TypeError("t")):
        assert type(exc).__name__ not in exception_reason(exc)
