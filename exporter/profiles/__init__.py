"""Reference profiles: the frozen reference a model is judged against (profile.py), its PCA basis for
multivariate drift (pca.py) and `mlmon profile build` (build.py)."""
