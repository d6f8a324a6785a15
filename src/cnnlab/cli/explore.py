"""``cnnlab explore``: serve the local page over a network, its arithmetic and a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.cli.common import console, host_arg, port, shape_arg
from cnnlab.errors import CnnlabError

EPILOG = """\
examples:
  cnnlab explore                                  # cnnlab's small CNN (28×28 grey)
  cnnlab explore geron_ex2          # the book's exercise network
  cnnlab explore resnet18 --input 3,64,64         # any TARGET 'cnnlab analyze' takes
  cnnlab explore runs/fashion                     # a trained run: curves, confusion, predictions, feature maps
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="a local web page: layers and their arithmetic, memory, ops, zoo, a run",
                       description="Start a local web server for one network (and optionally a trained run) and "
                                   "print its address; Ctrl-C stops it. The page loads only what this command "
                                   "line names (plus cnnlab's own zoo) and ships every asset: it works offline.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", metavar="TARGET|RUN",
                   help="a zoo name, a spec file, a Keras model (.keras), 'package.module:callable' or a run folder of 'cnnlab train' or "
                        "'cnnlab segment train' (default: small_cnn)")
    p.add_argument("--input", type=shape_arg, metavar="C,H,W", help="input shape (default: the target's own)")
    p.add_argument("--host", default="127.0.0.1", type=host_arg, help="address to listen on (other machines can reach the page "
                   "only if you give 0.0.0.0)")
    p.add_argument("--port", type=port, default=8765, help="port to listen on, 1-65535 (default: 8765)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from cnnlab.web.app import create_app

    target, run_folder = args.target, None
    if target and Path(target).is_dir():
        if not (Path(target) / "config.json").is_file():
            raise CnnlabError(f"{target}: a folder without config.json; give a run folder made by 'cnnlab train' "
                              "or 'cnnlab segment train', or a TARGET")
        target, run_folder = None, Path(args.target)
    _check_port(args.host, args.port)
    app = create_app(target, run_folder, args.input, args.host)
    url = f"http://{args.host}:{args.port}/"
    console().print(f"cnnlab explore: {url}  (Ctrl-C stops it)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _check_port(host: str, port: int) -> None:
    """A clear error before any work when the address cannot be served."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as err:
        raise CnnlabError(f"cannot listen on {host}:{port} ({err.strerror}); check --host (an address of this "
                          "machine) or choose another --port (or stop what uses it)") from None
