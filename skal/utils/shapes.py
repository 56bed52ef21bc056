"""The one check of an image-shape parameter ``(C, H, W)`` (no dependencies: the nets use it too)."""

__all__ = ["check_image_shape"]


def check_image_shape(image_shape, param_name="image_shape", *, owner=None, optional=True,
                      in_channels=None, min_side=1):
    """Validate an image-shape parameter and return it as a tuple of three ints.

    Parameters
    ----------
    image_shape : tuple (C, H, W) or None
        The value given: three ints, or None.
    param_name : str, default="image_shape"
        The parameter's name, for the message.
    owner : str or None, default=None
        Who takes the parameter (an estimator's or a network's name), for the message.
    optional : bool, default=True
        An estimator's ``image_shape``: ``None`` is valid (and returned), and one entry may be -1
        (inferred from the data, as in ``numpy.reshape``). A network needs a complete shape.
    in_channels : int or None, default=None
        If given, C must equal it.
    min_side : int, default=1
        The least H and W (e.g. 4 for two stride-2 convolutions).

    Returns
    -------
    shape : tuple of int or None
        ``(C, H, W)`` as ints, or None when ``image_shape`` is None and ``optional``.

    Raises
    ------
    ValueError
        In scikit-learn's wording ("The 'image_shape' parameter of X must be ... Got ...
        instead.").

    Examples
    --------
    >>> check_image_shape([1, 28, -1])
    (1, 28, -1)
    >>> check_image_shape((1, 2, 2), owner="Encoder", optional=False, min_side=4)
    Traceback (most recent call last):
    ...
    ValueError: The 'image_shape' parameter of Encoder must be a tuple (C, H, W) with C an int in the range [1, inf) and H and W each an int in the range [4, inf). Got (1, 2, 2) instead.
    """
    if image_shape is None and optional:
        return None
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        shape = ()

    def entry_ok(size, least):  # -1: inferred from the data (estimators only)
        return size >= least or (optional and size == -1)

    ok = (len(shape) == 3 and shape.count(-1) <= 1 and entry_ok(shape[0], 1)
          and all(entry_ok(size, min_side) for size in shape[1:]))
    of = f" of {owner}" if owner else ""
    if not ok:
        expected = ("None or a tuple (C, H, W)" if optional else "a tuple (C, H, W)")
        # scikit-learn's wording of a range (skal.utils.params.Int; this module imports nothing)
        expected += (f" with C an int in the range [1, inf) and H and W each an int in the "
                     f"range [{min_side}, inf)" if min_side > 1
                     else ", each an int in the range [1, inf)")
        if optional:
            expected += " (one of them may be -1, as in numpy.reshape)"
        raise ValueError(
            f"The '{param_name}' parameter{of} must be {expected}. Got {image_shape!r} instead."
        )
    if in_channels is not None and shape[0] != in_channels:
        raise ValueError(
            f"The '{param_name}' parameter{of} must start with in_channels={in_channels}. "
            f"Got {image_shape!r} instead."
        )
    return shape
