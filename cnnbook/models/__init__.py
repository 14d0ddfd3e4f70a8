"""The course's architectures, one module per family (LeNet to MobileNet).

Import a model from its family module, e.g. ``from cnnbook.models.vgg import vgg11``;
``cnnbook.models.registry`` lists them all for the comparison chapter.
"""
