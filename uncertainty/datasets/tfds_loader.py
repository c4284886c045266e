"""Loading whole TFDS splits into numpy, with offline options and one-line errors.

Offline, TFDS reads a prepared copy under `data_dir`, or builds one from the official
archive placed in `manual_dir` (e.g. cifar-10-binary.tar.gz, cifar-100-binary.tar.gz,
CIFAR-10-C.tar under the names TFDS expects).
"""

import numpy as np

from uncertainty.errors import UserError


def load(name: str, splits=("train", "test"), data_dir: str | None = None,
         manual_dir: str | None = None, download: bool = True
         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images, labels)} of a supervised TFDS image dataset, fully in memory.

    With `download=False` TFDS only reads what `data_dir` already holds (fails fast).
    """
    import tensorflow_datasets as tfds

    try:
        loaded = tfds.load(
            name, split=list(splits), as_supervised=True, data_dir=data_dir,
            download=download,
            download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                manual_dir=manual_dir)})
    except Exception as e:  # TFDS raises many types; all mean "could not get the data".
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(
            f"TFDS could not load {name!r} ({reason}); with no internet, pass --data_dir "
            f"holding a prepared TFDS copy or --manual_dir holding the official archive"
        ) from None
    return {split: _to_numpy(ds) for split, ds in zip(splits, loaded)}


def _to_numpy(ds) -> tuple[np.ndarray, np.ndarray]:
    # Batched iteration rather than batch_size=-1, which also works on mocked data.
    import tensorflow_datasets as tfds

    chunks = list(tfds.as_numpy(ds.batch(8192)))
    return (np.concatenate([images for images, _ in chunks]),
            np.concatenate([labels for _, labels in chunks]).astype(np.int64))
