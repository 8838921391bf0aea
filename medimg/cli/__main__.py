"""``python -m medimg.cli`` (and ``torchrun ... -m medimg.cli train CONFIG``)."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
