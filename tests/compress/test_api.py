import inspect
import subprocess
import sys


def test_importing_the_package_loads_no_tensorflow():
    code = (
        "import sys, edgesmith.compress as c\n"
        "c.PruneConfig(sparsity=0.5); c.TECHNIQUES['prune'].config\n"
        "assert 'tensorflow' not in sys.modules and 'tensorflow_model_optimization' not in "
        "sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_every_technique_has_the_same_shape():
    import edgesmith.compress as compress
    from edgesmith.compress.registry import TECHNIQUES

    for key, technique in TECHNIQUES.items():
        function = technique.load()
        params = list(inspect.signature(function).parameters)
        assert params[:3] == ["source", "config", "out"] and "report" in params, key
    # the package's names are the functions, even after their modules were imported
    for name in ("prune", "qat", "distill", "cluster", "quantize_within_budget"):
        assert inspect.isfunction(getattr(compress, name)), name
