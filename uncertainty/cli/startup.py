"""What a command line does first, before TensorFlow is imported."""

import os

from uncertainty.cli import notices
from uncertainty.infra import interrupts

# TensorFlow imports Keras 3 at start-up unless this is set, ~2.4 s of a binary's ~8 s
# start on a 2-core CPU; the library builds every model with tf_keras, which TensorFlow
# then imports as tf.keras instead.
LEGACY_KERAS = "TF_USE_LEGACY_KERAS"


def before_tensorflow() -> None:
    """Holds stop requests until the binary runs (a request during the imports is a
    clean stop), skips Keras 3 (`LEGACY_KERAS`, unless set otherwise) and routes
    TensorFlow's start-up notices through the filter (`notices`)."""
    interrupts.install(hold=True)
    os.environ.setdefault(LEGACY_KERAS, "1")
    notices.hide_tensorflow_notices()
