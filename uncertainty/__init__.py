"""Deep Ensembles: A Loss Landscape Perspective (Fort, Hu, Lakshminarayanan, 2019).

Subpackages, each importing only those below it (`.importlinter` keeps it so):

  cli        the binaries' shared flags and start-up (imported only by baselines/)
  study      named scales of the whole study, the paper's claims, report, figures
  analyses   similarity, the diversity-accuracy plane, shift and OOD, cross-sections,
             connectors, checkpoint evaluation
  train      recipes, TrainConfig, the one training loop, a run's life, VI posteriors
  samplers   functions around a run: random, dropout, Gaussians, SWA, model methods
  runs       run directories, checkpoints, discovery, predictions (weights -> logits)
  models     architectures by name; datasets: data by name (independent of each other)
  core       numpy only: metrics, ensembles, OOD scores, diversity limits, seeding,
             metric names, published numbers
  infra      files (gfile, atomic, verified), locks, progress, errors, tf.distribute

Docs: docs/architecture.md; the Python API: docs/api.md.
"""

from uncertainty.infra.errors import UserError

__all__ = ["UserError"]
