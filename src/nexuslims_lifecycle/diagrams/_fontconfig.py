"""Give the renderer's bundled fontconfig a configuration of our own, before it starts.

pygraphviz's Linux wheels bundle Graphviz with the libraries it draws text with,
among them fontconfig 2.13.1 (in ``pygraphviz.libs/``, auditwheel's place for a
wheel's own libraries). Left to start itself, that fontconfig reads the host's
``/etc/fonts/fonts.conf``, written for the host's newer fontconfig, and then parses
every file of the template directory compiled into it,
``/usr/share/fontconfig/conf.avail``, whatever ``FONTCONFIG_FILE`` says. On Debian 12
and other current distributions that directory holds ``05-reset-dirs-sample.conf``,
whose ``<reset-dirs/>`` fontconfig 2.13.1 does not know: it prints
``Fontconfig warning: ... unknown element "reset-dirs"`` on every SVG or PNG drawn.

So the configuration is made here, through fontconfig's own API
(``FcConfigCreate``, ``FcConfigParseAndLoad``, ``FcConfigSetCurrent``), from
``_render_fonts.conf``: fontconfig then has a current configuration and never runs the
start-up that reads the host's files. Only the copy bundled with pygraphviz is
touched; a pygraphviz built against the system's Graphviz uses the system's
fontconfig, which matches its own configuration and is left alone.
"""

from __future__ import annotations

import ctypes
import functools
import os
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Final

__all__ = ["bundled_fontconfig", "configure_bundled_fontconfig"]

_CONFIG_NAME: Final = "_render_fonts.conf"


def bundled_fontconfig(pygraphviz: ModuleType) -> Path | None:
    """Return the fontconfig library bundled in pygraphviz's wheel, or None if it has none."""
    package_dir = Path(str(pygraphviz.__file__)).parent
    libraries = package_dir.parent / f"{package_dir.name}.libs"
    found = sorted(libraries.glob("libfontconfig*.so*"))
    return found[0] if found else None


@functools.cache
def configure_bundled_fontconfig(pygraphviz: ModuleType) -> bool:
    """Make ``_render_fonts.conf`` the current configuration of pygraphviz's fontconfig.

    Done once per process, before Graphviz first measures text. Returns True when
    the bundled fontconfig now uses our configuration, False when there is no
    bundled fontconfig (nothing to do) or it refused the file (it says why on
    stderr, and keeps its own start-up).
    """
    library = bundled_fontconfig(pygraphviz)
    if library is None:
        return False
    fontconfig = ctypes.CDLL(str(library))  # the copy Graphviz already loaded
    fontconfig.FcConfigCreate.restype = ctypes.c_void_p
    fontconfig.FcConfigParseAndLoad.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    fontconfig.FcConfigSetCurrent.argtypes = [ctypes.c_void_p]
    fontconfig.FcConfigDestroy.argtypes = [ctypes.c_void_p]
    config = fontconfig.FcConfigCreate()
    with resources.as_file(resources.files(__package__) / _CONFIG_NAME) as path:
        loaded = fontconfig.FcConfigParseAndLoad(config, os.fsencode(path), 1)
    # SetCurrent scans the font directories; the configuration then lives as long as
    # the process (fontconfig releases the current one only when another replaces it).
    if loaded and fontconfig.FcConfigSetCurrent(config):
        return True
    fontconfig.FcConfigDestroy(config)
    return False
