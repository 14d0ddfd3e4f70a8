"""Command line: ``python -m cnnbook.deploy.predict model.onnx image.jpg [more images]``.

Prints the top-5 classes of each image with their probabilities, read from a predictor
file written by ``cnnbook.deploy.predictor.save_predictor``. Exit codes: 0 when every image
was classified, 2 on bad input (a missing, truncated or foreign model file; a file that is
not an image; with ``--no-resize``, an image of the wrong size), with one clear message on
stderr per problem. Images of another size are resized by default, and a note on stderr
says so.
"""
from __future__ import annotations

import argparse
import sys

from cnnbook.deploy.predictor import Predictor, PredictorError, load_image, top_k


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnnbook.deploy.predict",
        description="Classify images with a cnnbook predictor (.onnx with its class names "
                    "and preprocessing inside).")
    parser.add_argument("model", help="predictor file written by save_predictor")
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    parser.add_argument("-k", "--top", type=int, default=5, help="how many classes to print (5)")
    parser.add_argument("--no-resize", action="store_true",
                        help="refuse images whose size differs from the model's input")
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime intra-op threads (default: one per core)")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error("--top must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        predictor = Predictor(args.model, threads=args.threads)
    except PredictorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = False
    for name in args.images:
        try:
            array, (w, h) = load_image(name, predictor.image_size, resize=not args.no_resize)
        except PredictorError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        s = predictor.image_size
        if (w, h) != (s, s):
            print(f"note: {name} is {w}x{h}, resized to {s}x{s}", file=sys.stderr)
        probs = predictor.probabilities(array[None])[0]
        print(name)
        for cls, p in top_k(probs, predictor.class_names, args.top):
            print(f"  {cls:<12} {p:.4f}")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
