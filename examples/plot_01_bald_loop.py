"""
An active-learning loop with BALD
=================================

:class:`skal.ActiveLearner` has modAL's interface: ``query`` asks the query strategy which pool
samples to label next, ``teach`` adds their labels and refits. Here the strategy is
:func:`skal.bald`, the mutual information between a sample's label and the network's weights,
estimated from MC-dropout passes of a small :class:`skal.ResNet18Classifier`. The oracle is the
data set's own labels.
"""

# %%
# Data: the digits as images
# --------------------------
# :func:`skal.datasets.load_digits_images` gives scikit-learn's digits as ``(n, 1, 8, 8)``
# float32 images in [0, 1]. A stratified split keeps a test set apart; the rest is the pool,
# of which 30 random images start out labelled.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skal import ActiveLearner, ResNet18Classifier, bald
from skal.datasets import load_digits_images

X, y = load_digits_images()
X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=400, stratify=y,
                                                  random_state=0)
X_pool, y_pool = X_pool[:1000], y_pool[:1000]
rng = np.random.default_rng(0)
initial = rng.choice(len(X_pool), 30, replace=False)

# %%
# The learner
# -----------
# Every ``teach`` refits the network from scratch on all labels so far, as in the papers.
# ``classes`` fixes the output layer even while some digit has no label yet. Width 8 (the
# standard ResNet18 has 64) keeps each fit to a second or two on one core; 30 epochs of a few
# steps each are about what such small labelled sets need to train at all. A round can still
# lose accuracy: with this few labels a single fit is noisy (the learning-curve example
# averages repeats).
learner = ActiveLearner(
    ResNet18Classifier(width=8, max_epochs=30, batch_size=16, classes=np.arange(10),
                       random_state=0),
    query_strategy=bald,
    X_training=X_pool[initial],
    y_training=y_pool[initial],
)
X_pool, y_pool = np.delete(X_pool, initial, axis=0), np.delete(y_pool, initial)

# %%
# Five rounds of 20 labels
# ------------------------
# ``query`` returns the positions of the chosen samples in ``X_pool`` and the samples
# themselves; ``n_samples`` is the number of MC-dropout passes of BALD.
n_labeled, accuracy = [len(initial)], [learner.score(X_test, y_test)]
for round_ in range(5):
    idx, X_query = learner.query(X_pool, n_instances=20, n_samples=10, random_state=round_)
    learner.teach(X_query, y_pool[idx])
    X_pool, y_pool = np.delete(X_pool, idx, axis=0), np.delete(y_pool, idx)
    n_labeled.append(len(learner.y_training_))
    accuracy.append(learner.score(X_test, y_test))
    print(f"{n_labeled[-1]:4d} labels: test accuracy {accuracy[-1]:.3f}")

# %%
# The learning curve, and what BALD picked last
# ---------------------------------------------
fig, (ax, strip) = plt.subplots(1, 2, figsize=(9, 3), width_ratios=(1, 1.4))
ax.plot(n_labeled, accuracy, marker="o")
ax.set(xlabel="labelled samples", ylabel="test accuracy", title="BALD, ResNet18 width 8")
last = learner.X_training_[-20:][:10, 0]  # (10, 8, 8): the first ten of the last batch
strip.imshow(np.hstack(last), cmap="gray_r")
strip.set(title="last query: " + " ".join(map(str, learner.y_training_[-20:][:10])),
          xticks=[], yticks=[])
fig.tight_layout()
