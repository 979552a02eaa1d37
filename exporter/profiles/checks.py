"""A profile against the config model it is the reference of: same model, same features, same types.

:class:`~exporter.profiles.profile.Profile` checks that a file is a well-formed profile (finite,
increasing edges; non-negative counts); this module checks that it is *this model's* profile, so
that a reference built for another model, or before a feature changed type, is refused at startup
instead of being served as garbage.
"""

from __future__ import annotations

from exporter.config.model import ModelConfig
from exporter.profiles.pca import basis_of
from exporter.profiles.class_scores import EXTRAS_KEY as CLASS_SCORES_KEY
from exporter.profiles.profile import Binning, Profile, ProfileError
from exporter.stats.error_model import EXTRAS_KEY as ERROR_MODEL_KEY
from exporter.stats.calibration import CLASS_EXTRAS_KEY, EXTRAS_KEY as CALIBRATION_KEY, Calibration, calibration_from_extras


def check_profile(profile: Profile, model: ModelConfig) -> None:
    """Raise ProfileError when the profile cannot be the reference of `model` as configured.

    Extra features in the profile are allowed (a feature dropped from the config is simply not
    watched); every configured feature must be there with the configured type.
    """
    if profile.model != model.name:
        raise ProfileError(f"is the profile of model {profile.model[:64]!r}, not of {model.name!r}")
    for feature in model.features:
        binning = profile.features.get(feature.name)
        if binning is None:
            raise ProfileError(f"profile of {profile.model!r} has no feature {feature.name!r}; rebuild it")
        if binning.kind != feature.type:
            raise ProfileError(f"feature {feature.name!r} is {feature.type} in the config, {binning.kind} in the profile")
    expected = "numeric" if model.prediction.type == "numeric" else "categorical"
    if profile.prediction.kind != expected:
        raise ProfileError(f"prediction is {expected} in the config, {profile.prediction.kind} in the profile")
    check_pca(profile, model)
    check_calibration(profile)


def check_pca(profile: Profile, model: ModelConfig) -> None:
    """The PCA basis encodes raw columns of configured features on every ingest: check them now.

    Each encoded feature must be a configured feature of the same kind, and a categorical one's
    indicator categories must be categories of its profiled binning (the top K).
    """
    basis = basis_of(profile)  # raises ProfileError on a malformed block
    if basis is None:
        return
    kinds = {f.name: f.type for f in model.features}
    unknown = [f.name for f in basis.fields if kinds.get(f.name) != f.kind]
    if unknown:
        raise ProfileError(f"extras.pca uses {', '.join(map(repr, unknown[:5]))}, not features of {model.name!r} "
                           "of the same type; rebuild the profile")
    for field in basis.fields:
        binning = profile.features.get(field.name)
        if field.kind == "categorical" and binning is not None and not set(field.categories) <= set(binning.categories or ()):
            raise ProfileError(f"extras.pca: categories of {field.name!r} are not the profile's top-K categories")


def check_calibration(profile: Profile) -> None:
    """The score calibration map (profiles built with labels) is read when a version is created: check it now."""
    data = profile.extras.get(CALIBRATION_KEY)
    per_class = profile.extras.get(CLASS_EXTRAS_KEY)
    try:
        if data:
            Calibration.from_json(data)
        if per_class:
            calibration_from_extras({CLASS_EXTRAS_KEY: per_class}, tuple(per_class.get("classes") or ()))
        if profile.extras.get(ERROR_MODEL_KEY):
            calibration_from_extras({ERROR_MODEL_KEY: profile.extras[ERROR_MODEL_KEY]}, ())
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ProfileError(f"bad calibration block ({str(error)[:120]})") from None
    scores = profile.extras.get(CLASS_SCORES_KEY)
    if scores:  # per-class probability drift (exporter/profiles/class_scores.py), read when a version is created
        if not isinstance(scores, dict) or not isinstance(scores.get("binnings"), list) or \
                not isinstance(scores.get("classes"), list) or len(scores["classes"]) != len(scores["binnings"]):
            raise ProfileError("bad class_scores block: `classes` and one numeric binning per class expected")
        for cls, binning in zip(scores["classes"], scores["binnings"]):
            if Binning.from_json(str(cls), binning).kind != "numeric":
                raise ProfileError("bad class_scores block: class score binnings must be numeric")
