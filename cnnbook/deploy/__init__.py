"""Part IV, deployment: the reference model, benchmarks, and one module per compression or
export technique (``fusion``, ``quantize``, ``prune``, ``distill``, ``lowrank``, ...).

Import the modules themselves (``from cnnbook.deploy import benchmark``): each pulls in only
what it needs, so ``import cnnbook.deploy`` stays cheap.
"""
