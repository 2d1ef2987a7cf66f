"""Device profiles shipped with edgesmith (YAML files, read by ``edgesmith.core.profiles``)."""
