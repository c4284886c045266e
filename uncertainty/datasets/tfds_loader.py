"""Preparing TFDS datasets as ArrayRecord files, with offline options and one-line errors.

Every dataset is read through a TFDS random-access data source (`Dataset`), which needs
the ArrayRecord file format. Offline, TFDS reads a prepared copy under `data_dir`, or
builds one from the official archive placed in `manual_dir` (e.g.
cifar-10-binary.tar.gz, cifar-100-binary.tar.gz, CIFAR-10-C.tar under the names TFDS
expects). ImageNet can only be built from its archives (`MANUAL_FILES`, from
image-net.org), so their absence is reported at once; so is a download that cannot
happen (the server is unreachable: `PROBE_SECONDS` to find out), rather than after
minutes of TFDS's retries.
"""

import contextlib
import functools
import logging as std_logging
import os
import socket
import sys
import urllib.parse
import urllib.request

import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from uncertainty.infra.errors import UserError, reason

FILE_FORMAT = "array_record"
PROBE_SECONDS = 3.0  # to decide that a download server cannot be reached
# Datasets TFDS builds only from files the user downloads: the files each needs.
# (imagenet2012_corrupted also downloads TFDS's frost images once, so it is prepared
# on a machine with internet, or copied prepared under --data_dir.)
MANUAL_FILES = {"imagenet2012": ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
                "imagenet2012_corrupted": ("ILSVRC2012_img_val.tar",)}


def prepare(builder_or_name, data_dir: str | None = None, manual_dir: str | None = None,
            download: bool = True, **builder_kwargs) -> tfds.core.DatasetBuilder:
    """A prepared TFDS builder (a catalog name, or a builder class of ours), built as
    ArrayRecord files under `data_dir` unless it already is. With `download=False`
    only a prepared copy (or, for builders that read local files, `manual_dir`) is
    used: no network access."""
    name = builder_or_name if isinstance(builder_or_name, str) else builder_or_name.name
    try:
        with _quiet():  # TFDS warns that an unprepared folder has no dataset_info.json
            if isinstance(builder_or_name, str):
                builder = tfds.builder(name, data_dir=data_dir, file_format=FILE_FORMAT,
                                       **builder_kwargs)
            else:
                builder = builder_or_name(data_dir=data_dir, file_format=FILE_FORMAT,
                                          **builder_kwargs)
            prepared = builder.is_prepared()
        if not prepared:
            if not download and isinstance(builder_or_name, str):
                raise RuntimeError(f"not prepared under {builder.data_dir} and "
                                   f"downloading is off")
            _check_manual_files(name, builder, data_dir, manual_dir)
            if isinstance(builder_or_name, str):
                _check_reachable(name, builder, manual_dir)
            logging.info("preparing %s under %s", name, builder.data_dir)
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for results
                builder.download_and_prepare(
                    file_format=FILE_FORMAT,
                    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except UserError:
        raise
    except Exception as e:  # TFDS raises many types; all mean "could not get the data".
        raise UserError(
            f"TFDS could not load {name!r} ({reason(e)}); with no internet, pass --data_dir "
            f"holding a prepared TFDS copy or --manual_dir holding the official archive"
        ) from None
    stored = builder.info.file_format
    if stored is not None and getattr(stored, "value", stored) != FILE_FORMAT:
        raise UserError(
            f"{name} under {builder.data_dir} is prepared as {getattr(stored, 'value', stored)}"
            f" files, but reading examples by index needs ArrayRecord; rebuild it with "
            f"'tfds build {name} --file_format=array_record' (offline: add "
            f"--manual_dir=<the folder holding the official archive>) or pass another "
            f"--data_dir")
    return builder


def _check_manual_files(name: str, builder, data_dir: str | None,
                        manual_dir: str | None) -> None:
    """Raises a UserError naming the folder to fill if `name` needs manually downloaded
    files (`MANUAL_FILES`) that are not there (TFDS's default folder for them:
    <data_dir>/downloads/manual)."""
    family = name.partition("/")[0]
    if family not in MANUAL_FILES:
        return
    folder = manual_dir or os.path.join(data_dir or tfds.core.constants.DATA_DIR,
                                        "downloads", "manual")
    missing = [f for f in MANUAL_FILES[family] if not tf.io.gfile.exists(
        os.path.join(folder, f))]
    if missing:
        raise UserError(
            f"{name} is not prepared under {builder.data_dir} and TFDS builds it only "
            f"from image-net.org's {', '.join(MANUAL_FILES[family])}: put "
            f"{', '.join(missing)} in {folder} (or pass --manual_dir=<the folder holding "
            f"them>), or pass --data_dir holding a prepared ArrayRecord copy")


def _check_reachable(name: str, builder, manual_dir: str | None) -> None:
    """Raises a UserError at once if TFDS would download files (those of its
    registered URLs not in `manual_dir`) from a server this machine cannot reach.
    (Not when something replaced TFDS's download_and_prepare, as
    `tfds.testing.mock_data` does with a no-op: then nothing is downloaded.)"""
    if getattr(builder.download_and_prepare, "__name__", None) != "download_and_prepare":
        return
    missing = {url: info.filename or os.path.basename(urllib.parse.urlparse(url).path)
               for url, info in (builder.url_infos or {}).items()}
    missing = {url: f for url, f in missing.items()
               if not (manual_dir and tf.io.gfile.exists(os.path.join(manual_dir, f)))}
    servers = sorted({(u.scheme, u.hostname, u.port or (80 if u.scheme == "http" else 443))
                      for u in map(urllib.parse.urlparse, missing)})
    down = [host for scheme, host, port in servers if not _reachable(scheme, host, port)]
    if down:
        folder = manual_dir or "<folder>"
        raise UserError(
            f"{name} is not prepared under {builder.data_dir} and {down[0]}, where TFDS "
            f"downloads it from, cannot be reached (offline?): put "
            f"{', '.join(sorted(set(missing.values())))} in {folder} and pass "
            f"--manual_dir={folder}, or pass --data_dir holding a copy prepared with "
            f"'tfds build {name} --file_format=array_record' on a machine with internet")


@functools.lru_cache(maxsize=None)
def _reachable(scheme: str, host: str, port: int) -> bool:
    """Whether a TCP connection to `host`:`port`, or to the proxy the environment
    sets for `scheme` (unless no_proxy exempts `host`), opens within PROBE_SECONDS."""
    proxy = urllib.request.getproxies().get(scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        parsed = urllib.parse.urlparse(proxy if "://" in proxy else f"//{proxy}")
        host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https"
                                                      else 80)
    try:
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _quiet():
    """absl logging at ERROR and above only, for the duration (the logger's own level
    is restored as it was, unset included)."""
    logger = logging.get_absl_logger()
    level = logger.level
    logger.setLevel(std_logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
