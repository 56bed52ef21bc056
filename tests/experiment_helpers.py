"""Shared helpers of the experiment tests: the tiny experiment configuration."""

#: An experiment of a few seconds: 20 digits + 2 rounds of 10, 2 repeats, a width-2 ResNet18.
TINY = dict(
    dataset="digits", n_initial=20, query_size=10, n_rounds=2, repeats=2, pool_size=200,
    test_size=100, width=2, max_epochs=1, batch_size=32, n_mc_samples=4,
)
