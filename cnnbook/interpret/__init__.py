"""Look inside a trained CNN: one small module per interpretation technique (chapter 20).

* ``gabor_fit``: how Gabor-like first-layer kernels are (best-fitting Gabor's correlation).
* ``saliency``: vanilla gradients, SmoothGrad and integrated gradients.
* ``gradcam``: Grad-CAM from scratch (checked against Captum's ``LayerGradCam``).
* ``occlusion``: occlusion sensitivity (checked against Captum's ``Occlusion``).
* ``sanity``: Adebayo et al.'s model-randomisation test of a saliency method.
* ``embeddings``: penultimate features, t-SNE and nearest neighbours.
* ``rollout``: attention rollout of a Vision Transformer (chapter 23).

The modules are imported by name (``from cnnbook.interpret.gradcam import grad_cam``), so
importing this package does not import Captum or scikit-learn.
"""
