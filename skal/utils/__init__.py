"""Helpers every layer of skal shares: parameter validation (:mod:`~skal.utils.params`), input
validation and seeds (:mod:`~skal.utils.validation`), type aliases (:mod:`~skal.utils.typing`),
module modes for MC dropout (:mod:`~skal.utils.modes`), the running top k of chunked queries
(:mod:`~skal.utils.topk`), skorch glue (:mod:`~skal.utils.skorch_compat`), the divergence
check (:mod:`~skal.utils.divergence`), image shapes (:mod:`~skal.utils.shapes`) and atomic file
writes (:mod:`~skal.utils.atomic`).

They are public so that the layers import each other only through public names, as
:mod:`sklearn.utils` is; they are meant for skal's own modules and for code that extends skal,
and they import nothing else of skal.
"""
