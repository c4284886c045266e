"""Deep Ensembles: A Loss Landscape Perspective (Fort, Hu, Lakshminarayanan, 2019).

Modules: `datasets` (data by name), `models` (architectures by name), `recipes`
(per-model training defaults), `training` (the training loop), `trajectory` (run
directories and weight vectors), `predictions`, `metrics`, `distribute`.
"""

from uncertainty.errors import UserError

__all__ = ["UserError"]
