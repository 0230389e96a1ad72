"""Reading original (TF1, `dnnlib.tflib.Network`) `.pkl` snapshots without TensorFlow 1: the restricted
unpickler (`pickles`) and the renaming of their variables to ours (`tables`). Each architecture's importer
(`stylegan_exp/models/<arch>/tf1.py`) says what a pickle of that model is; `stylegan_exp.models.load_snapshot`
opens a `.pkl` (path or URL) wherever our `.npz` is accepted.
"""
