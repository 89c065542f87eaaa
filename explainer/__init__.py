"""The explainer process's package: per-reading feature attributions of a model bundle.

Depends on `model` (the feature contract, the bundle) and on shap (the `explain` dependency
group, never a runtime dependency). `service` never imports it; `training` uses only its
library part (`explainer.attributions`) to write the attribution reports.
"""
