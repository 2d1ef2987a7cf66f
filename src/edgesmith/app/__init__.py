"""The app: the ``edgesmith`` CLI, the demo and build-for-device, above every stage.

Layers run one way: the core (``edgesmith.*``: artifacts, datasets, config) <- the stages
(``train``, ``runtime``; ``export``; ``compress``, with the shared ``tfkeras`` helpers) <- this
package. Nothing below imports from here; ``docs/ARCHITECTURE.md`` draws the picture.
"""
