"""Release job defaults (``python -m launch.release``): nothing declared, so every item a
person must state (licence, contact, uses, data source licences and consent, process items)
shows up as a warning in the card and datasheet.

The sections, fields and checks are defined once in ``eurollm_jax/release/config.py``
(``ReleaseConfig``); this file turns the defaults into a ConfigDict. Override anything, e.g.
``--config.registry=evals/registry --config.energy.region=FR --config.model.license=apache-2.0``.
Copy ``configs/release_demo.py`` for a filled-in example.
"""

from configs.filter_default import section_config
from eurollm_jax.release.config import ReleaseConfig


def get_config():
    return section_config(ReleaseConfig())
