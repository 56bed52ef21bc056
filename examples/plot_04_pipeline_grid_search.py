"""
A Pipeline and a grid search over a skal estimator
==================================================

skal's estimators follow scikit-learn's rules (parameters stored as given, learned attributes
ending in ``_``, ``clone``-able), so they sit in a :class:`~sklearn.pipeline.Pipeline` behind
scikit-learn transformers and in :class:`~sklearn.model_selection.GridSearchCV`. Transformers
work on flat rows; ``image_shape`` tells the network how to fold them back into images. The
query strategies accept the fitted pipeline and send the pool through its transformers.
"""

# %%
# A scaler in front of a ResNet18
# -------------------------------
import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skal import ResNet18Classifier, bald
from skal.datasets import load_digits_images

X, y = load_digits_images()
X_flat = X.reshape(len(X), -1)  # (1797, 1, 8, 8) -> (1797, 64): rows for the scaler
X_train, y_train, X_pool, X_test, y_test = (X_flat[:300], y[:300], X_flat[300:1300],
                                            X_flat[1400:], y[1400:])
pipe = Pipeline([
    ("scale", StandardScaler()),
    ("net", ResNet18Classifier(image_shape=(1, 8, 8), width=4, max_epochs=8, batch_size=16,
                               random_state=0)),
])

# %%
# Grid search over the network's parameters
# -----------------------------------------
# ``net__dropout`` and ``net__width`` reach the estimator through the pipeline, as for any
# scikit-learn estimator; every candidate is a ``clone`` trained from scratch.
search = GridSearchCV(pipe, {"net__dropout": [0.2, 0.5], "net__width": [4, 8]},
                      cv=StratifiedKFold(3, shuffle=True, random_state=0))
search.fit(X_train, y_train)
for params, mean, std in zip(search.cv_results_["params"],
                             search.cv_results_["mean_test_score"],
                             search.cv_results_["std_test_score"]):
    print(f"{params}: {mean:.3f} +- {std:.3f}")
print("best:", search.best_params_, f"test accuracy {search.score(X_test, y_test):.3f}")

# %%
# Query with the fitted pipeline
# ------------------------------
# :func:`skal.bald` scales the pool with the pipeline's scaler and asks the network for its
# MC-dropout samples; the indices index the raw pool.
idx, scores = bald(search.best_estimator_, X_pool, n_instances=8, n_samples=10,
                   random_state=0)
fig, axes = plt.subplots(1, 8, figsize=(8, 1.6))
for ax, i, score in zip(axes, idx, scores):
    ax.imshow(X_pool[i].reshape(8, 8), cmap="gray_r")  # (64,) -> (8, 8)
    ax.set(title=f"{score:.2f}", xticks=[], yticks=[])
fig.suptitle("the pool images with the highest BALD scores (nats)")
fig.tight_layout()
