"""Layer 1, data: the inputs of a run. The ``cnn_eval.json`` schema in both published layouts,
its content identity and the QSL (:mod:`.dataset`); a model folder's context length and
vocabulary (:mod:`.modelinfo`). Beside ``accuracy/`` and ``embedded/`` in its layer; may
import ``core`` only (and those two, without a circle).
"""
