"""Preparing TFDS datasets as ArrayRecord files, with offline options and one-line errors.

Every dataset is read through a TFDS random-access data source (`Dataset`), which needs
the ArrayRecord file format. Offline, TFDS reads a prepared copy under `data_dir`, or
builds one from the official archive placed in `manual_dir` (e.g.
cifar-10-binary.tar.gz, cifar-100-binary.tar.gz, CIFAR-10-C.tar under the names TFDS
expects).
"""

import contextlib
import sys

import tensorflow_datasets as tfds
from absl import logging

from uncertainty.errors import UserError

FILE_FORMAT = "array_record"


def prepare(builder_or_name, data_dir: str | None = None, manual_dir: str | None = None,
            download: bool = True, **builder_kwargs) -> tfds.core.DatasetBuilder:
    """A prepared TFDS builder (a catalog name, or a builder class of ours), built as
    ArrayRecord files under `data_dir` unless it already is. With `download=False`
    only a prepared copy (or, for builders that read local files, `manual_dir`) is
    used: no network access."""
    name = builder_or_name if isinstance(builder_or_name, str) else builder_or_name.name
    try:
        if isinstance(builder_or_name, str):
            builder = tfds.builder(name, data_dir=data_dir, file_format=FILE_FORMAT,
                                   **builder_kwargs)
        else:
            builder = builder_or_name(data_dir=data_dir, file_format=FILE_FORMAT,
                                      **builder_kwargs)
        if not builder.is_prepared():
            if not download and isinstance(builder_or_name, str):
                raise RuntimeError(f"not prepared under {builder.data_dir} and "
                                   f"downloading is off")
            logging.info("preparing %s under %s", name, builder.data_dir)
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for results
                builder.download_and_prepare(
                    file_format=FILE_FORMAT,
                    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except UserError:
        raise
    except Exception as e:  # TFDS raises many types; all mean "could not get the data".
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(
            f"TFDS could not load {name!r} ({reason}); with no internet, pass --data_dir "
            f"holding a prepared TFDS copy or --manual_dir holding the official archive"
        ) from None
    stored = builder.info.file_format
    if stored is not None and getattr(stored, "value", stored) != FILE_FORMAT:
        raise UserError(
            f"{name} under {builder.data_dir} is prepared as {getattr(stored, 'value', stored)}"
            f" files, but reading examples by index needs ArrayRecord; rebuild it with "
            f"'tfds build {name} --file_format=array_record' or pass another --data_dir")
    return builder
