__version__ = "0.1.0"
# Package entry points. This file is hand-written (nbdev only updates the version line) and must stay
# import-light: `tito status` imports the package on every run.


def load_ipython_extension(ipython):
    "`%load_ext tinytorch_progress` registers the `%tito` magic."
    from tinytorch_progress.magics import load_ipython_extension as load
    load(ipython)


def __getattr__(name):
    if name == "status_panel":
        from tinytorch_progress.views.status import status_panel
        return status_panel
    raise AttributeError(f"module 'tinytorch_progress' has no attribute {name!r}")
