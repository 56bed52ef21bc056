"""
WAAL: training on the unlabelled pool too
=========================================

:class:`skal.WAALClassifier` (Shui et al., AISTATS 2020) trains a feature extractor and a
classifier on the labelled data and, at the same time, plays a Wasserstein min-max game on the
unlabelled pool: a critic ``g`` learns to tell unlabelled features from labelled ones, and the
features learn to make that hard. Its query, :func:`skal.waal_uncertainty_diversity`, takes the
samples with the smallest ``U(x) - selection * g(x)``: uncertain, and unlike what is labelled.
"""

# %%
# Data
# ----
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skal import ActiveLearner, WAALClassifier, waal_uncertainty_diversity
from skal.datasets import load_digits_images

X, y = load_digits_images()
X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=400, stratify=y,
                                                  random_state=0)
X_pool, y_pool = X_pool[:1000], y_pool[:1000]
labeled = np.random.default_rng(0).choice(len(X_pool), 50, replace=False)

# %%
# Unlabelled data, two ways
# -------------------------
# scikit-learn's semi-supervised convention marks unlabelled rows with ``y == -1``; ``fit``
# also takes them apart, as ``X_unlabeled``. On 8x8 images the feature extractor is a small
# MLP (LeNet for 28x28, VGG16-BN for 32x32 colour). A WAAL epoch is a pass over the unlabelled
# pool, so 20 epochs are 20 x 30 steps here.
y_semi = np.full(len(y_pool), -1)
y_semi[labeled] = y_pool[labeled]
waal = WAALClassifier(max_epochs=20, lr=0.05, batch_size=32, query_size=20,
                      classes=np.arange(10), random_state=0)
waal.fit(X_pool, y_semi)  # the same as fit(X_pool[labeled], y_pool[labeled], X_unlabeled=rest)
print(f"{waal.n_labeled_} labelled, {waal.n_unlabeled_} unlabelled: "
      f"test accuracy {waal.score(X_test, y_test):.3f}")

# %%
# The critic has learnt what the labelled set looks like
# ------------------------------------------------------
# :meth:`~skal.WAALClassifier.critic_score` is ``g(x)``: near 1 means "looks unlabelled".
rest = np.setdiff1d(np.arange(len(X_pool)), labeled)
fig, ax = plt.subplots(figsize=(6, 3))
bins = np.linspace(0, 1, 26)
ax.hist(waal.critic_score(X_pool[rest]), bins=bins, alpha=0.6, density=True, label="unlabelled")
ax.hist(waal.critic_score(X_pool[labeled]), bins=bins, alpha=0.6, density=True,
        label="labelled")
ax.set(xlabel="critic score g(x)", ylabel="density")
ax.legend()
fig.tight_layout()

# %%
# In the loop
# -----------
# In an :class:`skal.ActiveLearner`, ``teach`` hands the estimator the rest of the last queried
# pool as ``X_unlabeled`` by itself: the loop looks like any other.
learner = ActiveLearner(waal, query_strategy=waal_uncertainty_diversity)
learner.fit(X_pool[labeled], y_pool[labeled], X_unlabeled=X_pool[rest])
X_rest, y_rest = X_pool[rest], y_pool[rest]
for round_ in range(3):
    idx, X_query = learner.query(X_rest, n_instances=20)
    learner.teach(X_query, y_rest[idx])  # refits on the labels + the rest of X_rest
    X_rest, y_rest = np.delete(X_rest, idx, axis=0), np.delete(y_rest, idx)
    print(f"{len(learner.y_training_)} labels ({waal.n_unlabeled_} unlabelled): "
          f"test accuracy {learner.score(X_test, y_test):.3f}")
