"""Reading images (DICOM, NIfTI, PNG/JPEG/TIFF/BMP, NumPy) and tables (CSV, Parquet).

Every reader raises :class:`~claimladder.ImageReadError` or
:class:`~claimladder.TableReadError` whose message names the file, what is
wrong with it and how to fix it.
"""

from ._dicom import JPEG_EXTRA_FIX, read_dicom_header
from ._dicom_write import write_dicom
from ._header_index import DEFAULT_ATTRIBUTES, dicom_header_index
from ._images import IMAGE_EXTENSIONS, Volume, read_image, read_volume
from ._tables import TABLE_EXTENSIONS, read_table

__all__ = [
    "DEFAULT_ATTRIBUTES",
    "IMAGE_EXTENSIONS",
    "JPEG_EXTRA_FIX",
    "TABLE_EXTENSIONS",
    "Volume",
    "dicom_header_index",
    "read_dicom_header",
    "read_image",
    "read_table",
    "read_volume",
    "write_dicom",
]
